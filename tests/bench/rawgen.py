"""Raw-socket load generator: as cheap per message as a Python client can be.

    python -m tests.bench.rawgen pub HOST PORT N   # publisher
    python -m tests.bench.rawgen sub HOST PORT N   # subscriber

The publisher sends pre-encoded ``PUB`` frames in ~143 KB ``sendall`` chunks and
ends with PING, so its clock stops when the server has read every message. The
subscriber reads with ``recv_into`` into a 4 MiB buffer and counts messages by
bytes (every ``MSG`` frame has the same size), answering any server PING it sees.

Both talk to the parent over stdio (see ``child``): "ready", then one JSON line.
"""
from __future__ import annotations

import sys
import time

from . import child, wire

TIMEOUT_S = 60.0


def publish(host: str, port: int, count: int) -> dict:
    sock = wire.connect_socket(host, port, TIMEOUT_S)
    with sock:
        sock.sendall(wire.CONNECT + wire.PING)
        wire.wait_pong(sock)
        buffers = wire.chunks(wire.PUB_FRAME, count)
        child.ready()
        child.wait_go()
        t0, cpu0 = time.monotonic(), time.process_time()
        for buf in buffers:
            sock.sendall(buf)
        sock.sendall(wire.PING)
        wire.wait_pong(sock)
        t1, cpu1 = time.monotonic(), time.process_time()
    return {"t0": t0, "t1": t1, "cpu": cpu1 - cpu0, "count": count}


def subscribe(host: str, port: int, count: int) -> dict:
    sock = wire.connect_socket(host, port, TIMEOUT_S)
    with sock:
        sock.sendall(wire.CONNECT + wire.SUB + wire.PING)
        early = wire.wait_pong(sock)
        t_ready, cpu0 = time.monotonic(), time.process_time()
        child.ready(t_ready)
        target = count * len(wire.MSG_FRAME)
        got = len(early) - len(wire.PING) * early.count(wire.PING)
        buf = bytearray(4 << 20)
        tail = early[-5:]
        t_first = t_ready if got else None
        try:
            while got < target:
                size = sock.recv_into(buf)
                if not size:
                    break
                if t_first is None:
                    t_first = time.monotonic()
                pings = wire.count_pings(tail, buf, size)
                if pings:
                    sock.sendall(wire.PONG * pings)
                got += size - len(wire.PING) * pings
                tail = bytes(buf[max(0, size - 5):size])
        except TimeoutError:
            pass
        t_last, cpu1 = time.monotonic(), time.process_time()
    return {"t_ready": t_ready, "t_first": t_first or t_last, "t_last": t_last,
            "cpu": cpu1 - cpu0, "count": got // len(wire.MSG_FRAME), "exact": got == target}


def main(argv: list[str]) -> int:
    role, host, port, count = argv[0], argv[1], int(argv[2]), int(argv[3])
    child.report((publish if role == "pub" else subscribe)(host, port, count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
