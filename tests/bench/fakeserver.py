"""A fake NATS server that measures a load generator alone, with no broker work.

    python -m tests.bench.fakeserver sink HOST PORT        # read and discard
    python -m tests.bench.fakeserver source HOST PORT N    # send N MSG frames per subscriber

Both send INFO and answer every PING with PONG, which is all a client needs. The
sink ``recv_into``s and throws the bytes away: a publisher's ceiling. The source
waits for a SUB and the PING after it, answers PONG, then writes N pre-encoded
``MSG`` frames as fast as the socket takes them: a subscriber's ceiling.
Connections are served one at a time, for ever, until the process is stopped.
"""
from __future__ import annotations

import socket
import sys

from . import wire


def sink(conn: socket.socket) -> None:
    buf = bytearray(4 << 20)
    tail = b""
    while True:
        size = conn.recv_into(buf)
        if not size:
            return
        pings = wire.count_pings(tail, buf, size)
        if pings:
            conn.sendall(wire.PONG * pings)
        tail = bytes(buf[max(0, size - 5):size])


def source(conn: socket.socket, count: int) -> None:
    seen = b""
    answered = 0
    while True:  # the handshake: PONG every PING until one follows a SUB
        data = conn.recv(65536)
        if not data:
            return
        seen += data
        pings = seen.count(wire.PING)
        conn.sendall(wire.PONG * (pings - answered))
        answered = pings
        sub_at = seen.find(b"SUB ")
        if sub_at >= 0 and seen.find(wire.PING, sub_at) >= 0:
            break
    for buf in wire.chunks(wire.MSG_FRAME, count):
        conn.sendall(buf)
    sink(conn)  # then wait for the subscriber to hang up


def serve(mode: str, host: str, port: int, count: int) -> None:
    with socket.create_server((host, port), backlog=16) as listener:
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    conn.sendall(wire.info_line(port))
                    sink(conn) if mode == "sink" else source(conn, count)
                except OSError:
                    pass


def main(argv: list[str]) -> int:
    mode, host, port = argv[0], argv[1], int(argv[2])
    serve(mode, host, port, int(argv[3]) if len(argv) > 3 else 0)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(0)
