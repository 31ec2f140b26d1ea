"""The STAN wire messages (package ``pb``, reference §2.3), error texts and name rules.

Messages are protobuf classes generated from ``protocol.proto`` into the committed
``protocol_pb2.py``; see DESIGN.md beside this file. Encode with
``msg.SerializeToString()``; decode with `decode`, which raises only `DecodeError`.
"""
from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from . import errors, names
from .protocol_pb2 import (
    Ack,
    CloseRequest,
    CloseResponse,
    ConnectRequest,
    ConnectResponse,
    First,
    LastReceived,
    MsgProto,
    NewOnly,
    Ping,
    PingResponse,
    PubAck,
    PubMsg,
    SequenceStart,
    StartPosition,
    SubscriptionRequest,
    SubscriptionResponse,
    TimeDeltaStart,
    UnsubscribeRequest,
)

MESSAGE_TYPES = (PubMsg, PubAck, MsgProto, Ack, ConnectRequest, ConnectResponse, Ping,
                 PingResponse, SubscriptionRequest, SubscriptionResponse,
                 UnsubscribeRequest, CloseRequest, CloseResponse)

M = TypeVar("M", bound=Message)


def decode(message_type: type[M], payload: bytes | bytearray | memoryview) -> M:
    """Parse a STAN payload. Raises `DecodeError`, and nothing else, on malformed input.

    An empty payload is valid: every field at its default. Unknown fields are skipped
    (and kept: re-serializing the message writes them back). The pure-Python protobuf
    backend raises UnicodeDecodeError for a string field that is not UTF-8 where upb
    raises DecodeError; both become DecodeError here.
    """
    try:
        return message_type.FromString(payload)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"Error parsing message with type "
                          f"'{message_type.DESCRIPTOR.full_name}': {exc}") from exc


def is_valid_start_position(value: int) -> bool:
    """Proto3 enums are open: a decoded startPosition may be any int32. Only NewOnly..First
    are valid; anything else is ``stan: invalid start position``."""
    return NewOnly <= value <= First


__all__ = [
    "Ack", "CloseRequest", "CloseResponse", "ConnectRequest", "ConnectResponse",
    "MsgProto", "Ping", "PingResponse", "PubAck", "PubMsg", "SubscriptionRequest",
    "SubscriptionResponse", "UnsubscribeRequest",
    "StartPosition", "NewOnly", "LastReceived", "TimeDeltaStart", "SequenceStart", "First",
    "MESSAGE_TYPES", "DecodeError", "decode", "is_valid_start_position", "errors", "names",
]
