"""Fake servers that measure the streaming load generator alone, with no broker work.

    python -m tests.bench.stan_fake MODE PROTO HOST PORT N

MODE  sink       read and discard; PONG every PING (the publisher's sending half)
      acks       after the client's second PING: N recorded publish acks, as fast
                 as the socket takes them (the publisher's ack-counting half)
      responder  for every complete publish frame received, the recorded ack for it:
                 one slice of a pre-recorded byte string per read, no per-message
                 Python (the publisher's whole loop, window included)
      source     after the client's second PING: N recorded deliveries (MsgProto or
                 JetStream push messages), while a thread reads and discards the
                 client's acks (the consumer's ceiling)

Answers come from the same encoders as the generator (``stan_wire``, with the fixed
``--fake`` identities of ``stan_gen``) and are built before the port opens. One
connection at a time, for ever, until the process is stopped.
"""
from __future__ import annotations

import socket
import sys
import threading

from . import stan_gen, stan_wire
from .stan_wire import PING, PONG

INFO = (b'INFO {"server_id":"STANBENCHFAKE","server_name":"stan-bench-fake","version":"2.10.0",'
        b'"proto":1,"headers":true,"max_payload":1048576}\r\n')


def _handshake(conn: socket.socket, pings: int) -> bytes:
    """Read until the client's ``pings``-th PING, answering each; return what follows."""
    seen = b""
    answered = 0
    while True:
        data = conn.recv(65536)
        if not data:
            raise ConnectionError("client left")
        seen += data
        while answered < pings:
            at = seen.find(PING)
            if at < 0:
                break
            conn.sendall(PONG)
            answered += 1
            seen = seen[at + len(PING):]
        if answered == pings:
            return seen


def _discard(conn: socket.socket) -> None:
    buf = bytearray(4 << 20)
    tail = b""
    while True:
        size = conn.recv_into(buf)
        if not size:
            return
        seam = tail + bytes(buf[:5])
        pings = buf.count(PING, 0, size) + seam.count(PING)
        if pings:
            conn.sendall(PONG * pings)
        tail = bytes(buf[max(0, size - 5):size])


def sink(conn: socket.socket, recorded) -> None:
    _discard(conn)


def acks(conn: socket.socket, recorded) -> None:
    _handshake(conn, 2)
    conn.sendall(recorded)
    _discard(conn)


def source(conn: socket.socket, recorded) -> None:
    _handshake(conn, 2)
    reader = threading.Thread(target=_discard, args=(conn,), daemon=True)
    reader.start()
    conn.sendall(recorded)
    reader.join()


def responder(conn: socket.socket, recorded) -> None:
    data, offsets, frame_size = recorded
    received = len(_handshake(conn, 1))
    answered = 0
    buf = bytearray(4 << 20)
    view = memoryview(data)
    last = len(offsets) - 1
    while True:
        frames = min(received // frame_size, last)
        if frames > answered:
            conn.sendall(view[offsets[answered]:offsets[frames]])
            answered = frames
        size = conn.recv_into(buf)
        if not size:
            return
        received += size


def record(mode: str, proto: str, count: int):
    channel = "bench"
    if mode == "sink":
        return None
    if mode in ("acks", "responder"):
        publisher = stan_gen.fake_publisher(proto, channel)
        data = publisher.recorded_acks(count)
        if mode == "acks":
            return data
        if proto == "stan":
            size = len(data) // count
            offsets = list(range(0, len(data) + 1, size))
        else:
            offsets = [0]
            for line_end in _frame_ends(data):
                offsets.append(line_end)
        return data, offsets, publisher.frame_size
    if proto == "stan":
        return stan_wire.recorded_stan_msgs(stan_gen.FAKE_DELIVER, channel, count)
    return stan_wire.recorded_js_msgs(channel, channel.upper(), stan_gen.FAKE_DURABLE, count)


def _frame_ends(data: bytes):
    """The end offset of every ``MSG ... <size>\\r\\n<payload>\\r\\n`` frame in ``data``."""
    pos = 0
    while pos < len(data):
        eol = data.find(b"\r\n", pos)
        pos = eol + 4 + int(data[data.rfind(b" ", pos, eol) + 1:eol])
        yield pos


def serve(mode: str, proto: str, host: str, port: int, count: int) -> None:
    recorded = record(mode, proto, count)
    handler = {"sink": sink, "acks": acks, "source": source, "responder": responder}[mode]
    with socket.create_server((host, port), backlog=16) as listener:
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                try:
                    conn.sendall(INFO)
                    handler(conn, recorded)
                except OSError:
                    pass


def main(argv: list[str]) -> int:
    mode, proto, host, port, count = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    serve(mode, proto, host, port, count)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(0)
