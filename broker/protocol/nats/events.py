"""Events of the NATS client protocol: what the parser hands out, one per operation.

Subjects, reply subjects, sids and queue names stay `bytes`: the server routes and
writes them as bytes, so nothing on the hot path decodes them.
"""
from __future__ import annotations


class _Event:
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Info(_Event):
    __slots__ = ("options",)

    def __init__(self, options: dict):
        self.options = options


class Connect(_Event):
    __slots__ = ("options",)

    def __init__(self, options: dict):
        self.options = options


class Pub(_Event):
    """PUB, or HPUB when ``headers`` is not None (the raw header block, CRLFs included)."""

    __slots__ = ("subject", "reply", "headers", "payload")

    def __init__(self, subject: bytes, reply: bytes | None, payload: bytes,
                 headers: bytes | None = None):
        self.subject = subject
        self.reply = reply
        self.payload = payload
        self.headers = headers


class Sub(_Event):
    __slots__ = ("subject", "queue", "sid")

    def __init__(self, subject: bytes, queue: bytes | None, sid: bytes):
        self.subject = subject
        self.queue = queue
        self.sid = sid


class Unsub(_Event):
    __slots__ = ("sid", "max_msgs")

    def __init__(self, sid: bytes, max_msgs: int | None):
        self.sid = sid
        self.max_msgs = max_msgs


class Msg(_Event):
    """MSG, or HMSG when ``headers`` is not None."""

    __slots__ = ("subject", "sid", "reply", "headers", "payload")

    def __init__(self, subject: bytes, sid: bytes, reply: bytes | None, payload: bytes,
                 headers: bytes | None = None):
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.payload = payload
        self.headers = headers


class Ping(_Event):
    __slots__ = ()


class Pong(_Event):
    __slots__ = ()


class Ok(_Event):
    __slots__ = ()


class Err(_Event):
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


PING = Ping()
PONG = Pong()
OK = Ok()
