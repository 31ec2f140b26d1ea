"""The state machine's in-memory model: clients, channels, subscriptions, groups.

It mirrors what the store holds (records.py encodes it) and is rebuilt from the
store at start. Owned by the apply thread only; the event loop never reads it
(the loop learns what it needs from effects, see effects.py).

Determinism: anything iterated in apply is iterated in an explicit order (ids,
names), never in hash order or in dict insertion order, because a node that
rebuilt its model from the store inserted things in another order than a node
that applied the log.
"""
from __future__ import annotations


class Client:
    __slots__ = ("client_id", "hb_inbox", "conn_id", "protocol", "ping_interval",
                 "ping_max_out", "node", "subs")

    def __init__(self, client_id: str, hb_inbox: str, conn_id: bytes, protocol: int,
                 ping_interval: int, ping_max_out: int, node: str):
        self.client_id = client_id
        self.hb_inbox = hb_inbox
        self.conn_id = conn_id
        self.protocol = protocol
        self.ping_interval = ping_interval
        self.ping_max_out = ping_max_out
        self.node = node
        self.subs: dict[int, Sub] = {}  # online subscriptions (iterate sorted by id)


class Sub:
    """A subscription. Queue members keep the group's last_sent in their own field."""

    __slots__ = ("sub_id", "channel", "client_id", "queue", "inbox", "ack_inbox",
                 "max_inflight", "ack_wait_s", "durable_name", "last_sent", "is_durable",
                 "offline", "pending", "last_assign", "backlog")

    def __init__(self, sub_id: int, channel: str, client_id: str, queue: str, inbox: str,
                 ack_inbox: str, max_inflight: int, ack_wait_s: int, durable_name: str,
                 last_sent: int, is_durable: bool, offline: bool = False,
                 pending: dict[int, None] | None = None, last_assign: int = 0,
                 backlog: list[int] | None = None):
        self.sub_id = sub_id
        self.channel = channel
        self.client_id = client_id
        self.queue = queue              # "" | group | "durable:group"
        self.inbox = inbox
        self.ack_inbox = ack_inbox
        self.max_inflight = max_inflight
        self.ack_wait_s = ack_wait_s
        self.durable_name = durable_name
        self.last_sent = last_sent
        self.is_durable = is_durable
        self.offline = offline          # offline durable, or durable queue shadow
        self.pending: dict[int, None] = pending if pending is not None else {}
        self.last_assign = last_assign  # tie-breaker for queue member choice
        # Sequences owed to this subscription but not sent: they were pending when it
        # resumed (or were handed over from a leaving queue member) beyond its
        # MaxInflight. They go out, marked redelivered, as room frees, before new ones.
        self.backlog: list[int] = backlog if backlog is not None else []

    @property
    def stalled(self) -> bool:
        return len(self.pending) >= self.max_inflight


class Group:
    """A queue group of one channel: members (by id) share one last_sent."""

    __slots__ = ("key", "durable", "members", "last_sent", "shadow")

    def __init__(self, key: str, durable: bool, last_sent: int):
        self.key = key
        self.durable = durable
        self.members: list[Sub] = []     # online members, sorted by sub_id
        self.last_sent = last_sent
        self.shadow: Sub | None = None   # durable group with no member left

    def add(self, sub: Sub) -> None:
        self.members.append(sub)
        self.members.sort(key=lambda member: member.sub_id)


class Channel:
    __slots__ = ("channel_id", "name", "first_seq", "last_seq", "msgs", "bytes",
                 "last_ts", "last_activity", "subs", "groups", "durables")

    def __init__(self, channel_id: int, name: str, last_ts: int, last_activity: int):
        self.channel_id = channel_id
        self.name = name
        self.first_seq = 0
        self.last_seq = 0
        self.msgs = 0
        self.bytes = 0
        self.last_ts = last_ts              # never decreases (timestamps are clamped)
        self.last_activity = last_activity  # ns of the last publish or subscribe
        self.subs: dict[int, Sub] = {}      # every subscription, offline ones included
        self.groups: dict[str, Group] = {}
        self.durables: dict[tuple[str, str], int] = {}  # (client, durable) -> sub_id

    def set_stats(self, first_seq: int, last_seq: int, msgs: int, size: int) -> None:
        self.first_seq, self.last_seq, self.msgs, self.bytes = first_seq, last_seq, msgs, size

    def first_available(self) -> int:
        """The lowest stored sequence, or last_seq + 1 when nothing is stored."""
        return self.first_seq if self.msgs else self.last_seq + 1

    def has_active_subscription(self) -> bool:
        return any(not sub.offline for sub in self.subs.values())
