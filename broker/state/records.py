"""How the model is written into the store: msgpack records, and MsgProto messages.

A stored message record IS the encoded MsgProto a subscriber receives (sequence,
channel, reply, data, timestamp), so delivering a stored message copies bytes and
a redelivery appends the `redelivered` and `redeliveryCount` fields to them
(protobuf takes the last value of a repeated scalar field).
"""
from __future__ import annotations

import zlib

import msgpack

from ..protocol.stan import MsgProto
from .model import Client, Sub

META_NEXT_SUB_ID = "next_sub_id"
META_ASSIGN_COUNTER = "assign_counter"
META_CLUSTER_ID = "cluster_id"


def pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> object:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def message_record(seq: int, channel: str, reply: str, data: bytes, timestamp: int) -> bytes:
    """The MsgProto, with its CRC32 field (10, unused by clients) holding a checksum of
    the bytes before it, so that a record damaged on disk is found (`record_intact`)."""
    body = MsgProto(sequence=seq, subject=channel, reply=reply, data=data,
                    timestamp=timestamp).SerializeToString()
    return body + b"\x50" + _varint(zlib.crc32(body))


def record_intact(record: bytes) -> bool:
    """Whether a stored message record still matches its checksum (the last field)."""
    for size in range(1, 6):  # a uint32 varint takes 1 to 5 bytes
        if len(record) <= size or record[-size - 1] != 0x50:
            continue
        tail = record[-size:]
        if tail[-1] & 0x80 or any(not byte & 0x80 for byte in tail[:-1]):
            continue
        value = 0
        for shift, byte in enumerate(tail):
            value |= (byte & 0x7F) << (7 * shift)
        if value == zlib.crc32(record[:-size - 1]):
            return True
    return False


def message_timestamp(record: bytes) -> int:
    return MsgProto.FromString(record).timestamp


def redelivered(record: bytes, count: int) -> bytes:
    """The record as a redelivery: ``redelivered=true`` (6) and ``redeliveryCount`` (7)."""
    return record + b"\x30\x01\x38" + _varint(count)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def client_record(client: Client) -> bytes:
    return pack([client.hb_inbox, client.conn_id, client.protocol, client.ping_interval,
                 client.ping_max_out, client.node])


def client_from_record(client_id: str, record: bytes) -> Client:
    hb_inbox, conn_id, protocol, ping_interval, ping_max_out, node = unpack(record)
    return Client(client_id, hb_inbox, conn_id, protocol, ping_interval, ping_max_out, node)


def channel_record(last_ts: int, last_activity: int) -> bytes:
    return pack([last_ts, last_activity])


def channel_from_record(record: bytes) -> tuple[int, int]:
    last_ts, last_activity = unpack(record)
    return last_ts, last_activity


def sub_record(sub: Sub) -> bytes:
    return pack([sub.client_id, sub.queue, sub.inbox, sub.ack_inbox, sub.max_inflight,
                 sub.ack_wait_s, sub.durable_name, sub.last_sent, sub.is_durable, sub.offline,
                 sorted(sub.pending), sub.last_assign] + ([sub.backlog] if sub.backlog else []))


def sub_from_record(sub_id: int, channel: str, record: bytes) -> Sub:
    fields = unpack(record)
    (client_id, queue, inbox, ack_inbox, max_inflight, ack_wait_s, durable_name, last_sent,
     is_durable, offline, pending, last_assign) = fields[:12]
    backlog = list(fields[12]) if len(fields) > 12 else []  # absent when empty
    return Sub(sub_id, channel, client_id, queue, inbox, ack_inbox, max_inflight, ack_wait_s,
               durable_name, last_sent, is_durable, offline, dict.fromkeys(pending), last_assign,
               backlog)


def damaged_messages(store, limit: int = 10) -> list[tuple[str, int]]:
    """``(channel, seq)`` of stored messages that fail their checksum (a full scan)."""
    found: list[tuple[str, int]] = []
    with store.read() as txn:
        channels = [(stored.name, stored.channel_id, stored.stats.first_seq)
                    for stored in txn.list_channels()]
    for name, channel_id, seq in channels:
        while len(found) < limit:
            with store.read() as txn:  # short transactions: chunks of a channel
                chunk = txn.read_messages(channel_id, seq, 4096)
            if not chunk:
                break
            found += [(name, number) for number, record in chunk if not record_intact(record)]
            seq = chunk[-1][0] + 1
    return found[:limit]
