"""The Runnel STAN client: asyncio, on nats-py, for any NATS Streaming server.

    from broker import client

    conn = await client.connect("test-cluster", "me", servers=["nats://127.0.0.1:4222"])
    guid = await conn.publish("foo", b"hello")                 # waits for the PubAck
    sub = await conn.subscribe("foo", on_msg, start_at=client.StartPosition.FIRST)
    ...
    await sub.unsubscribe()     # or sub.close(): a durable stays, offline
    await conn.close()

Defaults are stan.go's (reference §2.19); see DESIGN.md beside this file.
"""
from __future__ import annotations

from .connection import Connection, LostHandler, connect
from .errors import (ConnectError, ConnectionClosed, ConnectionLost, ConnectRefused,
                     ConnectRequestTimeout,
                     InvalidSubscription, ManualAckInAutoMode, NatsError, NoServersError,
                     NotSupportedByServer, ProtocolError, PublishAckTimeout, RequestTimeout,
                     ServerError, StanError)
from .options import (DEFAULT_ACK_WAIT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_INFLIGHT,
                      DEFAULT_MAX_PUB_ACKS_INFLIGHT, DEFAULT_NATS_URL, DEFAULT_PING_INTERVAL,
                      DEFAULT_PING_MAX_OUT, DEFAULT_PUB_ACK_WAIT, StartPosition)
from .publisher import AckHandler
from .subscription import Msg, MsgHandler, Subscription

__all__ = [
    "connect", "Connection", "Subscription", "Msg", "StartPosition",
    "AckHandler", "MsgHandler", "LostHandler",
    "StanError", "ServerError", "ConnectError", "NoServersError", "ConnectRequestTimeout",
    "ConnectRefused",
    "RequestTimeout", "PublishAckTimeout", "ConnectionClosed", "ConnectionLost",
    "InvalidSubscription", "ManualAckInAutoMode", "NotSupportedByServer", "ProtocolError",
    "NatsError",
    "DEFAULT_NATS_URL", "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_PUB_ACK_WAIT",
    "DEFAULT_MAX_PUB_ACKS_INFLIGHT", "DEFAULT_PING_INTERVAL", "DEFAULT_PING_MAX_OUT",
    "DEFAULT_MAX_INFLIGHT", "DEFAULT_ACK_WAIT",
]
