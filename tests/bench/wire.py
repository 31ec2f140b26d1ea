"""The bytes every load generator and fake server agrees on: one subject, 128-byte payloads.

Every frame has a fixed size, so a reader counts messages by counting bytes. The
payload is all ``x`` so that ``PING\\r\\n`` can never appear inside a frame, which
lets readers spot a server PING in the byte stream with one ``find``.
"""
from __future__ import annotations

import json
import socket

SUBJECT = "foo"
SID = 1
PAYLOAD = b"x" * 128
PUB_FRAME = b"PUB %s %d\r\n%s\r\n" % (SUBJECT.encode(), len(PAYLOAD), PAYLOAD)
MSG_FRAME = b"MSG %s %d %d\r\n%s\r\n" % (SUBJECT.encode(), SID, len(PAYLOAD), PAYLOAD)
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"echo":true,"lang":"raw","version":"0"}\r\n'
SUB = b"SUB %s %d\r\n" % (SUBJECT.encode(), SID)
PING, PONG = b"PING\r\n", b"PONG\r\n"
CHUNK_MSGS = 1000  # frames per sendall: ~143 KB


def chunks(frame: bytes, count: int):
    """Pre-encoded buffers that together hold ``count`` frames."""
    full, rest = divmod(count, CHUNK_MSGS)
    block = frame * CHUNK_MSGS
    return [block] * full + ([frame * rest] if rest else [])


def count_pings(tail: bytes, buf: bytearray, size: int) -> int:
    """PINGs in ``buf[:size]``, including one split across the previous chunk's ``tail``."""
    found = buf.count(PING, 0, size)
    if tail:
        found += (tail + bytes(buf[:5])).count(PING)
    return found


def info_line(port: int) -> bytes:
    info = {"server_id": "BENCHFAKE", "server_name": "bench-fake", "version": "2.10.0",
            "proto": 1, "host": "127.0.0.1", "port": port, "headers": True,
            "max_payload": 1048576}
    return b"INFO " + json.dumps(info).encode() + b"\r\n"


def connect_socket(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return sock


def wait_pong(sock: socket.socket, pending: bytes = b"") -> bytes:
    """Read protocol lines until PONG, answering PINGs; return the bytes after the PONG."""
    buf = pending
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if line == b"PONG":
                return buf
            if line == b"PING":
                sock.sendall(PONG)
            elif line.startswith(b"-ERR"):
                raise RuntimeError(f"server error: {line.decode(errors='replace')}")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        buf += data
