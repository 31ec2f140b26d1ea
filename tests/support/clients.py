"""Real clients as judges: nats-py connections, a raw-socket client, and the node judge.

* ``NatsPool`` opens nats-py connections with short, test-friendly timeouts and
  closes them all at the end; each connection records what its callbacks saw.
* ``RawClient`` speaks the core protocol over a plain socket, for what nats-py
  cannot do (a CONNECT without headers, exact bytes, oversized publishes).
* ``NodeJudge`` runs ``tests/js/judge.mjs`` (npm ``nats``) as a child process and
  reads its JSON lines with deadlines.

Every wait has a deadline. Ordering barriers use the protocol itself: a PING/PONG
round trip on the publisher means the server has routed what it sent before,
and a following one on a subscriber means those messages have reached it
(see ``sync`` for the care nats-py needs).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client

from .procs import REPO

JS_DIR = REPO / "tests" / "js"
JUDGE = JS_DIR / "judge.mjs"
NODE = shutil.which("node") or "node"


def node_available() -> bool:
    return shutil.which("node") is not None and (JS_DIR / "node_modules" / "nats").is_dir()


# ----------------------------------------------------------------------------
# nats-py


@dataclass
class Events:
    """What a nats-py connection's callbacks reported."""

    errors: list[Exception] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    reconnected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def error_cb(self, exc: Exception) -> None:
        self.errors.append(exc)

    async def disconnected_cb(self) -> None:
        self.disconnected.set()

    async def reconnected_cb(self) -> None:
        self.reconnected.set()

    async def closed_cb(self) -> None:
        self.closed.set()


class NatsPool:
    """nats-py connections of one test; ``close_all`` ends every one of them."""

    def __init__(self) -> None:
        self.conns: list[Client] = []
        self.events: dict[int, Events] = {}

    async def connect(self, url: str, **options) -> Client:
        events = Events()
        defaults = dict(connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0,
                        error_cb=events.error_cb, disconnected_cb=events.disconnected_cb,
                        reconnected_cb=events.reconnected_cb, closed_cb=events.closed_cb)
        defaults.update(options)
        nc = await asyncio.wait_for(nats.connect(url, **defaults), 10)
        self.conns.append(nc)
        self.events[id(nc)] = events
        return nc

    def events_of(self, nc: Client) -> Events:
        return self.events[id(nc)]

    async def close_all(self) -> None:
        for nc in self.conns:
            if not nc.is_closed:
                try:
                    await asyncio.wait_for(nc.close(), 5)
                except Exception:  # the test already failed or the server is gone
                    pass


async def sync(nc: Client, timeout: float = 5.0) -> None:
    """Return once the server has processed everything ``nc`` sent before.

    nats-py's ``flush()`` alone is not enough: it writes its PING straight to the
    socket, ahead of commands still waiting in the client's pending buffer (a
    publish or SUB made just before can reach the server after the PING). So the
    buffer is written out first (the flusher task writes it all, in order), then
    the PING/PONG round trip follows those bytes on the wire.
    """
    await asyncio.wait_for(nc._flush_pending(force_flush=True), timeout)
    await nc.flush(timeout=timeout)


async def barrier(*conns: Client, timeout: float = 5.0) -> None:
    """``sync`` each connection in turn.

    ``barrier(pub, sub)``: the server has routed all ``pub`` sent before, and
    ``sub`` has read every message the server queued to it before its PONG.
    """
    for nc in conns:
        await sync(nc, timeout)


async def take_pending(sub, timeout: float = 2.0) -> list:
    """Every message already queued on a callback-less nats-py subscription.

    Call after a ``barrier`` that ends with the subscriber's connection: the
    queue then holds everything the server sent to it before.
    """
    out = []
    while sub.pending_msgs:
        out.append(await sub.next_msg(timeout=timeout))
    return out


async def wait_until(condition, timeout: float = 5.0, interval: float = 0.01,
                     what: str = "condition"):
    """Poll ``condition()`` on the event loop until truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


# ----------------------------------------------------------------------------
# A raw-socket client


@dataclass
class RawMsg:
    op: str  # "MSG" or "HMSG"
    subject: str
    sid: str
    reply: str | None
    headers: bytes | None
    payload: bytes
    hdr_len: int = 0
    total_len: int = 0


class RawError(Exception):
    """The server sent ``-ERR``."""


class RawClient:
    """A minimal NATS client on a plain TCP socket, for byte-level checks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.info: dict = {}
        self.msgs: list[RawMsg] = []  # delivered while waiting for something else
        self.errors: list[str] = []

    @classmethod
    async def connect(cls, host: str, port: int, *, handshake: bool = True,
                      timeout: float = 5.0, **connect_options) -> "RawClient":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        client = cls(reader, writer)
        op = await client.read_op(timeout)
        assert op[0] == "INFO", f"expected INFO first, got {op!r}"
        client.info = op[1]
        if handshake:
            options = {"verbose": False, "pedantic": False, "lang": "raw", "version": "0",
                       "protocol": 1, "headers": False}
            options.update(connect_options)
            await client.send(b"CONNECT " + json.dumps(options).encode() + b"\r\n")
            await client.ping(timeout)
        return client

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def sub(self, subject: str, sid: int | str, queue: str | None = None) -> None:
        middle = f" {queue}" if queue else ""
        await self.send(f"SUB {subject}{middle} {sid}\r\n".encode())

    async def pub(self, subject: str, payload: bytes, reply: str | None = None) -> None:
        middle = f" {reply}" if reply else ""
        await self.send(f"PUB {subject}{middle} {len(payload)}\r\n".encode() + payload + b"\r\n")

    async def hpub(self, subject: str, headers: bytes, payload: bytes,
                   reply: str | None = None) -> None:
        middle = f" {reply}" if reply else ""
        line = f"HPUB {subject}{middle} {len(headers)} {len(headers) + len(payload)}\r\n"
        await self.send(line.encode() + headers + payload + b"\r\n")

    async def read_op(self, timeout: float = 5.0):
        """One server operation: ('INFO', dict), ('MSG'|'HMSG', RawMsg), ('PING',),
        ('PONG',), ('+OK',), ('-ERR', text) or ('EOF',)."""
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
        except asyncio.IncompleteReadError:
            return ("EOF",)
        except ConnectionResetError:
            return ("EOF",)
        line = line[:-2]
        op, _, rest = line.partition(b" ")
        op = op.upper()
        if op == b"INFO":
            return ("INFO", json.loads(rest))
        if op in (b"MSG", b"HMSG"):
            args = rest.decode().split()
            if op == b"MSG":
                subject, sid, *middle, size = args
                hdr_len, total = 0, int(size)
            else:
                subject, sid, *middle, hdr, size = args
                hdr_len, total = int(hdr), int(size)
            body = await asyncio.wait_for(self.reader.readexactly(total + 2), timeout)
            assert body[-2:] == b"\r\n", f"message not followed by CRLF: {body[-10:]!r}"
            body = body[:-2]
            headers = body[:hdr_len] if op == b"HMSG" else None
            return (op.decode(), RawMsg(op.decode(), subject, sid, middle[0] if middle else None,
                                        headers, body[hdr_len:], hdr_len, total))
        if op in (b"PING", b"PONG", b"+OK"):
            return (op.decode(),)
        if op == b"-ERR":
            return ("-ERR", rest.decode().strip().strip("'"))
        raise AssertionError(f"unexpected line from server: {line[:200]!r}")

    async def _until(self, wanted: str, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no {wanted} within {timeout}s")
            op = await self.read_op(remaining)
            if op[0] == wanted:
                return op
            if op[0] in ("MSG", "HMSG"):
                self.msgs.append(op[1])
            elif op[0] == "PING":
                await self.send(b"PONG\r\n")
            elif op[0] == "-ERR":
                self.errors.append(op[1])
                raise RawError(op[1])
            elif op[0] == "EOF":
                raise ConnectionError(f"server closed the connection while waiting for {wanted}")

    async def ping(self, timeout: float = 5.0) -> None:
        """PING and wait for PONG; messages read meanwhile are kept in ``msgs``."""
        await self.send(b"PING\r\n")
        await self._until("PONG", timeout)

    async def next_msg(self, timeout: float = 5.0) -> RawMsg:
        if self.msgs:
            return self.msgs.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no message within {timeout}s")
            op = await self.read_op(remaining)
            if op[0] in ("MSG", "HMSG"):
                return op[1]
            if op[0] == "PING":
                await self.send(b"PONG\r\n")
            elif op[0] == "-ERR":
                self.errors.append(op[1])
                raise RawError(op[1])
            elif op[0] == "EOF":
                raise ConnectionError("server closed the connection")

    async def expect_error_and_close(self, timeout: float = 5.0) -> str:
        """Read until ``-ERR``; then the server must close the connection (EOF)."""
        deadline = time.monotonic() + timeout
        text = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no -ERR and close within {timeout}s (err={text!r})")
            op = await self.read_op(remaining)
            if op[0] == "-ERR" and text is None:
                text = op[1]
            elif op[0] == "EOF":
                if text is None:
                    raise AssertionError("connection closed without -ERR")
                return text
            elif op[0] == "PING":
                await self.send(b"PONG\r\n")

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except Exception:
            pass


# ----------------------------------------------------------------------------
# The node judge (npm `nats`)


class NodeJudge:
    """``node tests/js/judge.mjs <command> <url> <json>`` with bounded reads.

    Use as ``async with NodeJudge("sub", url, subject=...) as judge``; on exit the
    process is killed if it is still running.
    """

    def __init__(self, command: str, url: str, *, deadline_s: float = 15.0, **options):
        self.command = command
        self.url = url
        self.deadline_s = deadline_s
        options.setdefault("deadline_ms", int(deadline_s * 1000))
        self.options = options
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict] = []

    async def start(self) -> "NodeJudge":
        self.proc = await asyncio.create_subprocess_exec(
            NODE, str(JUDGE), self.command, self.url, json.dumps(self.options),
            cwd=str(JS_DIR), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"})
        return self

    async def __aenter__(self) -> "NodeJudge":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 5)

    async def _stderr(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        try:
            data = await asyncio.wait_for(self.proc.stderr.read(), 2)
        except asyncio.TimeoutError:
            return "<stderr not readable>"
        return data.decode(errors="replace")[-2000:]

    async def next_event(self, timeout: float | None = None) -> dict:
        timeout = self.deadline_s + 5 if timeout is None else timeout
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"node judge {self.command}: no output within {timeout}s")
        if not line:
            await asyncio.wait_for(self.proc.wait(), 5)
            raise AssertionError(f"node judge {self.command} exited "
                                 f"({self.proc.returncode}) without output: {await self._stderr()}")
        event = json.loads(line)
        self.lines.append(event)
        return event

    async def ready(self, timeout: float = 10.0) -> None:
        event = await self.next_event(timeout)
        assert event.get("event") == "ready", f"node judge {self.command}: {event}"

    async def result(self, timeout: float | None = None) -> dict:
        """The final result line; the process must then exit with status 0."""
        event = await self.next_event(timeout)
        assert event.get("event") == "result", f"node judge {self.command}: {event}"
        code = await asyncio.wait_for(self.proc.wait(), 5)
        assert "error" not in event, (f"node judge {self.command} failed: {event} "
                                      f"{await self._stderr()}")
        assert code == 0, f"node judge {self.command} exited {code}: {await self._stderr()}"
        return event


async def run_judge(command: str, url: str, *, deadline_s: float = 15.0, **options) -> dict:
    """Run a one-shot node judge command and return its result line."""
    async with NodeJudge(command, url, deadline_s=deadline_s, **options) as judge:
        return await judge.result()
