"""One client connection: protocol events in, protocol bytes out.

The connection is an `asyncio.Protocol`: `data_received` feeds the sans-I/O parser
and acts on each event. Everything written to the peer goes through one outbound
buffer, joined and written once per loop iteration (the server schedules the
flush). The buffer is bounded: past `max_pending` bytes, or a write stalled past
`write_deadline`, the connection is a slow consumer and is cut off, so nobody
else waits for it.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from ..protocol.nats import errors, subjects, writer
from ..protocol.nats.errors import ProtocolViolation
from ..protocol.nats.events import Connect, Info, Msg, Ok, Ping, Pong, Pub, Sub, Unsub
from ..protocol.nats.parser import SERVER, Parser
from .outbound import Outbound
from .router import Subscription

if TYPE_CHECKING:
    from .server import NatsServer

log = logging.getLogger("runnel.server")

_FIRST_PING_DELAY_S = 2.0
# Flow control: a connection whose socket holds more than this is "congested", and a
# publisher delivering to it stops being read until it drains (or STALL_MAX_S passes),
# as nats-server stalls fast producers. Past max_pending it is a slow consumer.
WRITE_HIGH_WATER = 4 * 1024 * 1024
WRITE_LOW_WATER = 1024 * 1024
STALL_MAX_S = 0.1


class ClientConnection(Outbound, asyncio.Protocol):
    """A NATS client connection. Lives on the event loop thread only."""

    def __init__(self, server: NatsServer):
        self.server = server
        limits = server.limits
        self.limits = limits
        self.cid = server.next_cid()
        self.parser = Parser(SERVER, max_control_line=limits.max_control_line,
                             max_payload=limits.max_payload)
        self.transport: asyncio.Transport | None = None
        self.subs: dict[bytes, Subscription] = {}
        self.ip, self.port = "", 0
        self.connected = False  # a valid CONNECT was received
        self.verbose = self.pedantic = False
        self.echo = True
        self.headers = self.no_responders = False
        self.protocol = 0
        self.name = self.lang = self.version = ""
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        self.started = time.time()
        self.last_activity = self.started
        self.closed = False
        self.close_reason = ""
        self.pings_out = 0
        self.first_pong_sent = False  # the PONG that ends the client's handshake
        self._info_generation = server.info_generation  # of the INFO sent on connect
        self.rtt_s = 0.0  # measured by the first PING this server sends
        self._ping_sent_at = 0.0
        self._first_ping_sent = False
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_pending = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.congested = False
        self._stalled_producers: list[ClientConnection] = []
        self._stalled = False
        self._handlers = {Connect: self._on_connect, Sub: self._on_sub, Unsub: self._on_unsub,
                          Ping: self._on_ping, Pong: self._on_pong, Info: _ignore, Ok: _ignore,
                          ProtocolViolation: self._on_violation}

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.ip, self.port = peer[0], peer[1]
        admitted = self.server.admit(self)
        self.send(self.server.info_for(self))
        if not admitted:  # nats-server sends INFO, then the error
            self.close(errors.MAXIMUM_CONNECTIONS_EXCEEDED, "max connections")
            return
        loop = self.server.loop
        if self.server.auth.required:
            self._timers["auth"] = loop.call_later(self.limits.auth_timeout_s, self._on_auth_timeout)
        first_ping = _FIRST_PING_DELAY_S * (1 + random.random() * 0.2)
        self._timers["ping"] = loop.call_later(min(first_ping, self.limits.ping_interval_s),
                                               self._on_ping_timer)

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.time()
        if not self.connected and self.server.auth.required and not self._first_op_ok(data):
            self.close(errors.AUTHORIZATION_VIOLATION, "first operation is not CONNECT")
            return
        handlers = self._handlers
        for event in self.parser.feed(data):
            if self.closed:
                return
            if event.__class__ is Pub:
                self._on_pub(event)
            else:
                handlers.get(event.__class__, self._on_unexpected)(event)

    def _first_op_ok(self, data: bytes) -> bool:
        """With auth required, the stream must begin with CONNECT (nats-server checks
        the first byte; a malformed CONNECT is then a parse error like any other)."""
        return self.parser.buffered_bytes > 0 or data[:1] in (b"C", b"c")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self._teardown("client closed" if exc is None else f"read error: {exc}")

    def stall(self, congested: ClientConnection) -> None:
        """Stop reading this publisher until ``congested`` drains (bounded in time)."""
        if self._stalled or self.closed or self.transport is None:
            return
        self._stalled = True
        self.transport.pause_reading()
        congested._stalled_producers.append(self)
        self._timers["stall"] = self.server.loop.call_later(STALL_MAX_S, self.unstall)

    def unstall(self) -> None:
        timer = self._timers.pop("stall", None)
        if timer is not None:
            timer.cancel()
        if self._stalled and not self.closed:
            self._stalled = False
            self.transport.resume_reading()

    # -- output (send, deliver, flush and close are in Outbound) --

    @property
    def pending_bytes(self) -> int:
        buffered = self.transport.get_write_buffer_size() if self.transport else 0
        return self._out_size + buffered

    def _slow_consumer(self, reason: str) -> None:
        log.warning("cid %d: slow consumer (%s), closing", self.cid, reason)
        self.server.slow_consumers += 1
        self._out.clear()
        self._teardown("slow consumer: " + reason)
        self.transport.abort()

    def _teardown(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        routes = self.server.routes
        for sub in list(self.subs.values()):
            self.server.router.remove(sub)
            if routes is not None:
                routes.local_sub_removed(sub)
        self.subs.clear()
        self._release_producers()
        self.server.forget(self)

    # -- protocol events --

    def _on_connect(self, event: Connect) -> None:
        verdict = self.server.auth.check(event.options)
        rejection = _connect_rejection(event.options) if verdict else errors.AUTHORIZATION_VIOLATION
        if rejection is not None:
            self.close(rejection, "connect rejected")
            return
        self._apply_connect_options(event.options)
        timer = self._timers.pop("auth", None)
        if timer is not None:
            timer.cancel()
        self.connected = True
        if self.verbose:
            self.send(writer.OK)

    def _apply_connect_options(self, options: dict) -> None:
        self.verbose = bool(options.get("verbose", True))
        self.pedantic = bool(options.get("pedantic", True))
        self.echo = bool(options.get("echo", True))
        self.headers = bool(options.get("headers", False))
        self.no_responders = bool(options.get("no_responders", False))
        self.protocol = int(options.get("protocol", 0) or 0)
        self.name = str(options.get("name", "") or "")
        self.lang = str(options.get("lang", "") or "")
        self.version = str(options.get("version", "") or "")

    def _on_pub(self, event: Pub) -> None:
        payload_size = len(event.payload) if event.headers is None else (
            len(event.payload) + len(event.headers))
        self.in_msgs += 1
        self.in_bytes += payload_size
        if self.pedantic and not subjects.is_valid_publish_subject(event.subject):
            self.send(errors.err_line(errors.INVALID_PUBLISH_SUBJECT))
        self.server.publish(self, event.subject, event.reply, event.headers, event.payload)
        if self.verbose:
            self.send(writer.OK)

    def _on_sub(self, event: Sub) -> None:
        if not subjects.is_valid_subscription_subject(event.subject) or (
                event.queue is not None and not event.queue):
            self.send(errors.err_line(errors.INVALID_SUBJECT))
            return
        if event.sid not in self.subs:
            max_subs = self.limits.max_subscriptions
            if max_subs and len(self.subs) >= max_subs:
                self.send(errors.err_line(errors.MAXIMUM_SUBSCRIPTIONS_EXCEEDED))
                return
            sub = Subscription(self, event.subject, event.queue, event.sid)
            self.subs[event.sid] = sub
            self.server.router.insert(sub)
            if self.server.routes is not None:  # other nodes learn this interest
                self.server.routes.local_sub_added(sub)
        if self.verbose:
            self.send(writer.OK)

    def _on_unsub(self, event: Unsub) -> None:
        sub = self.subs.get(event.sid)
        if sub is not None:
            if event.max_msgs and event.max_msgs > sub.delivered:
                sub.max_msgs = event.max_msgs
            else:
                self._remove_sub(sub)
        if self.verbose:
            self.send(writer.OK)

    def _remove_sub(self, sub: Subscription) -> None:
        if self.subs.pop(sub.sid, None) is sub:
            self.server.router.remove(sub)
            if self.server.routes is not None:
                self.server.routes.local_sub_removed(sub)

    def _on_ping(self, event: Ping) -> None:
        self.send(writer.PONG)
        if not self.first_pong_sent and self.connected:
            self.first_pong_sent = True
            # the cluster changed during the handshake: the INFO it missed (nats-server
            # sends it after this first PONG, where nats clients expect no INFO before)
            if self.protocol >= 1 and self._info_generation != self.server.info_generation:
                self.send(self.server.info_for(self))

    def _on_pong(self, event: Pong) -> None:
        self.pings_out = 0
        if self._ping_sent_at:
            self.rtt_s = time.time() - self._ping_sent_at
            self._ping_sent_at = 0.0

    def _on_violation(self, event: ProtocolViolation) -> None:
        log.debug("cid %d: protocol violation: %s %s", self.cid, event.err_text, event.detail)
        self.close(event.err_text, f"protocol violation: {event.detail}")

    def _on_unexpected(self, event: object) -> None:
        if isinstance(event, Msg):
            self.close(errors.UNKNOWN_PROTOCOL_OPERATION, "MSG from a client")
        else:  # -ERR from a client ends the connection, as nats-server does
            self.close(None, f"client sent {event!r}")

    # -- timers --

    def _on_auth_timeout(self) -> None:
        self._timers.pop("auth", None)
        if not self.connected:
            self.close(errors.AUTHENTICATION_TIMEOUT, "auth timeout")

    def _on_ping_timer(self) -> None:
        """nats-server's ping timer: PING unless the client spoke within the interval."""
        interval = self.limits.ping_interval_s
        if not self._first_ping_sent or time.time() - self.last_activity >= interval:
            if self.pings_out + 1 > self.limits.ping_max:
                self.close(errors.STALE_CONNECTION, "stale connection")
                return
            self.pings_out += 1
            self._first_ping_sent = True
            self._ping_sent_at = time.time()
            self.send(writer.PING)
        self._timers["ping"] = self.server.loop.call_later(interval, self._on_ping_timer)



def _connect_rejection(options: dict) -> str | None:
    """The -ERR text a CONNECT must be refused with, or None when it is acceptable."""
    protocol = options.get("protocol", 0)
    if protocol not in (0, 1, None):
        return errors.INVALID_CLIENT_PROTOCOL
    if options.get("no_responders") and not options.get("headers"):
        return errors.NO_RESPONDERS_REQUIRES_HEADERS
    if "account" in options or "new_account" in options:
        return errors.AUTHORIZATION_VIOLATION
    return None


def _ignore(event: object) -> None:
    return None
