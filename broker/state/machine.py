"""The deterministic state machine: one committed command in, one store transaction out.

`StateMachine.apply(index, command)` runs on the Raft apply thread, the only writer
of the store. Each entry is applied in ONE write transaction that also records the
entry's index, so an entry at or below the stored index is skipped: replay is
idempotent. Apply reads no clock, no random source and no environment: the
proposer put everything non-deterministic (times, generated inboxes, node names)
into the command.

Domain errors (unknown client, limit reached) are values in the result. Anything
unexpected is raised: the caller (raft/) treats it as fatal and the process exits,
because a half-understood entry must never be skipped silently.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from storage import ReadTxn, Store, StoreFullError, WriteTxn

from . import clients, effects, envelope, publish, records, subscriptions
from .limits import ChannelLimits, LimitsResolver
from .model import Channel, Client, Group, Sub

log = logging.getLogger("runnel.state")

EffectSink = Callable[[int, list], None]


@dataclass
class ApplyContext:
    """What one apply call accumulates before its transaction commits."""

    txn: WriteTxn
    effects: list = field(default_factory=list)
    dirty_subs: dict[int, Sub] = field(default_factory=dict)
    dirty_channels: dict[str, Channel] = field(default_factory=dict)
    new_records: dict[tuple[str, int], bytes] = field(default_factory=dict)

    def touch(self, sub: Sub) -> None:
        self.dirty_subs[sub.sub_id] = sub


class Result:
    """An entry's result, final once its batch is committed (see `apply_in_batch`)."""

    __slots__ = ("value",)

    def __init__(self, value: object = None):
        self.value = value


@dataclass
class _Batch:
    """The entries of one Raft tick, applied in one store transaction."""

    writing: object          # the store's write() context manager, entered
    txn: WriteTxn
    entries: list = field(default_factory=list)   # (index, command, Result)
    effects: list = field(default_factory=list)   # (index, effects)
    broken: bool = False     # a StoreFullError abandoned the transaction


class StateMachine:
    """Clients, channels and subscriptions of a node, kept in a store."""

    def __init__(self, store: Store, limits: LimitsResolver,
                 effect_sink: EffectSink | None = None):
        self.store = store
        self.limits = limits
        self.effect_sink = effect_sink
        self.clients: dict[str, Client] = {}
        self.conn_ids: dict[bytes, str] = {}
        self.channels: dict[str, Channel] = {}
        self.channel_names_lower: dict[str, str] = {}
        self.ack_inboxes: dict[str, Sub] = {}
        self.next_sub_id = 1
        self.assign_counter = 0
        self.last_applied = 0
        self._batch: _Batch | None = None
        self.load()

    # -- loading --

    def load(self) -> None:
        """Rebuild the model from the store (at start, after a snapshot restore, or
        after a transaction was abandoned for lack of room)."""
        self.clients.clear()
        self.conn_ids.clear()
        self.channels.clear()
        self.channel_names_lower.clear()
        self.ack_inboxes.clear()
        with self.store.read() as txn:
            self.last_applied = txn.get_last_applied_index()
            self.next_sub_id = _meta_int(txn, records.META_NEXT_SUB_ID, 1)
            self.assign_counter = _meta_int(txn, records.META_ASSIGN_COUNTER, 0)
            for client_id, record in txn.list_clients():
                self.add_client(records.client_from_record(client_id, record))
            for stored in txn.list_channels():
                self._load_channel(txn, stored)

    def _load_channel(self, txn: ReadTxn, stored) -> None:
        last_ts, last_activity = records.channel_from_record(stored.record)
        channel = Channel(stored.channel_id, stored.name, last_ts, last_activity)
        stats = stored.stats
        channel.set_stats(stats.first_seq, stats.last_seq, stats.msgs, stats.bytes)
        self._add_channel(channel)
        for sub_id, record in txn.list_subscriptions(stored.channel_id):
            self.index_sub(channel, records.sub_from_record(sub_id, stored.name, record))

    def add_client(self, client: Client) -> None:
        self.clients[client.client_id] = client
        if client.conn_id:
            self.conn_ids[client.conn_id] = client.client_id

    def _add_channel(self, channel: Channel) -> None:
        self.channels[channel.name] = channel
        self.channel_names_lower[channel.name.lower()] = channel.name

    def index_sub(self, channel: Channel, sub: Sub) -> None:
        """Put a (loaded or new) subscription into every index."""
        channel.subs[sub.sub_id] = sub
        if sub.queue:
            group = channel.groups.get(sub.queue)
            if group is None:
                group = channel.groups[sub.queue] = Group(sub.queue, sub.is_durable, sub.last_sent)
            group.last_sent = max(group.last_sent, sub.last_sent)
            if sub.offline:
                group.shadow = sub
            else:
                group.add(sub)
        elif sub.is_durable:
            channel.durables[(sub.client_id, sub.durable_name)] = sub.sub_id
        if not sub.offline:
            self.ack_inboxes[sub.ack_inbox] = sub
            client = self.clients.get(sub.client_id)
            if client is not None:
                client.subs[sub.sub_id] = sub

    # -- apply --

    def apply(self, index: int, command: bytes):
        """Apply one committed entry; return its result for the proposer."""
        if index <= self.last_applied:
            return None  # replayed: already in the store
        op, body = envelope.decode(command)
        handler = _HANDLERS[op]
        try:
            with self.store.write() as txn:
                ctx = ApplyContext(txn)
                result = handler(self, ctx, body)
                self._persist(ctx)
                txn.set_last_applied_index(index)
        except StoreFullError as exc:
            return self._abandon(index, op, body, exc)
        self.last_applied = index
        if ctx.effects and self.effect_sink is not None:
            self.effect_sink(index, ctx.effects)
        return result

    # -- apply, a Raft tick at a time --

    def apply_in_batch(self, index: int, command: bytes) -> Result:
        """Apply an entry into the current batch's transaction (opened on first use).

        Raft applies committed entries in bursts (one per tick); committing them in one
        transaction costs one store commit instead of one per entry, which keeps the
        tick thread's heartbeats on time under bursts of small commands. The entry's
        index is recorded in the same transaction, so replay stays idempotent. The
        result is final only after `end_batch`.
        """
        result = Result()
        if index <= self.last_applied:
            return result
        op, body = envelope.decode(command)
        batch = self._batch
        if batch is None:
            writing = self.store.write()
            batch = self._batch = _Batch(writing, writing.__enter__())
        batch.entries.append((index, command, result))
        if batch.broken:
            return result  # applied one by one by end_batch
        try:
            ctx = ApplyContext(batch.txn)
            result.value = _HANDLERS[op](self, ctx, body)
            self._persist(ctx)
            batch.txn.set_last_applied_index(index)
        except StoreFullError:
            batch.broken = True
            return result
        self.last_applied = index
        if ctx.effects:
            batch.effects.append((index, ctx.effects))
        return result

    def end_batch(self) -> list:
        """Commit the batch; return its ``(index, effects)`` in log order. If there was
        no room, the batch's entries are applied again one entry per transaction, so
        each one that does not fit is skipped alone (see `_abandon`)."""
        batch, self._batch = self._batch, None
        if batch is None:
            return []
        if not batch.broken:
            try:
                batch.writing.__exit__(None, None, None)
                return batch.effects
            except StoreFullError:
                pass
        else:
            _abort(batch.writing)
        self.load()
        return self._apply_one_by_one(batch.entries)

    def _apply_one_by_one(self, entries: list) -> list:
        released: list = []
        sink = self.effect_sink
        self.effect_sink = lambda index, effects: released.append((index, effects))
        try:
            for index, command, result in entries:
                result.value = self.apply(index, command)
        finally:
            self.effect_sink = sink
        return released

    def _persist(self, ctx: ApplyContext) -> None:
        txn = ctx.txn
        for sub in ctx.dirty_subs.values():
            channel = self.channels.get(sub.channel)
            if channel is not None and channel.subs.get(sub.sub_id) is sub:
                txn.put_subscription(channel.channel_id, sub.sub_id, records.sub_record(sub))
        for channel in ctx.dirty_channels.values():
            if self.channels.get(channel.name) is channel:
                txn.put_channel(channel.channel_id,
                                records.channel_record(channel.last_ts, channel.last_activity))
        txn.put_meta(records.META_NEXT_SUB_ID, b"%d" % self.next_sub_id)
        txn.put_meta(records.META_ASSIGN_COUNTER, b"%d" % self.assign_counter)

    def _abandon(self, index: int, op: int, body: object, exc: StoreFullError):
        """No room: nothing of the entry was stored. Undo the model, skip the entry."""
        log.error("store full (%s) applying %s at index %d: %s", exc.reason,
                  envelope.OP_NAMES[op], index, exc)
        self.load()
        with self.store.write() as txn:  # a StoreFullError here is fatal: let it out
            txn.set_last_applied_index(index)
        self.last_applied = index
        return _STORE_FULL_RESULTS[op](body, str(exc))

    # -- helpers used by the handlers --

    def limits_for(self, channel: str) -> ChannelLimits:
        return self.limits.for_channel(channel)

    def new_sub_id(self) -> int:
        sub_id = self.next_sub_id
        self.next_sub_id += 1
        return sub_id

    def add_channel(self, ctx: ApplyContext, name: str, now: int) -> Channel:
        channel_id = ctx.txn.create_channel(name, records.channel_record(0, now))
        channel = Channel(channel_id, name, 0, now)
        self._add_channel(channel)
        return channel

    def remove_channel(self, ctx: ApplyContext, channel: Channel) -> None:
        ctx.txn.delete_channel(channel.channel_id)
        for sub in channel.subs.values():
            self.ack_inboxes.pop(sub.ack_inbox, None)
            client = self.clients.get(sub.client_id)
            if client is not None:
                client.subs.pop(sub.sub_id, None)
        del self.channels[channel.name]
        self.channel_names_lower.pop(channel.name.lower(), None)

    def current_state_effects(self) -> list:
        """Effects that describe the whole current state: every client and every online
        subscription with its pending sequences (after a snapshot was installed, the
        event loop rebuilds its view from these)."""
        found: list = []
        for client_id in sorted(self.clients):
            client = self.clients[client_id]
            found.append(effects.ClientOpened(client.client_id, client.hb_inbox, client.conn_id,
                                              client.protocol, client.node))
        for name in sorted(self.channels):
            channel = self.channels[name]
            for sub_id in sorted(channel.subs):
                sub = channel.subs[sub_id]
                if not sub.offline:
                    found.append(subscriptions.opened(sub))
                    if sub.pending:
                        found.append(effects.MsgsPending(sub.sub_id, tuple(sorted(sub.pending))))
        return found

    def sync_stats(self, ctx: ApplyContext, channel: Channel) -> None:
        stats = ctx.txn.channel_stats(channel.channel_id)
        channel.set_stats(stats.first_seq, stats.last_seq, stats.msgs, stats.bytes)


def _abort(writing) -> None:
    """Leave a write() block with an error: the store abandons the transaction."""
    try:
        writing.__exit__(StoreFullError, StoreFullError("abandoned", "map"), None)
    except StoreFullError:
        pass


def _meta_int(txn: ReadTxn, key: str, default: int) -> int:
    value = txn.get_meta(key)
    return int(value) if value is not None else default


_HANDLERS = {
    envelope.CONNECT: clients.apply_connect,
    envelope.CLOSE_CLIENT: clients.apply_close_client,
    envelope.PUBLISH_BATCH: publish.apply_publish_batch,
    envelope.SUBSCRIBE: subscriptions.apply_subscribe,
    envelope.UNSUBSCRIBE: subscriptions.apply_unsubscribe,
    envelope.ACK_BATCH: subscriptions.apply_ack_batch,
    envelope.EXPIRE: publish.apply_expire,
    envelope.DELETE_CHANNEL: publish.apply_delete_channel,
    envelope.MOVE_CLIENT: clients.apply_move_client,
}

_STORE_FULL_RESULTS = {
    envelope.CONNECT: lambda body, error: error,
    envelope.CLOSE_CLIENT: lambda body, error: error,
    envelope.PUBLISH_BATCH: lambda body, error: [error] * len(body["msgs"]),
    envelope.SUBSCRIBE: lambda body, error: error,
    envelope.UNSUBSCRIBE: lambda body, error: error,
    envelope.ACK_BATCH: lambda body, error: None,
    envelope.EXPIRE: lambda body, error: None,
    envelope.DELETE_CHANNEL: lambda body, error: None,
    envelope.MOVE_CLIENT: lambda body, error: error,
}
