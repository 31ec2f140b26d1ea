"""Client PINGs (reference §2.15): ``Ping{connID}`` every interval; any good reply resets
the outstanding count to 0; more than ``max_out`` outstanding means the connection is lost.

`PingState` is the rule, with no I/O and no clock; `Pinger` is the asyncio task that
applies it, as stan.go's ``pingServer`` / ``processPingResponse`` do.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg as NatsMsg

from ..protocol.stan import DecodeError, PingResponse, decode
from .errors import ConnectionLost

log = logging.getLogger("runnel.client")


class PingState:
    """Counts PINGs without a reply. ``tick()`` before sending each PING: False means
    the budget is spent and the connection is lost."""

    def __init__(self, max_out: int):
        assert max_out >= 1
        self.max_out = max_out
        self.out = 0

    def tick(self) -> bool:
        self.out += 1
        return self.out <= self.max_out

    def answered(self) -> None:
        self.out = 0  # stan.go resets, it does not decrement


def ping_reply_error(msg: NatsMsg) -> str | None:
    """What a reply on the PING inbox means: None = alive; "" = to be ignored (a 503
    no-responders status or an unparseable payload); else the server's error text."""
    if msg.headers:  # a status message (503 no responders): not an answer of the server
        return ""
    if not msg.data:
        return None
    try:
        error = decode(PingResponse, msg.data).error
    except DecodeError:
        return ""
    return error or None


class Pinger:
    """Sends the PINGs and reports loss once through ``on_lost``."""

    def __init__(self, nc, subject: str, inbox: str, payload: bytes, interval_s: float,
                 max_out: int, on_lost: Callable[[ConnectionLost], Awaitable[None] | None]):
        self._nc = nc
        self._subject = subject
        self._inbox = inbox
        self._payload = payload
        self.interval_s = interval_s
        self.state = PingState(max_out)
        self._on_lost = on_lost
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None

    def on_reply(self, msg: NatsMsg) -> None:
        error = ping_reply_error(msg)
        if error is None:
            self.state.answered()
        elif error:
            self._lost(ConnectionLost(error))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if not self.state.tick():
                return self._lost(ConnectionLost(detail=f"{self.state.max_out} PINGs in a row "
                                                 f"unanswered, every {self.interval_s:g}s"))
            if self._nc.is_closed:
                return self._lost(ConnectionLost("nats: connection closed"))
            try:
                await self._nc.publish(self._subject, self._payload, reply=self._inbox)
            except nats.errors.ConnectionClosedError:
                return self._lost(ConnectionLost("nats: connection closed"))
            except nats.errors.Error as exc:  # e.g. the reconnect buffer is full: a miss
                log.debug("PING not sent: %r", exc)

    def _lost(self, error: ConnectionLost) -> None:
        self.stop()
        self._on_lost(error)
