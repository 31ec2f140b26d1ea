"""Apply: subscribe, unsubscribe and sub close, acks (reference §2.6, §2.10–§2.12)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol.stan import errors
from . import delivery, publish
from .effects import MsgsAcked, MsgsDelivered, SubClosed, SubOpened
from .model import Channel, Client, Sub

if TYPE_CHECKING:
    from .machine import ApplyContext, StateMachine


def apply_subscribe(sm: StateMachine, ctx: ApplyContext, body: dict) -> str | None:
    """Create a subscription, resume a durable, or join a queue group.

    Body keys: cid, ch, q, inbox, ack (the ack inbox the proposer generated), mif,
    aw, dur, sp (start position), seq, start (ns: now - startTimeDelta), now.
    """
    client = sm.clients.get(body["cid"])
    if client is None:
        return errors.UNKNOWN_CLIENT_ID
    channel, error = publish.lookup_or_create(sm, ctx, body["ch"], body["now"])
    if error is not None:
        return error
    channel.last_activity = body["now"]
    ctx.dirty_channels[channel.name] = channel
    if body["q"]:
        return _subscribe_queue(sm, ctx, client, channel, body)
    if body["dur"]:
        sub_id = channel.durables.get((client.client_id, body["dur"]))
        if sub_id is not None:
            return _resume_durable(sm, ctx, client, channel, channel.subs[sub_id], body)
    if _full(sm, channel):
        return errors.TOO_MANY_SUBSCRIPTIONS
    last_sent = delivery.initial_last_sent(ctx, channel, body["sp"], body["seq"], body["start"])
    sub = _new_sub(sm, client, channel, body, "", last_sent)
    _open(sm, ctx, client, channel, sub)
    return None


def _subscribe_queue(sm: StateMachine, ctx: ApplyContext, client: Client, channel: Channel,
                     body: dict) -> str | None:
    durable = body["dur"]
    if durable and ":" in durable:
        return errors.INVALID_DURABLE_QUEUE_NAME
    key = f"{durable}:{body['q']}" if durable else body["q"]
    group = channel.groups.get(key)
    if group is not None and not group.members and group.shadow is not None:
        shadow = group.shadow
        group.shadow = None
        shadow.client_id = client.client_id
        return _resume_durable(sm, ctx, client, channel, shadow, body)
    if _full(sm, channel):
        return errors.TOO_MANY_SUBSCRIPTIONS
    if group is not None:
        last_sent = group.last_sent
    else:
        last_sent = delivery.initial_last_sent(ctx, channel, body["sp"], body["seq"], body["start"])
    _open(sm, ctx, client, channel, _new_sub(sm, client, channel, body, key, last_sent))
    return None


def _resume_durable(sm: StateMachine, ctx: ApplyContext, client: Client, channel: Channel,
                    sub: Sub, body: dict) -> str | None:
    """An offline durable (or a durable group's shadow) comes back: same id, same
    position and pending; new inboxes and flow settings; pending resent first."""
    if not sub.offline:
        return errors.DUPLICATE_DURABLE
    sub.inbox, sub.ack_inbox = body["inbox"], body["ack"]
    sub.max_inflight, sub.ack_wait_s = body["mif"], body["aw"]
    sub.offline = False
    pending = sorted(sub.pending)
    if len(pending) > sub.max_inflight:  # resend what fits; the rest is owed
        delivery.owe(sub, pending[sub.max_inflight:])
        pending = pending[:sub.max_inflight]
        sub.pending = dict.fromkeys(pending)
    del channel.subs[sub.sub_id]  # re-indexed as online below
    _open(sm, ctx, client, channel, sub, resend=pending)
    return None


def _new_sub(sm: StateMachine, client: Client, channel: Channel, body: dict, queue: str,
             last_sent: int) -> Sub:
    durable = body["dur"]
    return Sub(sm.new_sub_id(), channel.name, client.client_id, queue, body["inbox"], body["ack"],
               body["mif"], body["aw"], "" if queue else durable, last_sent, bool(durable))


def _full(sm: StateMachine, channel: Channel) -> bool:
    max_subs = sm.limits_for(channel.name).max_subs
    return bool(max_subs) and len(channel.subs) >= max_subs


def opened(sub: Sub) -> SubOpened:
    """The effect that announces an online subscription."""
    return SubOpened(sub.sub_id, sub.channel, sub.client_id, sub.queue, sub.inbox,
                     sub.ack_inbox, sub.max_inflight, sub.ack_wait_s, sub.durable_name,
                     sub.is_durable)


def _open(sm: StateMachine, ctx: ApplyContext, client: Client, channel: Channel, sub: Sub,
          resend: list[int] | None = None) -> None:
    sm.index_sub(channel, sub)
    ctx.touch(sub)
    ctx.effects.append(opened(sub))
    if resend:
        ctx.effects.append(MsgsDelivered(sub.sub_id,
                                         delivery.records_for(ctx, channel, resend), True))
    delivery.pump(sm, ctx, channel)


def apply_unsubscribe(sm: StateMachine, ctx: ApplyContext, body: dict) -> str | None:
    """Unsubscribe (``close`` false) or close a subscription found by its ack inbox,
    or failing that its delivery inbox. Body keys: cid, ch, inbox, close."""
    channel = sm.channels.get(body["ch"])
    if channel is None:
        return errors.UNKNOWN_CHANNEL
    sub = _find_online(sm, channel, body["inbox"])
    if sub is None:
        return errors.INVALID_SUBSCRIPTION
    if sub.client_id != body["cid"]:
        return errors.UNKNOWN_CLIENT_ID
    close_sub(sm, ctx, channel, sub, unsubscribe=not body["close"])
    restart_inactivity_clock(ctx, channel, body.get("now"))
    delivery.pump(sm, ctx, channel)
    return None


def restart_inactivity_clock(ctx: ApplyContext, channel: Channel, now: int | None) -> None:
    """max_inactivity counts from when the last active subscription went away (the
    reference starts the channel's delete timer then). ``now`` is absent in older
    commands."""
    if now is not None and not channel.has_active_subscription():
        channel.last_activity = max(channel.last_activity, now)
        ctx.dirty_channels[channel.name] = channel


def _find_online(sm: StateMachine, channel: Channel, inbox: str) -> Sub | None:
    sub = sm.ack_inboxes.get(inbox)
    if sub is not None and sub.channel == channel.name:
        return sub
    for sub_id in sorted(channel.subs):
        sub = channel.subs[sub_id]
        if not sub.offline and sub.inbox == inbox:
            return sub
    return None


def close_sub(sm: StateMachine, ctx: ApplyContext, channel: Channel, sub: Sub,
              unsubscribe: bool) -> None:
    """Take a subscription offline or away, as the table of §2.10 says."""
    sm.ack_inboxes.pop(sub.ack_inbox, None)
    client = sm.clients.get(sub.client_id)
    if client is not None:
        client.subs.pop(sub.sub_id, None)
    ctx.effects.append(SubClosed(sub.sub_id, sub.ack_inbox))
    if sub.queue:
        _leave_group(sm, ctx, channel, sub, unsubscribe)
    elif sub.is_durable and not unsubscribe:
        sub.offline = True
        ctx.touch(sub)
    else:
        _delete(sm, ctx, channel, sub)


def _leave_group(sm: StateMachine, ctx: ApplyContext, channel: Channel, sub: Sub,
                 unsubscribe: bool) -> None:
    group = channel.groups[sub.queue]
    group.members.remove(sub)
    if group.members:
        delivery.hand_over(ctx, channel, list(sub.pending) + sub.backlog, group.members)
        _delete(sm, ctx, channel, sub)
    elif group.durable and not unsubscribe:
        sub.offline = True
        sub.last_sent = group.last_sent
        group.shadow = sub
        ctx.touch(sub)
    else:
        del channel.groups[sub.queue]
        _delete(sm, ctx, channel, sub)


def _delete(sm: StateMachine, ctx: ApplyContext, channel: Channel, sub: Sub) -> None:
    del channel.subs[sub.sub_id]
    if sub.is_durable and not sub.queue:
        channel.durables.pop((sub.client_id, sub.durable_name), None)
    ctx.dirty_subs.pop(sub.sub_id, None)
    ctx.txn.delete_subscription(channel.channel_id, sub.sub_id)


def apply_ack_batch(sm: StateMachine, ctx: ApplyContext, body: dict) -> None:
    """Body: ``{"acks": [[ack_inbox, channel, [seq, ...]], ...]}``. Acks for unknown
    subscriptions, another channel or sequences not pending are dropped silently."""
    touched: dict[str, Channel] = {}
    for ack_inbox, channel_name, seqs in body["acks"]:
        sub = sm.ack_inboxes.get(ack_inbox)
        if sub is None or sub.channel != channel_name:
            continue
        channel = sm.channels[channel_name]
        _ack(ctx, channel, sub, seqs)
        touched[channel_name] = channel
    for channel in touched.values():
        delivery.pump(sm, ctx, channel)


def _ack(ctx: ApplyContext, channel: Channel, sub: Sub, seqs: list[int]) -> None:
    acked: dict[int, list[int]] = {}
    members = channel.groups[sub.queue].members if sub.queue else (sub,)
    for seq in seqs:
        holder = sub if seq in sub.pending else next(
            (member for member in members if seq in member.pending), None)
        if holder is not None:
            del holder.pending[seq]
            acked.setdefault(holder.sub_id, []).append(seq)
            ctx.touch(holder)
            continue
        owed = next((member for member in members if seq in member.backlog), None)
        if owed is not None:  # acked before it was sent again: nothing is owed any more
            owed.backlog.remove(seq)
            ctx.touch(owed)
    for sub_id in sorted(acked):
        ctx.effects.append(MsgsAcked(sub_id, tuple(acked[sub_id])))
