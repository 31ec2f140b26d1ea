"""The STAN service of a node: the `_STAN.*` requests of the clients connected here.

It subscribes the seven subjects of reference §6.1 through the node's router,
validates each request (the checks that need no state), turns it into a command,
proposes it, and answers when the command was applied. Publishes that arrive
while a publish batch is in flight go together into the next one.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field

from ...protocol.stan import (CloseRequest, CloseResponse, ConnectRequest, ConnectResponse, PubAck,
                              DecodeError, Ping, PingResponse, PubMsg, SubscriptionRequest,
                              SubscriptionResponse, UnsubscribeRequest, errors, names)
from ...protocol.stan import is_valid_start_position
from ...state import StateMachine, envelope
from ...state import effects as fx
from ..server import InternalClient, NatsServer
from .batcher import Batcher
from .clients import ClientRegistry, HeartbeatSettings
from .delivery import DeliveryView, group_acks
from .housekeeping import Housekeeping
from .nuid import new_inbox
from .replication import VIEW_RESET, Replicator
from .requester import Requester

log = logging.getLogger("runnel.stan")

# A deliberately broken build for the chaos checker's own tests (chaos/ must report
# it as losing data): PubAcks go out before the publish is committed. Never set it
# in production; the node logs a warning when it is on.
UNSAFE_ACK_BEFORE_COMMIT = os.environ.get("RUNNEL_UNSAFE_ACK_BEFORE_COMMIT") == "1"

_DECODE_ERRORS = (DecodeError, UnicodeDecodeError)


@dataclass
class StanSettings:
    cluster_id: str = "test-cluster"
    discover_prefix: str = names.DEFAULT_DISCOVER_PREFIX
    node_id: str = "local"
    clustered: bool = False
    heartbeats: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    expire_every_s: float = 0.0       # 0: no channel has a max_age
    inactivity_every_s: float = 0.0   # 0: no channel has a max_inactivity
    max_inactivity_s: float = 0.0


class StanService:
    def __init__(self, server: NatsServer, machine: StateMachine, replicator: Replicator,
                 settings: StanSettings):
        self.server = server
        self.machine = machine
        self.replicator = replicator
        self.settings = settings
        self.client = InternalClient("stan")
        self.requester = Requester(server, self.client)
        self.clients = ClientRegistry(self.requester, settings.node_id, settings.heartbeats,
                                      self._on_dead_client)
        self.delivery = DeliveryView(server, self.client, machine.store, self.clients.serves,
                                     self._propose_acks)
        self.publishes = Batcher(self._propose_publishes, count_max=8192, bytes_max=4 << 20,
                                 in_flight_max=1)
        self.housekeeping = Housekeeping(self, settings)
        self.in_msgs = self.in_bytes = 0
        self._probing: set[str] = set()
        self._claiming: dict[str, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._subjects = self._subject_map()
        replicator.handle_effects = self._on_effects

    # -- life cycle --

    async def start(self) -> None:
        self._recover()
        await self.replicator.start()
        subjects = self._subjects
        handlers = {"discover": self._on_connect, "pings": self._on_ping,
                    "pub": self._on_publish, "sub": self._on_subscribe,
                    "unsub": self._on_unsubscribe, "subclose": self._on_subclose,
                    "close": self._on_close}
        for name, handler in handlers.items():
            self.server.subscribe_internal(self.client, subjects[name].encode(), None, handler)
        self.housekeeping.start()
        if UNSAFE_ACK_BEFORE_COMMIT:
            log.warning("RUNNEL_UNSAFE_ACK_BEFORE_COMMIT=1: PubAcks are sent before commit "
                        "(a broken build for testing the chaos checker)")
        log.info("STREAM: Streaming Server is ready (cluster ID %r)", self.settings.cluster_id)

    async def stop(self) -> None:
        self.housekeeping.stop()
        for sub in list(self.client.subs):
            self.server.unsubscribe_internal(self.client, sub)
        await self.publishes.drain()
        await self.delivery.drain()
        self.clients.stop()
        await self.replicator.stop()

    def _subject_map(self) -> dict[str, str]:
        cid, prefix = self.settings.cluster_id, self.settings.discover_prefix
        return {"discover": names.discover_subject(cid, prefix),
                "pings": names.pings_subject(cid, prefix),
                "pub": names.pub_wildcard(names.pub_prefix(cid)),
                "pub_prefix": names.pub_prefix(cid),
                "sub": names.sub_subject(cid), "unsub": names.unsub_subject(cid),
                "subclose": names.subclose_subject(cid), "close": names.close_subject(cid)}

    def _recover(self) -> None:
        """Rebuild the loop's view from the recovered model (before Raft replays the
        log tail); what was pending when the node stopped is redelivered at once."""
        self._on_effects(self.machine.current_state_effects())

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _respond(self, reply: bytes | None, payload: bytes) -> None:
        if reply:
            self.server.publish(None, reply, None, None, payload)

    async def _propose(self, op: int, body: dict):
        """Propose; a replication failure becomes the error text of the reply."""
        try:
            return await self.replicator.propose(op, body)
        except Exception as exc:  # raft errors: timeout, no leader, stopped
            log.warning("proposal %s failed: %r", envelope.OP_NAMES[op], exc)
            return str(exc) or type(exc).__name__

    # -- effects of applied commands --

    def _on_effects(self, effects: list) -> None:
        delivery = self.delivery
        for effect in effects:
            kind = type(effect)
            if kind is fx.MsgsDelivered:
                delivery.on_delivered(effect)
            elif kind is fx.MsgsAcked:
                delivery.on_acked(effect)
            elif kind is fx.SubOpened:
                delivery.on_sub_opened(effect)
            elif kind is fx.SubClosed:
                delivery.on_sub_closed(effect)
            elif kind is fx.ClientOpened:
                self.clients.on_opened(effect)
            elif kind is fx.ClientClosed:
                self.clients.on_closed(effect)
            elif kind is fx.MsgsPending:
                delivery.on_pending(effect)
            elif kind is fx.ClientMoved:
                self.clients.on_moved(effect)
                delivery.on_client_moved(effect, effect.node == self.settings.node_id)
            elif kind is fx.ChannelDeleted:
                log.info("STREAM: channel %r deleted (max_inactivity)", effect.name)
            elif effect is VIEW_RESET:
                delivery.clear()
                self.clients.clear()

    # -- connect and close --

    def _on_connect(self, subject, reply, headers, payload) -> None:
        self._spawn(self._connect(reply, payload))

    async def _connect(self, reply: bytes | None, payload: bytes) -> None:
        try:
            request = ConnectRequest.FromString(payload)
        except _DECODE_ERRORS:
            request = None
        if request is None or not request.heartbeatInbox:
            return self._respond(reply, _connect_error(errors.INVALID_CONNECTION_REQUEST))
        if not names.is_valid_client_id(request.clientID):
            return self._respond(reply, _connect_error(errors.INVALID_CLIENT_ID))
        replace = False
        existing = self.clients.get(request.clientID)
        if existing is not None:
            if request.clientID in self._probing or await self._alive(existing):
                return self._respond(reply, _connect_error(errors.CLIENT_ID_ALREADY_REGISTERED))
            replace = True
        error = await self._propose(envelope.CONNECT, {
            "id": request.clientID, "hb": request.heartbeatInbox, "conn": request.connID,
            "proto": request.protocol, "pi": request.pingInterval, "pm": request.pingMaxOut,
            "node": self.settings.node_id, "replace": replace})
        if error:
            return self._respond(reply, _connect_error(error))
        self._respond(reply, self._connect_response(request).SerializeToString())

    async def _alive(self, client) -> bool:
        self._probing.add(client.client_id)
        try:
            return await self.clients.probe(client)
        finally:
            self._probing.discard(client.client_id)

    def _connect_response(self, request: ConnectRequest) -> ConnectResponse:
        s = self._subjects
        response = ConnectResponse(pubPrefix=s["pub_prefix"], subRequests=s["sub"],
                                   unsubRequests=s["unsub"], closeRequests=s["close"],
                                   subCloseRequests=s["subclose"], protocol=1)
        if request.protocol >= 1:
            response.pingRequests = s["pings"]
            response.pingInterval = request.pingInterval
            response.pingMaxOut = request.pingMaxOut
        return response

    def _on_close(self, subject, reply, headers, payload) -> None:
        self._spawn(self._close(reply, payload))

    async def _close(self, reply: bytes | None, payload: bytes) -> None:
        try:
            request = CloseRequest.FromString(payload)
        except _DECODE_ERRORS:
            return self._respond(reply, CloseResponse(error=errors.INVALID_CLOSE_REQUEST)
                                 .SerializeToString())
        await self._barrier()
        error = await self._propose(envelope.CLOSE_CLIENT, {"id": request.clientID,
                                                            "now": time.time_ns()})
        self._respond(reply, CloseResponse(error=error or "").SerializeToString())

    def _on_dead_client(self, client_id: str) -> None:
        self._spawn(self._propose(envelope.CLOSE_CLIENT, {"id": client_id, "now": time.time_ns()}))

    def _claim(self, client) -> asyncio.Future | None:
        """A client that talks to this node is served by this node (ARCHITECTURE §4:
        its connection moved here): take it over through the log, once. Returns the
        move in flight, if any, for callers that must wait for it."""
        if client is None or client.node == self.settings.node_id:
            return None
        moving = self._claiming.get(client.client_id)
        if moving is None:
            moving = asyncio.ensure_future(self._propose(
                envelope.MOVE_CLIENT, {"id": client.client_id, "node": self.settings.node_id}))
            self._claiming[client.client_id] = moving
            moving.add_done_callback(lambda _: self._claiming.pop(client.client_id, None))
        return moving

    async def _barrier(self) -> None:
        """Earlier publishes and acks are applied before a close (§0 "barrier")."""
        await self.publishes.drain()
        await self.delivery.drain()

    def _on_ping(self, subject, reply, headers, payload) -> None:
        if not payload or not reply:
            return
        try:
            ping = Ping.FromString(payload)
        except _DECODE_ERRORS:
            return
        client = self.clients.by_conn_id(ping.connID)
        if client is None:
            return self._respond(reply, PingResponse(error=errors.CLIENT_REPLACED)
                                 .SerializeToString())
        self._respond(reply, b"")
        self.clients.ping_received(client)
        self._claim(client)

    # -- publish --

    def _on_publish(self, subject, reply, headers, payload) -> None:
        try:
            msg = PubMsg.FromString(payload)
        except _DECODE_ERRORS:
            return self._respond(reply, _pub_ack("", errors.INVALID_PUBLISH_REQUEST))
        self.in_msgs += 1  # counted as the reference does: parsed, before other checks
        self.in_bytes += len(payload)
        guid, channel, conn_id, client_id = msg.guid, msg.subject, msg.connID, msg.clientID
        if not guid or not names.is_valid_channel(channel):
            return self._respond(reply, _pub_ack(guid, errors.INVALID_PUBLISH_REQUEST))
        if self.settings.clustered:  # alone, every client is served here
            client = self.clients.by_conn_id(conn_id) if conn_id else self.clients.get(client_id)
            if client is not None and client.node != self.settings.node_id:
                self._claim(client)
        if UNSAFE_ACK_BEFORE_COMMIT:
            self._respond(reply, _pub_ack(guid, None))
            reply = None
        item = ((client_id, conn_id, channel, msg.reply, msg.data), reply, guid)
        self.publishes.add(item, len(payload))

    async def _propose_publishes(self, items: list) -> None:
        body = {"now": time.time_ns(), "msgs": [item[0] for item in items]}
        results = await self._propose(envelope.PUBLISH_BATCH, body)
        if isinstance(results, str):
            results = [results] * len(items)
        respond = self._respond
        for (_, reply, guid), error in zip(items, results):
            if reply:
                respond(reply, _pub_ack(guid, error))

    # -- subscriptions --

    def _on_subscribe(self, subject, reply, headers, payload) -> None:
        self._spawn(self._subscribe(reply, payload))

    async def _subscribe(self, reply: bytes | None, payload: bytes) -> None:
        try:
            request = SubscriptionRequest.FromString(payload)
        except _DECODE_ERRORS:
            return self._respond(reply, _sub_error(errors.INVALID_SUBSCRIPTION_REQUEST))
        error = _subscription_request_error(request)
        if error:
            return self._respond(reply, _sub_error(error))
        moving = self._claim(self.clients.get(request.clientID))
        if moving is not None:
            await moving  # the subscription is served here from its first message
        ack_inbox = new_inbox()
        self.delivery.expect(ack_inbox)
        now = time.time_ns()
        error = await self._propose(envelope.SUBSCRIBE, {
            "cid": request.clientID, "ch": request.subject, "q": request.qGroup,
            "inbox": request.inbox, "ack": ack_inbox, "mif": request.maxInFlight,
            "aw": request.ackWaitInSecs, "dur": request.durableName,
            "sp": request.startPosition, "seq": request.startSequence,
            "start": now - request.startTimeDelta, "now": now})
        response = SubscriptionResponse(error=error) if error else SubscriptionResponse(
            ackInbox=ack_inbox)
        self._respond(reply, response.SerializeToString())
        self.delivery.release(ack_inbox)

    def _on_unsubscribe(self, subject, reply, headers, payload) -> None:
        self._spawn(self._unsubscribe(reply, payload, close=False))

    def _on_subclose(self, subject, reply, headers, payload) -> None:
        self._spawn(self._unsubscribe(reply, payload, close=True))

    async def _unsubscribe(self, reply: bytes | None, payload: bytes, close: bool) -> None:
        try:
            request = UnsubscribeRequest.FromString(payload)
        except _DECODE_ERRORS:
            return self._respond(reply, _sub_error(errors.INVALID_UNSUBSCRIBE_REQUEST))
        await self._barrier()
        error = await self._propose(envelope.UNSUBSCRIBE, {
            "cid": request.clientID, "ch": request.subject, "inbox": request.inbox,
            "close": close, "now": time.time_ns()})
        self._respond(reply, _sub_error(error or ""))

    async def _propose_acks(self, items: list) -> None:
        await self._propose(envelope.ACK_BATCH, {"acks": group_acks(items)})


def _subscription_request_error(request: SubscriptionRequest) -> str | None:
    """The stateless checks of §2.6, in the reference's order."""
    if not request.clientID:
        return errors.CLIENT_ID_MISSING
    if request.ackWaitInSecs <= 0:
        return errors.INVALID_ACK_WAIT
    if request.maxInFlight <= 0:
        return errors.INVALID_MAX_INFLIGHT
    if not is_valid_start_position(request.startPosition):
        return errors.INVALID_START_POSITION
    if not names.is_valid_channel(request.subject):
        return errors.INVALID_SUBJECT
    return None


def _connect_error(text: str) -> bytes:
    return ConnectResponse(error=text).SerializeToString()


def _sub_error(text: str) -> bytes:
    return SubscriptionResponse(error=text).SerializeToString()


def _pub_ack(guid: str, error: str | None) -> bytes:
    """PubAck{guid, error}: hand-encoded for the common short guid (field 1, then 2)."""
    raw = guid.encode()
    if error is None and len(raw) < 128:
        return b"\n" + bytes((len(raw),)) + raw
    return PubAck(guid=guid, error=error or "").SerializeToString()
