"""Effects: what applying a command changed, told to the event loop as facts.

Apply appends effects in order; the node's STAN service consumes them on the loop
(the only way the loop learns about state changes) and acts for the clients and
subscriptions this node serves: subscribe an ack inbox, send a message, arm or
clear an AckWait timer, stop heartbeats.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientOpened:
    client_id: str
    hb_inbox: str
    conn_id: bytes
    protocol: int
    node: str


@dataclass(frozen=True, slots=True)
class ClientClosed:
    client_id: str


@dataclass(frozen=True, slots=True)
class SubOpened:
    """A subscription is online (new, resumed durable, or queue member)."""

    sub_id: int
    channel: str
    client_id: str
    queue: str
    inbox: str
    ack_inbox: str
    max_inflight: int
    ack_wait_s: int
    durable_name: str
    is_durable: bool


@dataclass(frozen=True, slots=True)
class SubClosed:
    """A subscription is no longer online (removed, or a durable gone offline)."""

    sub_id: int
    ack_inbox: str


@dataclass(frozen=True, slots=True)
class MsgsDelivered:
    """Send these stored records (``(seq, MsgProto bytes)``) to the subscription now.

    ``redelivered`` marks messages that were pending before (durable resume, a
    queue member's messages handed to another member).
    """

    sub_id: int
    records: tuple
    redelivered: bool


@dataclass(frozen=True, slots=True)
class MsgsAcked:
    """These sequences are no longer pending for the subscription (acked or dropped)."""

    sub_id: int
    seqs: tuple


@dataclass(frozen=True, slots=True)
class ChannelDeleted:
    name: str


@dataclass(frozen=True, slots=True)
class ClientMoved:
    """The client is now served by ``node``: that node takes its subscriptions over
    (``subs``: the online ones, each ``(SubOpened, pending seqs)``) and redelivers
    what they had pending; the node that served it before lets them go."""

    client_id: str
    node: str
    subs: tuple


@dataclass(frozen=True, slots=True)
class MsgsPending:
    """These sequences were delivered before and are still unacked: the node that
    serves the subscription resends them (recovery, snapshot install)."""

    sub_id: int
    seqs: tuple
