"""Requests the server itself makes (heartbeats, duplicate-client probes).

One wildcard inbox subscription ``_INBOX.<nuid>.*`` serves every request, as
modern NATS clients do; replies are matched on the last token. Unlike the STAN
service's other messages, these requests cross the route link: a client may be
connected to another node of the cluster, and its heartbeat inbox answers there
(the inbox subscription is announced to the peers so the replies come back).
"""
from __future__ import annotations

import asyncio
import itertools

from ..server import InternalClient, NatsServer
from .nuid import next_nuid


class _RoutedOrigin:
    """The publisher of these requests: not an internal publish (``origin=None`` stays
    on this node), so the router forwards them to peers that have interest."""

    echo = True
    no_responders = False
    closed = False

    def stall(self, congested: object) -> None:
        return None  # never stop reading: there is no socket behind it


class Requester:
    def __init__(self, server: NatsServer, client: InternalClient):
        self._server = server
        self._prefix = f"_INBOX.{next_nuid()}."
        self._waiting: dict[bytes, asyncio.Future] = {}
        self._tokens = itertools.count(1)
        self._origin = _RoutedOrigin()
        self._sub = server.subscribe_internal(client, (self._prefix + "*").encode(), None,
                                              self._on_reply)
        if server.routes is not None:
            server.routes.local_sub_added(self._sub)

    async def request(self, subject: str, payload: bytes, timeout_s: float) -> bytes | None:
        """The reply's payload, or None on timeout or when nobody listens on ``subject``."""
        subject_bytes = subject.encode()
        plain, groups = self._server.router.match(subject_bytes)  # peers' interest included
        if not plain and not groups:
            return None
        reply = (self._prefix + str(next(self._tokens))).encode()
        future = asyncio.get_running_loop().create_future()
        self._waiting[reply] = future
        try:
            self._server.publish(self._origin, subject_bytes, reply, None, payload)
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
