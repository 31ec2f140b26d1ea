"""The core NATS server: the listener, the connections, and publish routing.

`NatsServer` owns the router and every connection of this node. A publish is
matched once, copied to each plain subscription and to one member of each queue
group, and the touched connections are flushed once at the end of the loop
iteration. Internal clients (the STAN service) subscribe through the same router,
so they count in /subsz and make no-responders detection work.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import Callable

from ..protocol.nats import headers as nats_headers
from .auth import Authenticator
from .connection import ClientConnection
from .router import Router, Subscription

log = logging.getLogger("runnel.server")

VERSION = "0.1.0"
NATS_COMPAT_VERSION = "2.9.24"  # the core protocol level Runnel speaks
_NKEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass
class ServerLimits:
    """The core NATS limits of reference §1.12, in Runnel's units."""

    max_payload: int = 1024 * 1024
    max_control_line: int = 4096
    max_pending: int = 64 * 1024 * 1024
    max_connections: int = 65536
    max_subscriptions: int = 0
    ping_interval_s: float = 120.0
    ping_max: int = 2
    write_deadline_s: float = 10.0
    auth_timeout_s: float = 2.0


def new_server_id() -> str:
    """A 56-character upper-case ID in the style of nats-server 2.x (an NKey)."""
    return "N" + "".join(secrets.choice(_NKEY_ALPHABET) for _ in range(55))


class InternalClient:
    """A subscriber inside the process: the router calls back instead of writing bytes."""

    echo = True
    headers = True
    closed = False
    congested = False

    def __init__(self, name: str):
        self.name = name
        self.subs: list[Subscription] = []

    def deliver(self, sub: Subscription, subject: bytes, reply: bytes | None,
                headers: bytes | None, payload: bytes) -> None:
        sub.callback(subject, reply, headers, payload)  # type: ignore[attr-defined]


class _InternalSubscription(Subscription):
    __slots__ = ("callback",)


class NatsServer:
    """Listens for NATS clients and routes their messages. Event-loop thread only."""

    def __init__(self, host: str = "0.0.0.0", port: int = 4222, *,
                 limits: ServerLimits | None = None, auth: Authenticator | None = None,
                 server_name: str = "", connect_urls: list[str] | None = None):
        self.host = host
        self.port = port
        self.limits = limits or ServerLimits()
        self.auth = auth or Authenticator()
        self.server_id = new_server_id()
        self.server_name = server_name or self.server_id
        self.extra_connect_urls = list(connect_urls or [])
        self.router = Router()
        self.connections: dict[int, ClientConnection] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = time.time()
        self.total_connections = 0
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        self.slow_consumers = 0
        self._cid = 0
        self._listener: asyncio.AbstractServer | None = None
        self._dirty: list[ClientConnection] = []
        self._flush_scheduled = False
        self._info_template: dict = {}
        self.routes = None  # a routes.RouteManager when this node is in a NATS cluster
        self.info_generation = 0  # bumped whenever INFO changes (connect_urls)

    # -- life cycle --

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.started = time.time()
        self._listener = await self.loop.create_server(
            lambda: ClientConnection(self), self.host, self.port, reuse_address=True, backlog=1024)
        self.port = self._listener.sockets[0].getsockname()[1]
        self._info_template = self._build_info()
        log.info("Listening for client connections on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, close every connection after flushing what it was sent."""
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.connections.values()):
            conn.flush()
            conn.close(None, "server shutdown")
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    # -- connection registry --

    def next_cid(self) -> int:
        self._cid += 1
        return self._cid

    def admit(self, conn: ClientConnection) -> bool:
        if len(self.connections) >= self.limits.max_connections:
            return False
        self.connections[conn.cid] = conn
        self.total_connections += 1
        return True

    def forget(self, conn: ClientConnection) -> None:
        if self.connections.pop(conn.cid, None) is not None:
            self.in_msgs += conn.in_msgs
            self.in_bytes += conn.in_bytes
            self.out_msgs += conn.out_msgs
            self.out_bytes += conn.out_bytes

    def totals(self) -> dict[str, int]:
        """Message and byte counters of this node, closed connections included."""
        live = list(self.connections.values())
        return {
            "in_msgs": self.in_msgs + sum(c.in_msgs for c in live),
            "in_bytes": self.in_bytes + sum(c.in_bytes for c in live),
            "out_msgs": self.out_msgs + sum(c.out_msgs for c in live),
            "out_bytes": self.out_bytes + sum(c.out_bytes for c in live),
        }

    def info_for(self, conn: ClientConnection) -> bytes:
        info = dict(self._info_template)
        info["client_id"] = conn.cid
        info["client_ip"] = conn.ip
        return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"

    def connect_urls(self) -> list[str]:
        own = [] if self.host in ("0.0.0.0", "::", "") else [f"{self.host}:{self.port}"]
        urls = own + [url for url in self.extra_connect_urls if url not in own]
        if self.routes is not None:  # every linked node's client URL(s)
            urls += [url for url in self.routes.client_urls() if url not in urls]
        return urls

    def refresh_info(self) -> None:
        """Rebuild INFO (connect_urls changed) and send it to every client that
        announced protocol 1 (async INFO, reference §1.2)."""
        if not self._info_template:
            return  # not started yet: start() builds it
        self._info_template = self._build_info()
        self.info_generation += 1
        # as nats-server: only to clients past their first PONG; a client still in
        # its handshake gets the new INFO right after that PONG (connection.py)
        for conn in list(self.connections.values()):
            if conn.first_pong_sent and conn.protocol >= 1 and not conn.closed:
                conn.send(self.info_for(conn))

    def _build_info(self) -> dict:
        info = {
            "server_id": self.server_id, "server_name": self.server_name,
            "version": NATS_COMPAT_VERSION, "proto": 1, "go": "runnel-" + VERSION,
            "host": self.host, "port": self.port, "headers": True,
            "max_payload": self.limits.max_payload,
        }
        if self.auth.required:
            info["auth_required"] = True
        urls = self.connect_urls()
        if urls:
            info["connect_urls"] = urls
        return info

    # -- routing --

    def publish(self, origin: ClientConnection | None, subject: bytes, reply: bytes | None,
                headers: bytes | None, payload: bytes) -> None:
        """Deliver one message to every plain subscription and one member per queue group.

        ``origin`` None is an internal client of this node: its messages are never
        forwarded to other nodes (they are addressed to this node's clients)."""
        plain, groups = self.router.match(subject)
        if origin is None and self.routes is not None:
            plain, groups = self.routes.local_only(subject, plain, groups)
        if not plain and not groups:
            if reply and origin is not None and origin.no_responders:
                self._no_responders(origin, reply)
            return
        skip = origin if origin is not None and not origin.echo else None
        for sub in plain:
            conn = sub.conn
            if conn is not skip:
                conn.deliver(sub, subject, reply, headers, payload)
                if conn.congested and origin is not None:
                    origin.stall(conn)
        for members in groups:
            conn = _deliver_to_one(members, skip, subject, reply, headers, payload)
            if conn is not None and conn.congested and origin is not None:
                origin.stall(conn)

    def has_subscribers(self, subject: bytes) -> bool:
        """Whether an internal publish on ``subject`` reaches anyone (on this node)."""
        plain, groups = self.router.match(subject)
        if self.routes is not None:
            plain, groups = self.routes.local_only(subject, plain, groups)
        return bool(plain or groups)

    def _no_responders(self, origin: ClientConnection, reply: bytes) -> None:
        plain, groups = self.router.match(reply)
        for sub in plain + tuple(s for members in groups for s in members):
            if sub.conn is origin:
                sub.conn.deliver(sub, reply, None, nats_headers.NO_RESPONDERS, b"")
                return

    def schedule_flush(self, conn: ClientConnection) -> None:
        self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        dirty = self._dirty
        self._dirty = []
        self._flush_scheduled = False
        for conn in dirty:
            conn.flush()

    # -- internal clients --

    def subscribe_internal(self, client: InternalClient, subject: bytes, queue: bytes | None,
                           callback: Callable[[bytes, bytes | None, bytes | None, bytes], None]
                           ) -> Subscription:
        sub = _InternalSubscription(client, subject, queue, b"%d" % len(client.subs))
        sub.callback = callback
        client.subs.append(sub)
        self.router.insert(sub)
        return sub

    def unsubscribe_internal(self, client: InternalClient, sub: Subscription) -> None:
        if sub in client.subs:
            client.subs.remove(sub)
            self.router.remove(sub)


def _deliver_to_one(members: tuple, skip: object, subject: bytes, reply: bytes | None,
                    headers: bytes | None, payload: bytes):
    """nats-server's queue pick: a random start, then the first member that can take it."""
    count = len(members)
    start = random.randrange(count) if count > 1 else 0
    for offset in range(count):
        sub = members[(start + offset) % count]
        if sub.conn is not skip and not sub.conn.closed:
            sub.conn.deliver(sub, subject, reply, headers, payload)
            return sub.conn
    return None
