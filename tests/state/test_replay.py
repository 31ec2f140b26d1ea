"""Idempotent replay (ARCHITECTURE §2): re-applying entries changes nothing, a restarted
machine rebuilds the identical model from the store, and entries at or below the stored
index are skipped. On both stores; LMDB also closed and reopened."""
from __future__ import annotations

import pytest

from broker.protocol.stan import First, LastReceived, SequenceStart, TimeDeltaStart
from broker.state import envelope
from storage import LmdbStore
from tests.state.statekit import (NS, T0, Harness, canonical_bytes, check_model, limits,
                                  model_dump, store_dump)

LIMITS = dict(max_channels=4, max_msgs=6, max_subs=5, max_age_s=30, max_inactivity_s=20)


def scenario(h: Harness) -> None:
    """A busy history touching every op and most paths."""
    h.connect("c1")
    h.connect("c2", b"C2")
    h.connect("c3")
    h.publish("c1", "foo", b"1", b"2", b"3")
    h.subscribe("c1", "foo", "p", sp=First, mif=2)
    h.subscribe("c2", "foo", "d", dur="dur", sp=LastReceived)
    h.subscribe("c2", "foo", "qa", q="g", sp=SequenceStart, seq=2, mif=3)
    h.subscribe("c3", "foo", "qb", q="g", mif=3)
    h.subscribe("c3", "foo", "dq", q="w", dur="dd", sp=First)
    h.publish_batch([["c1", b"conn-c1", ch, "", b"x" * i] for i, ch in
                     enumerate(["foo", "bar", "foo", "Foo", "baz", "qux", "foo"])])
    h.ack("ack.p", "foo", [1, 2, 77])
    h.acks([["ack.qa", "foo", [2, 4]], ["ack.qb", "foo", [3]], ["ack.dq", "bar", [1]]])
    h.subscribe("c1", "bar", "t", sp=TimeDeltaStart, delta=5 * NS)
    h.unsubscribe("c2", "foo", "ack.d", close=True)
    h.publish("c3", "foo", b"while offline", b"more")
    h.unsubscribe("c2", "foo", "ack.qa")
    h.close_client("c3")                       # qb leaves, dq becomes a shadow
    h.connect("c2", b"C2b", replace=True)
    h.subscribe("c2", "foo", "d2", dur="dur", mif=1)
    h.subscribe("c1", "foo", "dq2", q="w", dur="dd")
    h.expire(now=h.tick(40))
    h.publish("c2", "foo", b"late", conn=b"C2b")
    h.delete_channel("baz", now=h.tick(60))
    h.delete_channel("foo", now=h.clock)       # refused: active subscriptions
    h.unsubscribe("c1", "foo", "ack.nothing")  # an error entry
    h.close_client("nobody")
    h.acks([["ack.d2", "foo", list(range(1, 20))]])


@pytest.fixture
def busy(make_harness):
    h = make_harness(limits(**LIMITS))
    scenario(h)
    return h


def test_scenario_is_consistent(busy):
    check_model(busy.sm)
    assert busy.sm.last_applied == len(busy.log)
    assert sum(len(e) for _, e in busy.all_effects) > 30


def test_reapplying_every_entry_changes_nothing(busy):
    model, store = model_dump(busy.sm), store_dump(busy.store)
    effects_before = len(busy.all_effects)
    for index, command in list(busy.log):
        assert busy.sm.apply(index, command) is None
    assert len(busy.all_effects) == effects_before
    assert model_dump(busy.sm) == model and store_dump(busy.store) == store


def test_restart_rebuilds_identical_model_then_replay_is_skipped(busy):
    model, store = model_dump(busy.sm), store_dump(busy.store)
    restarted = busy.restart()
    assert model_dump(restarted) == model
    effects_before = len(busy.all_effects)
    for index, command in busy.log:           # pysyncobj replays its journal on restart
        assert restarted.apply(index, command) is None
    assert len(busy.all_effects) == effects_before
    assert model_dump(restarted) == model and store_dump(busy.store) == store


def test_entries_at_or_below_stored_index_are_skipped(busy):
    last = busy.sm.last_applied
    store = store_dump(busy.store)
    fresh = envelope.encode(envelope.CONNECT, {"id": "new", "hb": "hb", "conn": b"N", "proto": 1,
                                               "pi": 1, "pm": 2, "node": "n", "replace": False})
    for index in (1, last - 1, last):
        assert busy.sm.apply(index, fresh) is None
    assert "new" not in busy.sm.clients and store_dump(busy.store) == store
    assert busy.sm.apply(last + 1, fresh) is None
    assert "new" in busy.sm.clients


def test_lmdb_reopen_rebuilds_identical_model(tmp_path):
    path = tmp_path / "s"
    store = LmdbStore(path, sync=True)
    h = Harness(store, limits(**LIMITS))
    scenario(h)
    model, dump, log = model_dump(h.sm), store_dump(store), h.log
    store.close()
    with LmdbStore(path, sync=True) as reopened:
        h2 = Harness(reopened, limits(**LIMITS))
        assert model_dump(h2.sm) == model and store_dump(reopened) == dump
        for index, command in log:
            h2.apply_raw(command, index)
        assert h2.all_effects == []
        assert store_dump(reopened) == dump
        check_model(h2.sm)


def test_replaying_the_log_into_a_fresh_store_gives_the_same_everything(make_store, busy):
    other = Harness(make_store("other"), limits(**LIMITS))
    results = []
    for index, command in busy.log:
        results.append(other.apply_raw(command, index).result)
    assert canonical_bytes(other.all_effects) == canonical_bytes(busy.all_effects)
    assert canonical_bytes(store_dump(other.store)) == canonical_bytes(store_dump(busy.store))
    assert model_dump(other.sm) == model_dump(busy.sm)


@pytest.mark.parametrize("cut", [3, 9, 14, 19, 24])
def test_restart_midway_gives_the_same_result(make_store, busy, cut):
    other = Harness(make_store(f"cut{cut}"), limits(**LIMITS))
    for index, command in busy.log[:cut]:
        other.apply_raw(command, index)
    other.restart()
    for index, command in busy.log[cut - 2:]:   # overlapping replay, as after a crash
        other.apply_raw(command, index)
    assert canonical_bytes(other.all_effects) == canonical_bytes(busy.all_effects)
    assert canonical_bytes(store_dump(other.store)) == canonical_bytes(store_dump(busy.store))
    assert model_dump(other.sm) == model_dump(busy.sm)


def test_conn_id_shared_by_two_clients_same_after_restart(make_store):
    def history(h):
        h.connect("b", b"X")
        h.connect("a", b"X")        # a buggy or hostile client reusing a connID
        h.close_client("a")

    live = Harness(make_store("live"))
    history(live)
    restarted = Harness(make_store("restarted"))
    history(restarted)
    restarted.restart()
    assert model_dump(restarted.sm) == model_dump(live.sm)
    # what it means: the next publish must get the same answer on both replicas
    assert (live.publish("b", "foo", b"m", conn=b"X").result ==
            restarted.publish("b", "foo", b"m", conn=b"X").result)
