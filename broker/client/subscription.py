"""A subscription: its delivery inbox, its message callback, acks, unsubscribe and close.

Messages arriving on the inbox are queued by a trivial nats-py callback and handed to the
user's callback by a task of our own, one message at a time in arrival order (stan.go
calls the callback from one goroutine per subscription). Our own task, not nats-py's,
runs the callback so that the callback may ``await sub.unsubscribe()`` or
``await conn.close()``: nats-py cancels its subscription tasks when either happens.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, Optional, Union

import nats.errors
from nats.aio.msg import Msg as NatsMsg

from ..protocol.stan import Ack, DecodeError, MsgProto, UnsubscribeRequest, decode
from .errors import (ConnectionClosed, InvalidSubscription, ManualAckInAutoMode, NatsError,
                     NotSupportedByServer, close_timeout, unsubscribe_timeout)

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger("runnel.client")


@dataclass(eq=False)
class Msg:
    """A message delivered to a subscription (a decoded ``MsgProto``)."""

    sequence: int
    channel: str
    data: bytes
    timestamp_ns: int          # Unix nanoseconds, set by the server when it stored it
    redelivered: bool
    redelivery_count: int
    reply: str
    sub: "Subscription" = field(repr=False)

    async def ack(self) -> None:
        """Acknowledge this message (manual-ack subscriptions only).

        Raises ManualAckInAutoMode, InvalidSubscription once the subscription was
        unsubscribed or closed, ConnectionClosed once the connection was.
        """
        await self.sub._ack(self.sequence, manual=True)


#: ``cb(msg)``; may be a coroutine function. Its exception means "not processed": the
#: message is not auto-acked and is redelivered after AckWait.
MsgHandler = Callable[[Msg], Union[None, Awaitable[None]]]


class Subscription:
    """Returned by `Connection.subscribe`. Not created directly."""

    def __init__(self, conn: "Connection", channel: str, cb: MsgHandler, inbox: str, *,
                 queue: str, durable_name: str, manual_acks: bool, max_inflight: int,
                 ack_wait: float):
        self._conn = conn
        self.channel = channel
        self.queue = queue
        self.durable_name = durable_name
        self.manual_acks = manual_acks
        self.max_inflight = max_inflight
        self.ack_wait = ack_wait
        self.inbox = inbox
        self.ack_inbox = ""
        self._cb = cb
        self._nats_sub = None
        self._queue: asyncio.Queue[Optional[NatsMsg]] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._closed = False          # this subscription was unsubscribed or closed
        self._task: asyncio.Task | None = None
        self.delivered = 0            # messages handed to the callback

    def __repr__(self) -> str:
        return (f"<Subscription channel={self.channel!r} queue={self.queue!r} "
                f"durable={self.durable_name!r} inbox={self.inbox!r}>")

    @property
    def is_valid(self) -> bool:
        """False once unsubscribed or closed, or once its connection is closed or lost."""
        return not self._closed and self._conn._closed is None

    # -- life cycle (driven by Connection) --

    async def _listen(self, nc) -> None:
        async def enqueue(msg: NatsMsg) -> None:
            self._queue.put_nowait(msg)
        # No pending limits, as stan.go: MaxInflight bounds what the server sends.
        self._nats_sub = await nc.subscribe(self.inbox, cb=enqueue, pending_msgs_limit=0,
                                            pending_bytes_limit=0)
        self._task = asyncio.ensure_future(self._dispatch())

    def _accepted(self, ack_inbox: str) -> None:
        self.ack_inbox = ack_inbox
        self._ready.set()

    async def _abandon(self) -> None:
        """The subscribe request failed: stop listening, nobody was called."""
        self._closed = True
        await self._stop_listening()

    def _stop(self) -> None:
        """Wake the dispatcher so that it sees the closed state and ends."""
        self._ready.set()
        self._queue.put_nowait(None)

    async def _stop_listening(self) -> None:
        self._stop()
        nats_sub, self._nats_sub = self._nats_sub, None
        if nats_sub is not None and not self._conn._nc.is_closed:
            try:
                await nats_sub.unsubscribe()
            except nats.errors.Error as exc:
                log.debug("unsubscribing inbox %s: %r", self.inbox, exc)

    # -- delivery --

    async def _dispatch(self) -> None:
        await self._ready.wait()
        while True:
            raw = await self._queue.get()
            if raw is None or not self.is_valid:
                return
            try:
                proto = decode(MsgProto, raw.data)
            except DecodeError:
                log.warning("dropped a malformed MsgProto on %s", self.inbox)
                continue
            await self._deliver(proto)

    async def _deliver(self, proto: MsgProto) -> None:
        msg = Msg(proto.sequence, proto.subject, proto.data, proto.timestamp, proto.redelivered,
                  proto.redeliveryCount, proto.reply, self)
        self.delivered += 1
        try:
            result = self._cb(msg)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("message callback of %r raised on seq %d: not acked", self,
                          proto.sequence)
            return
        if not self.manual_acks and self.is_valid:
            try:
                await self._ack(proto.sequence, manual=False)
            except (ConnectionClosed, InvalidSubscription, NatsError) as exc:
                log.debug("auto-ack of seq %d not sent: %s", proto.sequence, exc)

    async def _ack(self, sequence: int, manual: bool) -> None:
        if manual and not self.manual_acks:
            raise ManualAckInAutoMode()
        if self._closed:
            raise InvalidSubscription(detail=f"{self!r} was unsubscribed or closed")
        if self._conn._closed is not None:
            raise self._conn._closed_error()
        payload = Ack(subject=self.channel, sequence=sequence).SerializeToString()
        try:
            await self._conn._nc.publish(self.ack_inbox, payload)
        except nats.errors.Error as exc:
            raise NatsError(str(exc) or type(exc).__name__) from exc

    # -- unsubscribe and close --

    async def unsubscribe(self) -> None:
        """Remove the subscription on the server. A durable's state is deleted; a queue
        member leaves (the last one deletes the group, durable or not)."""
        await self._end(close=False)

    async def close(self) -> None:
        """Stop receiving but keep the server state: a durable goes offline (resume by
        subscribing again with the same durable name), the last member of a durable queue
        group leaves it as a shadow. A plain subscription is simply removed."""
        await self._end(close=True)

    async def _end(self, close: bool) -> None:
        conn = self._conn
        if self._closed:
            raise InvalidSubscription(detail=f"{self!r} was already unsubscribed or closed")
        self._closed = True
        await self._stop_listening()
        conn._forget(self)
        if conn._closed is not None:
            raise conn._closed_error()
        subject = conn._subjects.sub_close if close else conn._subjects.unsub
        if not subject:
            raise NotSupportedByServer(detail="the server sent no subCloseRequests subject")
        request = UnsubscribeRequest(clientID=conn.client_id, subject=self.channel,
                                     inbox=self.ack_inbox, durableName=self.durable_name)
        timeout_error = close_timeout if close else unsubscribe_timeout
        await conn._request_sub_response(subject, request.SerializeToString(), timeout_error)
