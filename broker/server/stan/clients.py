"""STAN clients as this node sees them: lookup by client ID and connID, server
heartbeats to the clients it serves (§2.14), and the duplicate-ID probe (§2.4)."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable

from ...state import effects as fx
from .requester import Requester

log = logging.getLogger("runnel.stan")

DUPLICATE_PROBE_TIMEOUT_S = 0.5


@dataclass
class HeartbeatSettings:
    interval_s: float = 30.0
    timeout_s: float = 10.0
    fail_count: int = 10


class ClientView:
    __slots__ = ("client_id", "hb_inbox", "conn_id", "protocol", "node", "fails", "task",
                 "wake")

    def __init__(self, opened: fx.ClientOpened):
        self.client_id = opened.client_id
        self.hb_inbox = opened.hb_inbox
        self.conn_id = opened.conn_id
        self.protocol = opened.protocol
        self.node = opened.node
        self.fails = 0
        self.task: asyncio.Task | None = None
        self.wake: asyncio.Event | None = None


class ClientRegistry:
    def __init__(self, requester: Requester, node_id: str, settings: HeartbeatSettings,
                 on_dead: Callable[[str], None]):
        self._requester = requester
        self.node_id = node_id
        self._settings = settings
        self._on_dead = on_dead
        self.clients: dict[str, ClientView] = {}
        self._by_conn_id: dict[bytes, ClientView] = {}

    def get(self, client_id: str) -> ClientView | None:
        return self.clients.get(client_id)

    def by_conn_id(self, conn_id: bytes) -> ClientView | None:
        return self._by_conn_id.get(conn_id)

    def serves(self, client_id: str) -> bool:
        client = self.clients.get(client_id)
        return client is not None and client.node == self.node_id

    def on_opened(self, opened: fx.ClientOpened) -> None:
        self.on_closed(fx.ClientClosed(opened.client_id))
        client = ClientView(opened)
        self.clients[client.client_id] = client
        if client.conn_id:
            self._by_conn_id[client.conn_id] = client
        if client.node == self.node_id:
            client.wake = asyncio.Event()
            client.task = asyncio.ensure_future(self._heartbeats(client))

    def on_closed(self, closed: fx.ClientClosed) -> None:
        client = self.clients.pop(closed.client_id, None)
        if client is None:
            return
        if client.conn_id and self._by_conn_id.get(client.conn_id) is client:
            del self._by_conn_id[client.conn_id]
        if client.task is not None:
            client.task.cancel()

    def on_moved(self, moved: fx.ClientMoved) -> None:
        """Heartbeats follow the client to the node that now serves it."""
        client = self.clients.get(moved.client_id)
        if client is None:
            return
        client.node = moved.node
        if client.node == self.node_id and client.task is None:
            client.fails = 0
            client.wake = asyncio.Event()
            client.task = asyncio.ensure_future(self._heartbeats(client))
        elif client.node != self.node_id and client.task is not None:
            client.task.cancel()
            client.task = None

    def clear(self) -> None:
        for client_id in list(self.clients):
            self.on_closed(fx.ClientClosed(client_id))

    def ping_received(self, client: ClientView) -> None:
        """A client PING while heartbeats fail: check again at once (§2.14)."""
        if client.fails and client.wake is not None:
            client.wake.set()

    async def probe(self, client: ClientView) -> bool:
        """Whether the registered client still answers its heartbeat inbox."""
        reply = await self._requester.request(client.hb_inbox, b"", DUPLICATE_PROBE_TIMEOUT_S)
        return reply is not None

    async def _heartbeats(self, client: ClientView) -> None:
        settings = self._settings
        while True:
            try:
                await asyncio.wait_for(client.wake.wait(), settings.interval_s)
            except asyncio.TimeoutError:
                pass
            client.wake.clear()
            reply = await self._requester.request(client.hb_inbox, b"", settings.timeout_s)
            client.fails = 0 if reply is not None else client.fails + 1
            if client.fails > settings.fail_count:
                log.info("client %r missed %d heartbeats, closing it", client.client_id,
                         client.fails)
                self._on_dead(client.client_id)
                return

    def stop(self) -> None:
        for client in self.clients.values():
            if client.task is not None:
                client.task.cancel()
