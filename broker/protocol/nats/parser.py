"""Sans-I/O parser of the NATS text protocol: bytes in, events out.

Two states, as in nats.py: a control line, then (for PUB, HPUB, MSG and HMSG) a
payload of announced size followed by exactly CRLF. `feed()` takes whatever bytes
arrived and returns the events that are complete; a partial operation waits in the
buffer for the next call. A broken stream ends with a `ProtocolViolation` event
(what the peer must be told, or None where nats-server closes silently), after
which the parser is dead and ignores further input.

One parser serves both directions: ``Parser(side=SERVER)`` reads what clients send
(CONNECT, PUB, HPUB, SUB, UNSUB, PING, PONG, INFO, +OK, -ERR) and
``Parser(side=CLIENT)`` reads what servers send (INFO, MSG, HMSG, PING, PONG, +OK,
-ERR). Verbs are matched in any case, fields are split on spaces and tabs, and a
bare LF ends a control line as well as CRLF (nats-server drops a preceding CR).
"""
from __future__ import annotations

import json

from .errors import (MAX_CONTROL_LINE_EXCEEDED, MAXIMUM_PAYLOAD_VIOLATION,
                     UNKNOWN_PROTOCOL_OPERATION, ProtocolViolation)
from .events import OK, PING, PONG, Connect, Err, Info, Msg, Pub, Sub, Unsub

SERVER = "server"
CLIENT = "client"

MAX_CONTROL_LINE = 4096
MAX_PAYLOAD = 1024 * 1024
_MAX_SIZE_DIGITS = 9  # nats-server's parseSize refuses longer numbers

_SERVER_VERBS = frozenset((b"CONNECT", b"PUB", b"HPUB", b"SUB", b"UNSUB", b"INFO",
                           b"+OK", b"-ERR"))
_CLIENT_VERBS = frozenset((b"INFO", b"MSG", b"HMSG", b"+OK", b"-ERR"))


def parse_size(token: bytes) -> int:
    """A non-negative decimal size, or -1 where nats-server's parseSize refuses it."""
    if not token or len(token) > _MAX_SIZE_DIGITS or not token.isdigit():
        return -1
    return int(token)


class _Pending:
    """A PUB/HPUB/MSG/HMSG whose control line is read and whose payload is awaited."""

    __slots__ = ("verb", "args", "header_bytes", "total_bytes")

    def __init__(self, verb: bytes, args: list, header_bytes: int, total_bytes: int):
        self.verb = verb
        self.args = args
        self.header_bytes = header_bytes
        self.total_bytes = total_bytes


class Parser:
    """Incremental NATS protocol parser. Not thread-safe; one per connection."""

    def __init__(self, side: str = SERVER, *, max_control_line: int = MAX_CONTROL_LINE,
                 max_payload: int = MAX_PAYLOAD):
        if side not in (SERVER, CLIENT):
            raise ValueError(f"side must be {SERVER!r} or {CLIENT!r}")
        self.side = side
        self.max_control_line = max_control_line
        self.max_payload = max_payload
        self._verbs = _SERVER_VERBS if side == SERVER else _CLIENT_VERBS
        self._pub_fast_path = side == SERVER  # PUB is a client's verb only
        self._buffer = b""
        self._chunks: list[bytes] = []  # payload bytes gathered while a big payload arrives
        self._chunks_size = 0
        self._pending: _Pending | None = None
        self.dead = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer) + self._chunks_size

    def feed(self, data: bytes) -> list:
        """Take the next bytes of the stream; return the operations they complete."""
        if self.dead:
            return []
        if not self._take_buffer(data):
            return []
        events: list = []
        buf = self._buffer
        pos = 0
        end = len(buf)
        pub_fast_path = self._pub_fast_path
        while pos < end:
            pending = self._pending
            if pending is not None:
                pos = self._read_payload(buf, pos, end, pending, events)
                if pos < 0:
                    return events
                if self._pending is not None:
                    break
                continue
            eol = buf.find(b"\n", pos)
            if eol < 0:
                unterminated = end - pos
                # A CR may still wait for its LF: it is not part of the line.
                if unterminated > self.max_control_line and not (
                        unterminated == self.max_control_line + 1 and buf[end - 1] == 13):
                    return self._die(events, MAX_CONTROL_LINE_EXCEEDED, "no line end")
                break
            line_end = eol - 1 if eol > pos and buf[eol - 1] == 13 else eol
            if line_end - pos > self.max_control_line:
                return self._die(events, MAX_CONTROL_LINE_EXCEEDED, "line too long")
            # the hot path: a whole PUB in the buffer (PUB comes from clients only)
            if pub_fast_path and buf.startswith(b"PUB ", pos):
                next_pos = _fast_pub(buf, pos + 4, line_end, eol, end, self.max_payload, events)
                if next_pos > 0:
                    pos = next_pos
                    continue
            violation = self._control_line(buf[pos:line_end], events)
            if violation is not None:
                events.append(violation)
                self.dead = True
                self._buffer = b""
                return events
            pos = eol + 1
        self._buffer = buf[pos:] if pos else buf
        return events

    def _take_buffer(self, data: bytes) -> bool:
        """Join new bytes to what was left; while a big payload trickles in, only gather."""
        pending = self._pending
        if pending is not None and self._chunks_size + len(data) < pending.total_bytes + 2:
            self._chunks.append(bytes(data))
            self._chunks_size += len(data)
            return False
        if self._chunks:
            self._chunks.append(bytes(data))
            self._buffer = b"".join(self._chunks)
            self._chunks = []
            self._chunks_size = 0
        elif self._buffer:
            self._buffer += data
        else:
            self._buffer = bytes(data)
        return True

    def _read_payload(self, buf: bytes, pos: int, end: int, pending: _Pending,
                      events: list) -> int:
        need = pending.total_bytes + 2
        if end - pos < need:
            rest = buf[pos:]
            self._buffer = b""
            self._chunks = [rest]
            self._chunks_size = len(rest)
            return end
        stop = pos + pending.total_bytes
        if buf[stop:stop + 2] != b"\r\n":
            self._die(events, UNKNOWN_PROTOCOL_OPERATION, "payload not followed by CRLF")
            return -1
        self._pending = None
        split = pos + pending.header_bytes
        headers = buf[pos:split] if pending.verb[0] == 72 else None  # 'H'PUB / 'H'MSG
        events.append(_payload_event(pending, headers, buf[split:stop]))
        return stop + 2

    def _die(self, events: list, err_text: str | None, detail: str) -> list:
        events.append(ProtocolViolation(err_text, detail))
        self.dead = True
        self._buffer = b""
        self._chunks = []
        self._chunks_size = 0
        return events

    def _control_line(self, line: bytes, events: list) -> ProtocolViolation | None:
        head = line[:4].upper()
        if head == b"PING" or head == b"PONG":
            events.append(PING if head == b"PING" else PONG)
            return None
        parts = line.split(None, 1)
        if not parts:
            return ProtocolViolation(UNKNOWN_PROTOCOL_OPERATION, "empty line")
        verb = parts[0].upper()
        if verb not in self._verbs:
            return ProtocolViolation(UNKNOWN_PROTOCOL_OPERATION, f"verb {parts[0][:16]!r}")
        rest = parts[1] if len(parts) > 1 else b""
        if not rest and verb not in (b"+OK", b"-ERR"):
            return ProtocolViolation(UNKNOWN_PROTOCOL_OPERATION, f"{verb.decode()} without arguments")
        return _LINE_HANDLERS[verb](self, verb, rest, events)

    # -- one handler per verb; each appends an event or returns a violation --

    def _pub(self, verb: bytes, rest: bytes, events: list) -> ProtocolViolation | None:
        args = rest.split()
        with_headers = verb == b"HPUB"
        wanted = (3, 4) if with_headers else (2, 3)
        if len(args) not in wanted:
            return ProtocolViolation(None, f"{verb.decode()} with {len(args)} arguments")
        return self._await_payload(verb, args, with_headers)

    def _msg(self, verb: bytes, rest: bytes, events: list) -> ProtocolViolation | None:
        args = rest.split()
        with_headers = verb == b"HMSG"
        wanted = (4, 5) if with_headers else (3, 4)
        if len(args) not in wanted:
            return ProtocolViolation(None, f"{verb.decode()} with {len(args)} arguments")
        return self._await_payload(verb, args, with_headers)

    def _await_payload(self, verb: bytes, args: list, with_headers: bool) -> ProtocolViolation | None:
        total = parse_size(args[-1])
        header_bytes = parse_size(args[-2]) if with_headers else 0
        if total < 0 or header_bytes < 0 or header_bytes > total:
            return ProtocolViolation(None, f"{verb.decode()} bad size")
        if total > self.max_payload:
            return ProtocolViolation(MAXIMUM_PAYLOAD_VIOLATION, f"{total} bytes")
        del args[-2 if with_headers else -1:]
        self._pending = _Pending(verb, args, header_bytes, total)
        return None

    def _sub(self, verb: bytes, rest: bytes, events: list) -> ProtocolViolation | None:
        args = rest.split()
        if len(args) == 2:
            events.append(Sub(args[0], None, args[1]))
        elif len(args) == 3:
            events.append(Sub(args[0], args[1], args[2]))
        else:
            return ProtocolViolation(None, f"SUB with {len(args)} arguments")
        return None

    def _unsub(self, verb: bytes, rest: bytes, events: list) -> ProtocolViolation | None:
        args = rest.split()
        if len(args) == 1:
            events.append(Unsub(args[0], None))
            return None
        if len(args) == 2:
            max_msgs = parse_size(args[1])
            if max_msgs >= 0:
                events.append(Unsub(args[0], max_msgs))
                return None
        return ProtocolViolation(None, "UNSUB bad arguments")

    def _json(self, verb: bytes, rest: bytes, events: list) -> ProtocolViolation | None:
        try:
            options = json.loads(rest)
        except (ValueError, UnicodeDecodeError):
            return ProtocolViolation(None, f"{verb.decode()} with invalid JSON")
        if not isinstance(options, dict):
            return ProtocolViolation(None, f"{verb.decode()} JSON is not an object")
        events.append(Connect(options) if verb == b"CONNECT" else Info(options))
        return None

    def _ok(self, verb: bytes, rest: bytes, events: list) -> None:
        events.append(OK)

    def _err(self, verb: bytes, rest: bytes, events: list) -> None:
        text = rest.strip().decode("utf-8", "replace")
        if len(text) >= 2 and text[0] == text[-1] == "'":
            text = text[1:-1]
        events.append(Err(text))


def _fast_pub(buf: bytes, start: int, line_end: int, eol: int, end: int, max_payload: int,
              events: list) -> int:
    """Parse ``PUB subject [reply] size`` whose payload is all buffered.

    Returns the position after the payload's CRLF, or 0 to let the general path
    handle (and report) anything unusual.
    """
    args = buf[start:line_end].split()
    size_token = args[-1] if args else b""
    if not 2 <= len(args) <= 3 or not size_token.isdigit() or len(size_token) > _MAX_SIZE_DIGITS:
        return 0
    size = int(size_token)
    payload_end = eol + 1 + size
    if size > max_payload or payload_end + 2 > end or buf[payload_end:payload_end + 2] != b"\r\n":
        return 0
    events.append(Pub(args[0], args[1] if len(args) == 3 else None, buf[eol + 1:payload_end]))
    return payload_end + 2


def _payload_event(pending: _Pending, headers: bytes | None, payload: bytes):
    args = pending.args
    if pending.verb[-3:] == b"PUB":
        reply = args[1] if len(args) == 2 else None
        return Pub(args[0], reply, payload, headers)
    reply = args[2] if len(args) == 3 else None
    return Msg(args[0], args[1], reply, payload, headers)


_LINE_HANDLERS = {
    b"PUB": Parser._pub, b"HPUB": Parser._pub,
    b"MSG": Parser._msg, b"HMSG": Parser._msg,
    b"SUB": Parser._sub, b"UNSUB": Parser._unsub,
    b"CONNECT": Parser._json, b"INFO": Parser._json,
    b"+OK": Parser._ok, b"-ERR": Parser._err,
}
