"""The replicated command envelope: msgpack ``[format_version, op, body]``.

Every state change of a node travels through the Raft log in this envelope. The op
codes and body layouts are a file format: they never change meaning. A new layout
gets a new format version, and `decode` keeps reading every old one (the golden
fixtures in tests/state hold one command of each op at each version).
"""
from __future__ import annotations

import msgpack

FORMAT_VERSION = 1

# Op codes (names are orders: what the leader is asked to do).
CONNECT = 1           # register a client (replacing a dead one when asked)
CLOSE_CLIENT = 2      # unregister a client, closing its subscriptions
PUBLISH_BATCH = 3     # store a batch of messages, deliver them
SUBSCRIBE = 4         # create or resume a subscription
UNSUBSCRIBE = 5       # remove (unsubscribe) or close (sub close) a subscription
ACK_BATCH = 6         # acknowledge delivered messages
EXPIRE = 7            # drop messages older than their channel's max_age
DELETE_CHANNEL = 8    # delete an inactive channel (max_inactivity)
MOVE_CLIENT = 9       # a client's connection moved to another node: that node serves it

OP_NAMES = {CONNECT: "Connect", CLOSE_CLIENT: "CloseClient", PUBLISH_BATCH: "PublishBatch",
            SUBSCRIBE: "Subscribe", UNSUBSCRIBE: "Unsubscribe", ACK_BATCH: "AckBatch",
            EXPIRE: "Expire", DELETE_CHANNEL: "DeleteChannel", MOVE_CLIENT: "MoveClient"}


class EnvelopeError(ValueError):
    """The bytes are not a command this version can read: fatal inside apply."""


def encode(op: int, body: object) -> bytes:
    return msgpack.packb([FORMAT_VERSION, op, body], use_bin_type=True)


def decode(data: bytes) -> tuple[int, object]:
    """Return ``(op, body)``; raise EnvelopeError for anything unreadable."""
    try:
        envelope = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise EnvelopeError(f"undecodable command: {exc}") from exc
    if not isinstance(envelope, list) or len(envelope) != 3:
        raise EnvelopeError("command is not [version, op, body]")
    version, op, body = envelope
    if version != FORMAT_VERSION:
        raise EnvelopeError(f"unknown command format version {version!r}")
    if op not in OP_NAMES:
        raise EnvelopeError(f"unknown op {op!r}")
    return op, body
