"""Requests the server itself makes (heartbeats, duplicate-client probes).

One wildcard inbox subscription ``_INBOX.<nuid>.*`` serves every request, as
modern NATS clients do; replies are matched on the last token.
"""
from __future__ import annotations

import asyncio
import itertools

from ..server import InternalClient, NatsServer
from .nuid import next_nuid


class Requester:
    def __init__(self, server: NatsServer, client: InternalClient):
        self._server = server
        self._prefix = f"_INBOX.{next_nuid()}."
        self._waiting: dict[bytes, asyncio.Future] = {}
        self._tokens = itertools.count(1)
        server.subscribe_internal(client, (self._prefix + "*").encode(), None, self._on_reply)

    async def request(self, subject: str, payload: bytes, timeout_s: float) -> bytes | None:
        """The reply's payload, or None on timeout or when nobody listens on ``subject``."""
        subject_bytes = subject.encode()
        if not self._server.has_subscribers(subject_bytes):
            return None
        reply = (self._prefix + str(next(self._tokens))).encode()
        future = asyncio.get_running_loop().create_future()
        self._waiting[reply] = future
        try:
            self._server.publish(None, subject_bytes, reply, None, payload)
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiting.pop(reply, None)

    def _on_reply(self, subject: bytes, reply: bytes | None, headers: bytes | None,
                  payload: bytes) -> None:
        future = self._waiting.pop(subject, None)
        if future is not None and not future.done():
            future.set_result(payload)
