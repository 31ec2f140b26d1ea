"""Apply: which subscription gets which message, decided identically on every node.

`pump` hands each online subscription the messages after its last_sent while it
has room under MaxInflight, and each queue group's messages to one member (the
non-stalled member with the fewest pending, the least recently chosen on a tie).
Every decision is recorded as pending in the same transaction that made it, so
any node can take a subscription over with exact state.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from storage import StoreCorruptError

from ..protocol.stan import First, LastReceived, NewOnly, SequenceStart, TimeDeltaStart
from . import records
from .effects import MsgsAcked, MsgsDelivered
from .model import Channel, Group, Sub

if TYPE_CHECKING:
    from storage import ReadTxn

    from .machine import ApplyContext, StateMachine


def pump(sm: StateMachine, ctx: ApplyContext, channel: Channel) -> None:
    for sub_id in sorted(channel.subs):
        sub = channel.subs[sub_id]
        if not sub.offline and not sub.queue:
            _pump_plain(ctx, channel, sub)
    for key in sorted(channel.groups):
        _pump_group(sm, ctx, channel, channel.groups[key])


def _pump_plain(ctx: ApplyContext, channel: Channel, sub: Sub) -> None:
    drain_backlog(ctx, channel, sub)
    start = max(sub.last_sent + 1, channel.first_available())
    end = min(channel.last_seq, start + sub.max_inflight - len(sub.pending) - 1)
    if end < start:
        return
    seqs = range(start, end + 1)
    sub.pending.update(dict.fromkeys(seqs))
    sub.last_sent = end
    ctx.touch(sub)
    ctx.effects.append(MsgsDelivered(sub.sub_id, records_for(ctx, channel, seqs), False))


def _pump_group(sm: StateMachine, ctx: ApplyContext, channel: Channel, group: Group) -> None:
    if not group.members:
        return
    for member in group.members:
        drain_backlog(ctx, channel, member)
    seq = start = max(group.last_sent + 1, channel.first_available())
    chosen: dict[int, list[int]] = {}
    while seq <= channel.last_seq:
        member = best_member(group)
        if member is None:
            break
        member.pending[seq] = None
        sm.assign_counter += 1
        member.last_assign = sm.assign_counter
        chosen.setdefault(member.sub_id, []).append(seq)
        seq += 1
    if seq == start:
        return
    group.last_sent = seq - 1
    for member in group.members:
        member.last_sent = group.last_sent
        ctx.touch(member)
    for sub_id in sorted(chosen):
        ctx.effects.append(MsgsDelivered(sub_id, records_for(ctx, channel, chosen[sub_id]), False))


def best_member(group: Group) -> Sub | None:
    """The member with room and the fewest pending; the least recently chosen on a tie."""
    best = None
    for member in group.members:
        if member.stalled:
            continue
        if best is None or (len(member.pending), member.last_assign) < (
                len(best.pending), best.last_assign):
            best = member
    return best


def records_for(ctx: ApplyContext, channel: Channel, seqs) -> tuple:
    """``(seq, record)`` for stored sequences; messages gone from the store are skipped."""
    new = ctx.new_records
    out = []
    for seq in seqs:
        record = new.get((channel.name, seq))
        if record is None:
            record = ctx.txn.get_message(channel.channel_id, seq)
            if record is not None and not records.record_intact(record):
                raise StoreCorruptError(f"channel {channel.name!r} seq {seq}: the stored "
                                        f"message fails its checksum")
        if record is not None:
            out.append((seq, record))
    return tuple(out)


def drain_backlog(ctx: ApplyContext, channel: Channel, sub: Sub) -> None:
    """Send what the subscription is owed, as far as MaxInflight allows."""
    room = sub.max_inflight - len(sub.pending)
    if not sub.backlog or room <= 0:
        return
    seqs = sub.backlog[:room]
    del sub.backlog[:room]
    sub.pending.update(dict.fromkeys(seqs))
    ctx.touch(sub)
    ctx.effects.append(MsgsDelivered(sub.sub_id, records_for(ctx, channel, seqs), True))


def owe(sub: Sub, seqs) -> None:
    """Add sequences to what the subscription is owed (kept sorted, no repeats)."""
    sub.backlog = sorted(set(sub.backlog).union(seqs))


def hand_over(ctx: ApplyContext, channel: Channel, seqs: list[int], members: list[Sub]) -> None:
    """A leaving queue member's unacked messages go round-robin to the others, marked
    redelivered: at once where a member has room under its MaxInflight, otherwise
    into that member's backlog (MaxInflight holds on every path)."""
    if not members or not seqs:
        return
    given: dict[int, list[int]] = {}
    for index, seq in enumerate(sorted(seqs)):
        member = members[index % len(members)]
        if len(member.pending) < member.max_inflight:
            member.pending[seq] = None
            given.setdefault(member.sub_id, []).append(seq)
        else:
            owe(member, (seq,))
        ctx.touch(member)
    for sub_id in sorted(given):
        ctx.effects.append(MsgsDelivered(sub_id, records_for(ctx, channel, given[sub_id]), True))


def drop_below_first(sm: StateMachine, ctx: ApplyContext, channel: Channel) -> None:
    """Messages dropped by limits or age are no longer pending anywhere."""
    first = channel.first_available()
    for sub_id in sorted(channel.subs):
        sub = channel.subs[sub_id]
        if sub.backlog and sub.backlog[0] < first:
            sub.backlog = [seq for seq in sub.backlog if seq >= first]
            ctx.touch(sub)
        gone = [seq for seq in sub.pending if seq < first]
        if gone:
            for seq in gone:
                del sub.pending[seq]
            ctx.touch(sub)
            ctx.effects.append(MsgsAcked(sub.sub_id, tuple(sorted(gone))))


def initial_last_sent(ctx: ApplyContext, channel: Channel, position: int, start_seq: int,
                      start_time_ns: int) -> int:
    """lastSent for a new subscription, so that delivery starts at lastSent + 1 (§2.3)."""
    first, last = channel.first_available(), channel.last_seq
    if position == NewOnly:
        return last
    if position == LastReceived:
        return last - 1 if channel.msgs else last
    if position == First:
        return first - 1
    if position == SequenceStart:
        if start_seq > last:
            return last
        return max(start_seq, first) - 1
    if position == TimeDeltaStart:
        return min(first_seq_at_or_after(ctx.txn, channel, start_time_ns), last + 1) - 1
    raise ValueError(f"start position {position} was not validated by the proposer")


def first_seq_at_or_after(txn: ReadTxn, channel: Channel, timestamp: int) -> int:
    """The first stored sequence whose timestamp is >= ``timestamp`` (binary search:
    timestamps never decrease along a channel), or last_seq + 1 if there is none."""
    low, high = channel.first_available(), channel.last_seq + 1
    while low < high:
        middle = (low + high) // 2
        record = txn.get_message(channel.channel_id, middle)
        if record is None or records.message_timestamp(record) < timestamp:
            low = middle + 1
        else:
            high = middle
    return low
