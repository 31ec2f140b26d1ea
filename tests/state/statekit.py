"""Shared helpers of the state machine tests (imported as ``tests.state.statekit``,
and by the subprocess worker ``replay_worker.py``).

* `Harness` drives a `StateMachine` with ``envelope.encode(op, body)`` commands: it
  numbers the Raft indexes, keeps a simulated clock and collects the effects.
* `store_dump` / `model_dump` are canonical, comparable views of a store and of the
  in-memory model; `canonical_bytes` turns them into bytes for byte-for-byte checks.
* `check_model` asserts the model's internal invariants and that it agrees with
  the store.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from broker.protocol.stan import NewOnly
from broker.state import ChannelLimits, LimitsResolver, StateMachine, envelope
from broker.state import effects as fx
from broker.state import records

REPO = Path(__file__).resolve().parents[2]
NS = 1_000_000_000
T0 = 1_700_000_000 * NS          # the simulated clock starts here
META_KEYS = (records.META_NEXT_SUB_ID, records.META_ASSIGN_COUNTER, records.META_CLUSTER_ID)


class Applied:
    """What one apply returned and the effects it produced."""

    __slots__ = ("index", "result", "effects")

    def __init__(self, index: int, result, effects: list):
        self.index, self.result, self.effects = index, result, effects

    def of(self, kind) -> list:
        return [effect for effect in self.effects if isinstance(effect, kind)]

    def __repr__(self) -> str:
        return f"Applied({self.index}, {self.result!r}, {self.effects!r})"


class Harness:
    """One state machine on one store, fed numbered commands."""

    def __init__(self, store, limits: LimitsResolver | None = None, *, clock: int = T0):
        self.store = store
        self.limits = limits or LimitsResolver()
        self.index = 0
        self.clock = clock
        self.log: list[tuple[int, bytes]] = []      # every command applied, with its index
        self.all_effects: list[tuple[int, list]] = []
        self._last: list = []
        self.sm = self._new_machine()
        self.index = self.sm.last_applied

    def _new_machine(self) -> StateMachine:
        return StateMachine(self.store, self.limits, self._sink)

    def _sink(self, index: int, effects: list) -> None:
        self._last = list(effects)
        self.all_effects.append((index, list(effects)))

    def restart(self) -> StateMachine:
        """A new StateMachine on the same store (what a restarted node builds)."""
        self.sm = self._new_machine()
        return self.sm

    def tick(self, seconds: float = 1.0) -> int:
        self.clock += int(seconds * NS)
        return self.clock

    # -- raw --

    def apply_raw(self, command: bytes, index: int | None = None) -> Applied:
        if index is None:
            self.index += 1
            index = self.index
        self._last = []
        result = self.sm.apply(index, command)
        self.log.append((index, command))
        return Applied(index, result, self._last)

    def run(self, op: int, body: dict) -> Applied:
        return self.apply_raw(envelope.encode(op, body))

    # -- one helper per op (bodies as broker/server/stan/service.py builds them) --

    def connect(self, cid: str, conn: bytes | None = None, *, replace: bool = False,
                hb: str | None = None, proto: int = 1, node: str = "n1") -> Applied:
        return self.run(envelope.CONNECT, {
            "id": cid, "hb": hb or f"_INBOX.hb.{cid}",
            "conn": (f"conn-{cid}".encode() if conn is None else conn), "proto": proto,
            "pi": 5, "pm": 3, "node": node, "replace": replace})

    def close_client(self, cid: str) -> Applied:
        return self.run(envelope.CLOSE_CLIENT, {"id": cid})

    def move_client(self, cid: str, node: str) -> Applied:
        return self.run(envelope.MOVE_CLIENT, {"id": cid, "node": node})

    def publish_batch(self, msgs: list, now: int | None = None) -> Applied:
        """``msgs``: ``[client_id, conn_id, channel, reply, data]`` lists."""
        return self.run(envelope.PUBLISH_BATCH,
                        {"now": self.tick() if now is None else now, "msgs": msgs})

    def publish(self, cid: str, channel: str, *datas: bytes, conn: bytes | None = None,
                now: int | None = None, reply: str = "") -> Applied:
        conn = f"conn-{cid}".encode() if conn is None else conn
        return self.publish_batch([[cid, conn, channel, reply, data] for data in datas], now)

    def subscribe(self, cid: str, channel: str, name: str, *, q: str = "", dur: str = "",
                  mif: int = 1024, aw: int = 30, sp: int = NewOnly, seq: int = 0,
                  delta: int = 0, now: int | None = None, inbox: str | None = None,
                  ack: str | None = None) -> Applied:
        """``name`` makes the inboxes: ``in.<name>`` and ``ack.<name>``."""
        now = self.tick() if now is None else now
        return self.run(envelope.SUBSCRIBE, {
            "cid": cid, "ch": channel, "q": q, "inbox": inbox or f"in.{name}",
            "ack": ack or f"ack.{name}", "mif": mif, "aw": aw, "dur": dur, "sp": sp,
            "seq": seq, "start": now - delta, "now": now})

    def unsubscribe(self, cid: str, channel: str, inbox: str, *, close: bool = False) -> Applied:
        return self.run(envelope.UNSUBSCRIBE,
                        {"cid": cid, "ch": channel, "inbox": inbox, "close": close})

    def ack(self, ack_inbox: str, channel: str, seqs) -> Applied:
        return self.run(envelope.ACK_BATCH, {"acks": [[ack_inbox, channel, list(seqs)]]})

    def acks(self, items: list) -> Applied:
        return self.run(envelope.ACK_BATCH, {"acks": items})

    def expire(self, now: int | None = None) -> Applied:
        return self.run(envelope.EXPIRE, {"now": self.clock if now is None else now})

    def delete_channel(self, channel: str, channel_id: int | None = None,
                       now: int | None = None) -> Applied:
        if channel_id is None:
            channel_id = self.sm.channels[channel].channel_id
        return self.run(envelope.DELETE_CHANNEL,
                        {"ch": channel, "id": channel_id, "now": self.clock if now is None else now})

    # -- looking --

    def sub(self, channel: str, ack_inbox: str):
        return self.sm.ack_inboxes.get(ack_inbox) or next(
            s for s in self.sm.channels[channel].subs.values() if s.ack_inbox == ack_inbox)

    def pending(self, channel: str, ack_inbox: str) -> list[int]:
        return sorted(self.sub(channel, ack_inbox).pending)


def limits(max_channels: int = 100, **channel) -> LimitsResolver:
    """A resolver giving every channel the same limits (ChannelLimits keywords)."""
    return LimitsResolver(max_channels=max_channels, default=ChannelLimits(**channel))


def delivered(applied, sub_id: int | None = None) -> list[tuple[int, int, bool]]:
    """``(sub_id, seq, redelivered)`` of every MsgsDelivered effect."""
    effects = applied.effects if isinstance(applied, Applied) else applied
    out = []
    for effect in effects:
        if isinstance(effect, fx.MsgsDelivered) and (sub_id is None or effect.sub_id == sub_id):
            out.extend((effect.sub_id, seq, effect.redelivered) for seq, _ in effect.records)
    return out


def seqs_of(applied, sub_id: int | None = None) -> list[int]:
    return [seq for _, seq, _ in delivered(applied, sub_id)]


# -- canonical views --------------------------------------------------------------------

def store_dump(store) -> dict:
    """Every table and record of a store, in a fixed order."""
    with store.read() as r:
        channels = []
        for chan in r.list_channels():
            messages = []
            seq = 0
            while True:
                chunk = r.read_messages(chan.channel_id, seq, 1000)
                if not chunk:
                    break
                messages.extend(chunk)
                seq = chunk[-1][0] + 1
            channels.append({
                "id": chan.channel_id, "name": chan.name, "record": chan.record,
                "stats": dataclasses.astuple(chan.stats), "messages": messages,
                "subs": r.list_subscriptions(chan.channel_id)})
        return {"last_applied": r.get_last_applied_index(),
                "meta": {key: r.get_meta(key) for key in META_KEYS},
                "clients": r.list_clients(), "channels": channels}


def sub_view(sub) -> tuple:
    return (sub.sub_id, sub.channel, sub.client_id, sub.queue, sub.inbox, sub.ack_inbox,
            sub.max_inflight, sub.ack_wait_s, sub.durable_name, sub.last_sent, sub.is_durable,
            sub.offline, sorted(sub.pending), sub.last_assign)


def model_dump(sm: StateMachine) -> dict:
    """The in-memory model, every index, in a fixed order."""
    channels = {}
    for name in sorted(sm.channels):
        ch = sm.channels[name]
        channels[name] = {
            "id": ch.channel_id, "stats": (ch.first_seq, ch.last_seq, ch.msgs, ch.bytes),
            "last_ts": ch.last_ts, "last_activity": ch.last_activity,
            "subs": [sub_view(ch.subs[i]) for i in sorted(ch.subs)],
            "groups": [(key, g.durable, [m.sub_id for m in g.members], g.last_sent,
                        g.shadow.sub_id if g.shadow else None)
                       for key, g in sorted(ch.groups.items())],
            "durables": sorted(ch.durables.items())}
    return {
        "last_applied": sm.last_applied, "next_sub_id": sm.next_sub_id,
        "assign_counter": sm.assign_counter,
        "clients": [(c.client_id, c.hb_inbox, c.conn_id, c.protocol, c.ping_interval,
                     c.ping_max_out, c.node, sorted(c.subs))
                    for c in (sm.clients[k] for k in sorted(sm.clients))],
        "conn_ids": sorted(sm.conn_ids.items()),
        "lower": sorted(sm.channel_names_lower.items()),
        "ack_inboxes": sorted((inbox, sub.sub_id) for inbox, sub in sm.ack_inboxes.items()),
        "channels": channels}


def check_model(sm: StateMachine) -> None:
    """Internal invariants of the model, and agreement with the store's records."""
    online = {}
    for name, ch in sm.channels.items():
        assert ch.name == name
        assert sm.channel_names_lower[name.lower()] == name
        first = ch.first_available()
        for sub_id, sub in ch.subs.items():
            assert sub.sub_id == sub_id and sub.channel == name
            assert all(first <= seq <= ch.last_seq for seq in sub.pending), \
                (name, sub_view(sub), first, ch.last_seq)
            assert all(seq <= sub.last_sent for seq in sub.pending), sub_view(sub)
            if not sub.offline:
                online[sub.ack_inbox] = sub
                assert sm.clients[sub.client_id].subs[sub_id] is sub
            if sub.queue:
                group = ch.groups[sub.queue]
                if sub.offline:
                    assert group.shadow is sub and not group.members
                else:
                    assert sub in group.members and sub.last_sent == group.last_sent
            elif sub.is_durable:
                assert ch.durables[(sub.client_id, sub.durable_name)] == sub_id
        for key, group in ch.groups.items():
            assert group.members or group.shadow is not None, key
            assert [m.sub_id for m in group.members] == sorted(m.sub_id for m in group.members)
            assert all(ch.subs.get(m.sub_id) is m for m in group.members)
        for (cid, dur), sub_id in ch.durables.items():
            assert ch.subs[sub_id].durable_name == dur and ch.subs[sub_id].client_id == cid
    assert {k: v.sub_id for k, v in sm.ack_inboxes.items()} == \
        {k: v.sub_id for k, v in online.items()}
    for cid, client in sm.clients.items():
        assert all(not sub.offline and sub.client_id == cid for sub in client.subs.values())
        if client.conn_id:
            assert sm.conn_ids[client.conn_id] == cid
    assert all(sm.clients[cid].conn_id == conn for conn, cid in sm.conn_ids.items())
    # agreement with the store
    with sm.store.read() as r:
        assert r.get_last_applied_index() == sm.last_applied
        assert [c for c, _ in r.list_clients()] == sorted(sm.clients)
        stored = r.list_channels()
        assert [c.name for c in stored] == sorted(sm.channels, key=lambda n: n.encode())
        for chan in stored:
            ch = sm.channels[chan.name]
            assert chan.channel_id == ch.channel_id
            assert dataclasses.astuple(chan.stats) == (ch.first_seq, ch.last_seq, ch.msgs,
                                                       ch.bytes)
            assert records.channel_from_record(chan.record) == (ch.last_ts, ch.last_activity)
            subs = r.list_subscriptions(chan.channel_id)
            assert [i for i, _ in subs] == sorted(ch.subs)
            for sub_id, record in subs:
                assert record == records.sub_record(ch.subs[sub_id]), sub_view(ch.subs[sub_id])


# -- canonical bytes ---------------------------------------------------------------------

def plain(value):
    """JSON-able form: bytes as {"b": hex}, effects as [type, fields...], tuples as lists."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": bytes(value).hex()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__] + [plain(getattr(value, f.name))
                                         for f in dataclasses.fields(value)]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def unplain(value):
    """Inverse of `plain` for command bodies (bytes come back; lists stay lists)."""
    if isinstance(value, dict):
        if set(value) == {"b"}:
            return bytes.fromhex(value["b"])
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unplain(v) for v in value]
    return value


def canonical_bytes(value) -> bytes:
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":")).encode()


# -- the limits of the generated histories (test_determinism.py and replay_worker.py) -----

GEN_LIMITS = dict(max_channels=3, max_msgs=5, max_bytes=400, max_subs=4, max_age_s=20,
                  max_inactivity_s=15)


def replay(store_factory, log: list[tuple[int, bytes]], cut: int | None = None,
           check: bool = False) -> bytes:
    """Apply ``log`` to a fresh store and return the canonical dump of everything:
    results, effects, model and store. With ``cut``, the machine is restarted after
    ``cut`` entries: ``store_factory(reopen=True)`` closes and reopens the store."""
    store = store_factory(reopen=False)
    h = Harness(store, limits(**GEN_LIMITS))
    results = []
    for position, (index, command) in enumerate(log):
        if position == cut:
            store = store_factory(reopen=True)
            h.store = store
            h.restart()
        results.append(h.apply_raw(command, index).result)
        if check:
            check_model(h.sm)
    out = canonical_bytes({"results": results, "effects": h.all_effects,
                           "model": model_dump(h.sm), "store": store_dump(store)})
    store.close()
    return out
