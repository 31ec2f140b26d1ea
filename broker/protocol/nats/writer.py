"""The NATS protocol's outgoing side: each function returns the bytes of one operation.

Server side: `info`, `msg`, `hmsg`, `err`, and the constants PING, PONG, OK.
Client side (used by Runnel's own tools and tests): `connect`, `pub`, `hpub`,
`sub`, `unsub`.
"""
from __future__ import annotations

import json

from .errors import err_line

PING = b"PING\r\n"
PONG = b"PONG\r\n"
OK = b"+OK\r\n"
CRLF = b"\r\n"


def info(options: dict) -> bytes:
    return b"INFO " + json.dumps(options, separators=(",", ":")).encode() + CRLF


def connect(options: dict) -> bytes:
    return b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + CRLF


def err(text: str) -> bytes:
    return err_line(text)


def msg(subject: bytes, sid: bytes, reply: bytes | None, payload: bytes) -> bytes:
    if reply:
        head = b"MSG %s %s %s %d\r\n" % (subject, sid, reply, len(payload))
    else:
        head = b"MSG %s %s %d\r\n" % (subject, sid, len(payload))
    return head + payload + CRLF


def hmsg(subject: bytes, sid: bytes, reply: bytes | None, headers: bytes,
         payload: bytes) -> bytes:
    total = len(headers) + len(payload)
    if reply:
        head = b"HMSG %s %s %s %d %d\r\n" % (subject, sid, reply, len(headers), total)
    else:
        head = b"HMSG %s %s %d %d\r\n" % (subject, sid, len(headers), total)
    return head + headers + payload + CRLF


def pub(subject: bytes, reply: bytes | None, payload: bytes) -> bytes:
    if reply:
        return b"PUB %s %s %d\r\n" % (subject, reply, len(payload)) + payload + CRLF
    return b"PUB %s %d\r\n" % (subject, len(payload)) + payload + CRLF


def hpub(subject: bytes, reply: bytes | None, headers: bytes, payload: bytes) -> bytes:
    total = len(headers) + len(payload)
    if reply:
        head = b"HPUB %s %s %d %d\r\n" % (subject, reply, len(headers), total)
    else:
        head = b"HPUB %s %d %d\r\n" % (subject, len(headers), total)
    return head + headers + payload + CRLF


def sub(subject: bytes, sid: bytes, queue: bytes | None = None) -> bytes:
    if queue:
        return b"SUB %s %s %s\r\n" % (subject, queue, sid)
    return b"SUB %s %s\r\n" % (subject, sid)


def unsub(sid: bytes, max_msgs: int | None = None) -> bytes:
    if max_msgs is None:
        return b"UNSUB %s\r\n" % sid
    return b"UNSUB %s %d\r\n" % (sid, max_msgs)


def append_msg(out: list, subject: bytes, sid: bytes, reply: bytes | None,
               headers: bytes | None, payload: bytes) -> int:
    """Append the pieces of one MSG (HMSG when ``headers`` is not None) to ``out``, to be
    joined by the caller with everything else it writes; return the message's size.
    The payload is appended as is: the join is its only copy."""
    if headers is not None:
        size = len(headers) + len(payload)
        if reply:
            out.append(b"HMSG %s %s %s %d %d\r\n" % (subject, sid, reply, len(headers), size))
        else:
            out.append(b"HMSG %s %s %d %d\r\n" % (subject, sid, len(headers), size))
        out.append(headers)
    else:
        size = len(payload)
        if reply:
            out.append(b"MSG %s %s %s %d\r\n" % (subject, sid, reply, size))
        else:
            out.append(b"MSG %s %s %d\r\n" % (subject, sid, size))
    out.append(payload)
    out.append(CRLF)
    return size
