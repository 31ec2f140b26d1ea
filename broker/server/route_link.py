"""One route connection (a *link*) between two nodes; see routes.py for the design.

A link is an `asyncio.Protocol` that speaks the core protocol in both directions
(SUB/UNSUB/MSG/HMSG/PING/PONG, INFO and CONNECT for the handshake). To the router
it looks like a client connection: the peer's SUBs are subscriptions of the link,
and `deliver` writes MSG/HMSG for the peer's sid.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..protocol.nats import errors as nats_errors, subjects, writer
from ..protocol.nats.errors import ProtocolViolation
from ..protocol.nats.events import Connect, Err, Info, Msg, Ok, Ping, Pong, Sub, Unsub
from ..protocol.nats.parser import SERVER, Parser
from .outbound import Outbound
from .router import Subscription

if TYPE_CHECKING:
    from .routes import RouteManager

log = logging.getLogger("runnel.server.routes")

DEFAULT_ROUTE_PORT = 6222
_ROUTE_VERBS = frozenset((b"CONNECT", b"INFO", b"SUB", b"UNSUB", b"MSG", b"HMSG",
                          b"+OK", b"-ERR"))
_ROUTE_MAX_LINE = 1024 * 1024
_ROUTE_MAX_PAYLOAD = 999_999_999  # the peer enforced its own max_payload already


def parse_route_url(url: str, default_port: int = DEFAULT_ROUTE_PORT) -> tuple[str, int]:
    """``nats://[user:pass@]host:port`` (scheme, credentials optional) -> (host, port).

    An empty host means every interface; port ``-1`` means a random port (0)."""
    text = url.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.rsplit("@", 1)[-1].split("/", 1)[0]
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    if not port_text:
        port = default_port
    else:
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"bad route URL {url!r}: port {port_text!r}") from None
    if port < 0:
        port = 0
    return host, port


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def specific_host(host: str) -> bool:
    return host not in ("", "0.0.0.0", "::")


class _RouteParser(Parser):
    """The server-side parser that also reads MSG/HMSG (a link carries both ways)."""

    def __init__(self) -> None:
        super().__init__(SERVER, max_control_line=_ROUTE_MAX_LINE, max_payload=_ROUTE_MAX_PAYLOAD)
        self._verbs = _ROUTE_VERBS
        self._pub_fast_path = False


class RouteLink(Outbound, asyncio.Protocol):
    """One route connection, accepted or solicited. Event-loop thread only.

    To the router it looks like a connection: `deliver`, `closed`, `congested`,
    `headers`, `echo` (a publishing client stalls on it like on any subscriber)."""

    headers = True
    echo = True

    def __init__(self, manager: RouteManager, solicited_url: str | None = None):
        self.manager = manager
        self.server = manager.server
        self.solicited = solicited_url is not None
        self.url = solicited_url  # host:port dialled, for a solicited link
        self.parser = _RouteParser()
        self.transport: asyncio.Transport | None = None
        self.peer_id = self.peer_name = self.peer_ip = ""
        self.client_urls: list[str] = []
        self.route_url = ""  # where the peer accepts routes, "" if unknown
        self.registered = False
        self.refused = ""  # why this link was not registered: "self", "duplicate", ...
        self.closed = False
        self.close_reason = ""
        self.congested = False
        self.subs: dict[bytes, Subscription] = {}  # the peer's interest, by its sid
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        self.started = time.time()
        self.pings_out = 0
        self.done: asyncio.Future = manager.loop.create_future()
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_pending = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._stalled_producers: list = []

    def __repr__(self) -> str:
        side = "solicited" if self.solicited else "accepted"
        return f"RouteLink({side}, peer={self.peer_name or self.peer_id or '?'})"

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=4 * 1024 * 1024, low=1024 * 1024)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer_ip = peer[0]
        manager = self.manager
        manager.pending.add(self)
        if not self.solicited:
            self.send(writer.info(manager.handshake_info()))
        self._timers["handshake"] = manager.loop.call_later(manager.handshake_timeout_s,
                                                            self._on_handshake_timeout)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        manager = self.manager
        for event in self.parser.feed(data):
            if self.closed:
                return
            kind = event.__class__
            if kind is Msg:
                if self.registered:
                    self.in_msgs += 1
                    self.in_bytes += len(event.payload)
                    manager.deliver_remote(event)
            elif kind is Sub:
                if self.registered:
                    self._on_sub(event)
            elif kind is Unsub:
                if self.registered:
                    self._on_unsub(event)
            elif kind is Ping:
                self.send(writer.PONG)
            elif kind is Pong:
                self.pings_out = 0
            elif kind is Info:
                manager.on_info(self, event.options)
            elif kind is Connect:
                manager.on_connect(self, event.options)
            elif kind is Ok:
                pass
            elif kind is Err:  # 'Duplicate Route' is a normal end of a dial race
                log.log(logging.INFO if event.text == "Duplicate Route" else logging.WARNING,
                        "route %s: peer sent -ERR '%s'", self._label(), event.text)
                self.close(None, f"peer error: {event.text}")
            elif kind is ProtocolViolation:
                log.warning("route %s: protocol violation: %s", self._label(), event.detail)
                self.close(event.err_text, f"protocol violation: {event.detail}")
            else:  # PUB/HPUB: routes forward as MSG only
                self.close(nats_errors.UNKNOWN_PROTOCOL_OPERATION, f"unexpected {event!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self._teardown("peer closed" if exc is None else f"read error: {exc}")

    # -- the peer's interest --

    def _on_sub(self, event: Sub) -> None:
        if event.sid in self.subs or not subjects.is_valid_subscription_subject(event.subject):
            return
        sub = Subscription(self, event.subject, event.queue, event.sid)
        self.subs[event.sid] = sub
        self.server.router.insert(sub)
        self.manager.route_subs += 1

    def _on_unsub(self, event: Unsub) -> None:
        sub = self.subs.pop(event.sid, None)
        if sub is not None:
            self.server.router.remove(sub)
            self.manager.route_subs -= 1

    # -- output (Outbound) --

    def _remove_sub(self, sub: Subscription) -> None:
        return None  # a peer's interest has no auto-unsubscribe limit (max_msgs is 0)

    def _slow_consumer(self, reason: str) -> None:
        log.warning("route %s: slow consumer (%s), closing", self._label(), reason)
        self._out.clear()
        self._teardown("slow consumer")
        self.transport.abort()

    def _teardown(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        router = self.server.router
        for sub in self.subs.values():
            router.remove(sub)
        self.manager.route_subs -= len(self.subs)
        self.subs.clear()
        self._release_producers()
        self.manager.link_closed(self)
        if not self.done.done():
            self.done.set_result(reason)

    # -- handshake and timers --

    def registered_now(self) -> None:
        self.registered = True
        timer = self._timers.pop("handshake", None)
        if timer is not None:
            timer.cancel()
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        self._timers["ping"] = self.manager.loop.call_later(self.manager.ping_interval_s,
                                                            self._on_ping_timer)

    def _on_ping_timer(self) -> None:
        if self.pings_out + 1 > self.server.limits.ping_max:
            log.warning("route %s: stale connection, closing", self._label())
            self.close(nats_errors.STALE_CONNECTION, "stale connection")
            return
        self.pings_out += 1
        self.send(writer.PING)
        self._schedule_ping()

    def _on_handshake_timeout(self) -> None:
        self._timers.pop("handshake", None)
        if not self.registered:
            self.refused = self.refused or "handshake timeout"
            self.close(None, "route handshake timeout")

    def _label(self) -> str:
        peer = self.peer_name or self.peer_id or self.url or self.peer_ip
        return f"{peer} ({'solicited' if self.solicited else 'accepted'})"
