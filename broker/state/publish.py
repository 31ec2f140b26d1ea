"""Apply: channels and their messages — publish batches, limits, expiry, deletion."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..protocol.stan import errors
from . import delivery, records
from .effects import ChannelDeleted
from .model import Channel

if TYPE_CHECKING:
    from .machine import ApplyContext, StateMachine

log = logging.getLogger("runnel.state")

NS_PER_S = 1_000_000_000


def lookup_or_create(sm: StateMachine, ctx: ApplyContext, name: str,
                     now: int) -> tuple[Channel | None, str | None]:
    """The channel called ``name``, created on first use; or the error text."""
    channel = sm.channels.get(name)
    if channel is not None:
        return channel, None
    existing = sm.channel_names_lower.get(name.lower())
    if existing is not None:
        return None, errors.channel_case_conflict(name, existing)
    max_channels = sm.limits.max_channels
    if max_channels and len(sm.channels) >= max_channels:
        return None, errors.TOO_MANY_CHANNELS
    channel = sm.add_channel(ctx, name, now)
    ctx.dirty_channels[name] = channel
    return channel, None


def apply_publish_batch(sm: StateMachine, ctx: ApplyContext, body: dict) -> list:
    """Store each message (sequence, clamped timestamp), apply limits, deliver.

    Body: ``{"now": ns, "msgs": [[client_id, conn_id, channel, reply, data], ...]}``.
    Result: one entry per message, None when stored or the PubAck error text.
    """
    now = body["now"]
    results: list = []
    appended: dict[str, list] = {}
    for client_id, conn_id, name, reply, data in body["msgs"]:
        known = sm.conn_ids.get(conn_id) if conn_id else client_id
        if known is None or known not in sm.clients:
            results.append(errors.INVALID_PUBLISH_REQUEST)
            continue
        channel, error = lookup_or_create(sm, ctx, name, now)
        if error is not None:
            results.append(error)
            continue
        seq = channel.last_seq + 1
        timestamp = now if now > channel.last_ts else channel.last_ts
        record = records.message_record(seq, name, reply, data, timestamp)
        channel.last_seq = seq
        channel.last_ts = timestamp
        channel.last_activity = now
        appended.setdefault(name, []).append((seq, record))
        ctx.new_records[(name, seq)] = record
        results.append(None)
    for name, batch in appended.items():
        channel = sm.channels[name]
        ctx.txn.append_messages(channel.channel_id, batch)
        enforce_size_limits(sm, ctx, channel)
        ctx.dirty_channels[name] = channel
        delivery.pump(sm, ctx, channel)
    return results


def enforce_size_limits(sm: StateMachine, ctx: ApplyContext, channel: Channel) -> None:
    """max_msgs / max_bytes: drop the oldest messages, always keeping the newest."""
    limits = sm.limits_for(channel.name)
    removed = ctx.txn.trim_messages(channel.channel_id, msgs_max=limits.max_msgs or None,
                                    bytes_max=limits.max_bytes or None)
    sm.sync_stats(ctx, channel)
    if removed.msgs:
        log.debug("channel %r at its limits: dropped %d oldest messages", channel.name,
                  removed.msgs)
        delivery.drop_below_first(sm, ctx, channel)


def apply_expire(sm: StateMachine, ctx: ApplyContext, body: dict) -> int:
    """max_age: drop messages whose timestamp + max_age has passed. Returns the count."""
    now = body["now"]
    dropped = 0
    for name in sorted(sm.channels):
        channel = sm.channels[name]
        max_age_s = sm.limits_for(name).max_age_s
        if max_age_s <= 0 or not channel.msgs:
            continue
        cutoff = now - int(max_age_s * NS_PER_S)
        keep_from = delivery.first_seq_at_or_after(ctx.txn, channel, cutoff + 1)
        if keep_from > channel.first_seq:
            dropped += ctx.txn.delete_messages_upto(channel.channel_id, keep_from - 1).msgs
            sm.sync_stats(ctx, channel)
            delivery.drop_below_first(sm, ctx, channel)
            delivery.pump(sm, ctx, channel)
    return dropped


def apply_delete_channel(sm: StateMachine, ctx: ApplyContext, body: dict) -> bool:
    """max_inactivity: delete the channel if it is still inactive at ``now``."""
    channel = sm.channels.get(body["ch"])
    if channel is None or channel.channel_id != body["id"]:
        return False  # already gone, or a newer channel of the same name
    max_inactivity_s = sm.limits_for(channel.name).max_inactivity_s
    if max_inactivity_s <= 0 or channel.has_active_subscription():
        return False
    if body["now"] - channel.last_activity < int(max_inactivity_s * NS_PER_S):
        return False
    sm.remove_channel(ctx, channel)
    ctx.effects.append(ChannelDeleted(channel.name))
    return True
