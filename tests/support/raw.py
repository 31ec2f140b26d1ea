"""A hand-driven NATS client connection for tests: bytes out; protocol events and the
raw transcript in. Server PINGs are answered and hidden unless ``auto_pong`` is False."""
from __future__ import annotations

import asyncio
import collections
import socket

from broker.protocol.nats import writer
from broker.protocol.nats.events import PING, PONG, Info, Msg
from broker.protocol.nats.parser import CLIENT, Parser

TIMEOUT_S = 3.0
QUIET = {"verbose": False, "pedantic": False}


class Raw:
    """A hand-driven client connection: bytes out; events and the raw transcript in.

    Server PINGs are answered and hidden unless ``auto_pong`` is False.
    """

    def __init__(self, reader: asyncio.StreamReader, writer_: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer_
        self.parser = Parser(CLIENT, max_payload=1 << 30)
        self.events: collections.deque = collections.deque()
        self.transcript = b""
        self.eof = False
        self.auto_pong = True
        self.pings_seen = 0

    @classmethod
    async def open(cls, port: int, rcvbuf: int | None = None) -> Raw:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)),
                               TIMEOUT_S)
        reader, writer_ = await asyncio.open_connection(sock=sock)
        return cls(reader, writer_)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def _fill(self, deadline: float) -> None:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"nothing more within the deadline; got {self.transcript[-300:]!r}")
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), remaining)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return
        self.transcript += data
        for event in self.parser.feed(data):
            if event == PING:
                self.pings_seen += 1
                if self.auto_pong:
                    self.writer.write(writer.PONG)
                    continue
            self.events.append(event)

    def _deadline(self, timeout: float) -> float:
        return asyncio.get_running_loop().time() + timeout

    async def next_event(self, timeout: float = TIMEOUT_S):
        deadline = self._deadline(timeout)
        while not self.events:
            if self.eof:
                raise EOFError(f"connection closed; last bytes {self.transcript[-300:]!r}")
            await self._fill(deadline)
        return self.events.popleft()

    async def expect(self, *expected) -> None:
        for event in expected:
            assert await self.next_event() == event

    async def handshake(self, **options) -> Info:
        info = await self.next_event()
        assert isinstance(info, Info)
        self.send(writer.connect({**QUIET, **options}) + writer.PING)
        await self.expect(PONG)
        return info

    async def sync(self, timeout: float = TIMEOUT_S) -> list:
        """PING, and return whatever arrived before the PONG."""
        self.send(writer.PING)
        deadline = self._deadline(timeout)
        got = []
        while True:
            while not self.events:
                if self.eof:
                    raise EOFError(f"connection closed; last bytes {self.transcript[-300:]!r}")
                await self._fill(deadline)
            event = self.events.popleft()
            if event == PONG:
                return got
            got.append(event)

    async def until_closed(self, timeout: float = TIMEOUT_S) -> list:
        """Every event until the server closes the connection (which it must, in time)."""
        deadline = self._deadline(timeout)
        while not self.eof:
            await self._fill(deadline)
        got = list(self.events)
        self.events.clear()
        return got

    async def messages(self, count: int, timeout: float = TIMEOUT_S) -> list[Msg]:
        deadline = self._deadline(timeout)
        got = []
        while len(got) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            event = await self.next_event(max(remaining, 0.001))
            assert isinstance(event, Msg), event
            got.append(event)
        return got

    def close(self) -> None:
        self.writer.close()
