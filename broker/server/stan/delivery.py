"""Delivery on this node: subscriptions it serves, their AckWait timers, their acks.

Built only from effects (and, at start, from the recovered model): the state
machine decides what each subscription gets; this module sends it, re-sends what
stays unacked past AckWait (marked redelivered, with a count kept in memory as the
reference does), and collects the acks arriving on each ack inbox into batches for
the log.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from ...protocol.stan import Ack, DecodeError
from ...state import effects as fx
from raft import exit_process

from ...state import records
from ..server import InternalClient, NatsServer
from .batcher import Batcher

log = logging.getLogger("runnel.stan")

_EARLY_S = 0.015  # the reference redelivers what expires within the next 15 ms


class SubView:
    __slots__ = ("sub_id", "channel", "client_id", "queue", "inbox", "ack_inbox",
                 "ack_wait_s", "max_inflight", "durable_name", "is_durable", "pending",
                 "redeliveries", "timer", "ack_sub", "held", "last_sent")

    def __init__(self, opened: fx.SubOpened):
        self.sub_id = opened.sub_id
        self.channel = opened.channel
        self.client_id = opened.client_id
        self.queue = opened.queue
        self.inbox = opened.inbox.encode()
        self.ack_inbox = opened.ack_inbox
        self.ack_wait_s = opened.ack_wait_s
        self.max_inflight = opened.max_inflight
        self.durable_name = opened.durable_name
        self.is_durable = opened.is_durable
        self.pending: dict[int, float] = {}      # seq -> redelivery deadline (loop time)
        self.redeliveries: dict[int, int] = {}   # seq -> times redelivered (memory only)
        self.timer = None
        self.ack_sub = None
        self.held: list | None = None            # deliveries waiting for the sub's reply
        self.last_sent = 0


class DeliveryView:
    """The subscriptions of the clients this node serves."""

    def __init__(self, server: NatsServer, client: InternalClient, store,
                 serves: Callable[[str], bool], propose_acks):
        self._server = server
        self._client = client
        self._store = store
        self._serves = serves
        self.subs: dict[int, SubView] = {}
        self._awaited_ack_inboxes: set[str] = set()
        self._acks = Batcher(propose_acks, count_max=8192)
        self.out_msgs = self.out_bytes = 0

    # -- effects --

    def on_sub_opened(self, opened: fx.SubOpened) -> None:
        if not self._serves(opened.client_id):
            return
        view = SubView(opened)
        self.subs[view.sub_id] = view
        if opened.ack_inbox in self._awaited_ack_inboxes:
            view.held = []
        view.ack_sub = self._server.subscribe_internal(
            self._client, opened.ack_inbox.encode(), None,
            lambda subject, reply, headers, payload, view=view: self._on_ack(view, payload))

    def on_sub_closed(self, closed: fx.SubClosed) -> None:
        view = self.subs.pop(closed.sub_id, None)
        if view is None:
            return
        if view.timer is not None:
            view.timer.cancel()
        self._server.unsubscribe_internal(self._client, view.ack_sub)

    def on_delivered(self, delivered: fx.MsgsDelivered) -> None:
        view = self.subs.get(delivered.sub_id)
        if view is None:
            return
        if view.held is not None:
            view.held.append(delivered)
            return
        self._send(view, delivered.records, delivered.redelivered)

    def on_pending(self, pending: fx.MsgsPending) -> None:
        view = self.subs.get(pending.sub_id)
        if view is not None and pending.seqs:
            self.redeliver_all(view, list(pending.seqs))

    def on_client_moved(self, moved: fx.ClientMoved, served_here: bool) -> None:
        """Take the client's subscriptions over (and resend what they had pending),
        or let them go when another node serves the client now."""
        for opened, pending in moved.subs:
            if served_here:
                if opened.sub_id not in self.subs:
                    self.on_sub_opened(opened)
                    self.on_pending(fx.MsgsPending(opened.sub_id, pending))
            else:
                self.on_sub_closed(fx.SubClosed(opened.sub_id, opened.ack_inbox))

    def clear(self) -> None:
        for sub_id in list(self.subs):
            view = self.subs[sub_id]
            self.on_sub_closed(fx.SubClosed(sub_id, view.ack_inbox))

    def on_acked(self, acked: fx.MsgsAcked) -> None:
        view = self.subs.get(acked.sub_id)
        if view is None:
            return
        for seq in acked.seqs:
            view.pending.pop(seq, None)
            view.redeliveries.pop(seq, None)

    # -- the subscribe reply comes before the first messages --

    def expect(self, ack_inbox: str) -> None:
        self._awaited_ack_inboxes.add(ack_inbox)

    def release(self, ack_inbox: str) -> None:
        """The SubscriptionResponse went out: send what waited for it."""
        self._awaited_ack_inboxes.discard(ack_inbox)
        for view in self.subs.values():
            if view.ack_inbox == ack_inbox and view.held is not None:
                held, view.held = view.held, None
                for delivered in held:
                    self._send(view, delivered.records, delivered.redelivered)

    # -- sending and redelivery --

    def _send(self, view: SubView, stored: tuple, redelivered: bool) -> None:
        loop = self._server.loop
        deadline = loop.time() + view.ack_wait_s
        publish = self._server.publish
        inbox = view.inbox
        for seq, record in stored:
            if redelivered:
                count = view.redeliveries.get(seq, 0) + 1
                view.redeliveries[seq] = count
                record = records.redelivered(record, count)
            publish(None, inbox, None, None, record)
            view.pending[seq] = deadline
            self.out_bytes += len(record)
            if seq > view.last_sent:
                view.last_sent = seq
        self.out_msgs += len(stored)
        if view.timer is None and view.pending:
            view.timer = loop.call_at(deadline, self._on_ack_wait, view)

    def _on_ack_wait(self, view: SubView) -> None:
        view.timer = None
        if view.sub_id not in self.subs or not view.pending:
            return
        loop = self._server.loop
        now = loop.time()
        due = sorted(seq for seq, deadline in view.pending.items() if deadline <= now + _EARLY_S)
        if due:
            self._send(view, self._read(view.channel, due), True)
        if view.pending and view.timer is None:
            view.timer = loop.call_at(max(min(view.pending.values()), now + 0.001),
                                      self._on_ack_wait, view)

    def redeliver_all(self, view: SubView, seqs: list[int]) -> None:
        """Resend pending messages now (recovery after a restart)."""
        self._send(view, self._read(view.channel, seqs), True)

    def _read(self, channel: str, seqs: list[int]) -> tuple:
        with self._store.read() as txn:
            stored = txn.get_channel(channel)
            if stored is None:
                return ()
            found = [(seq, txn.get_message(stored.channel_id, seq)) for seq in seqs]
        for seq, record in found:
            if record is not None and not records.record_intact(record):
                exit_process(RuntimeError(f"corrupt store: channel {channel!r} seq {seq}: "
                                          f"the stored message fails its checksum"))
        return tuple((seq, record) for seq, record in found if record is not None)

    # -- acks --

    def _on_ack(self, view: SubView, payload: bytes) -> None:
        try:
            ack = Ack.FromString(payload)
        except (DecodeError, UnicodeDecodeError):
            return  # the reference drops what it cannot parse
        self._acks.add((view.ack_inbox, ack.subject, ack.sequence), 1)

    async def drain(self) -> None:
        await self._acks.drain()


def group_acks(items: list) -> list:
    """``[(ack_inbox, channel, seq), ...]`` -> ``[[ack_inbox, channel, [seq, ...]], ...]``."""
    grouped: dict[tuple[str, str], list[int]] = {}
    for ack_inbox, channel, seq in items:
        grouped.setdefault((ack_inbox, channel), []).append(seq)
    return [[ack_inbox, channel, seqs] for (ack_inbox, channel), seqs in grouped.items()]


def now_ns() -> int:
    return time.time_ns()
