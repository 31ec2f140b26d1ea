"""The store-full path (ARCHITECTURE §2, storage StoreFullError): an entry that does not
fit is abandoned as a whole, answered with the error text, skipped on replay, and
leaves a model that equals one rebuilt from the store; room made later (expiry, channel
deletion) makes publishing work again."""
from __future__ import annotations

import pytest

from broker.protocol.stan import First
from broker.state import StateMachine
from storage import LmdbStore, MemoryStore
from tests.state.statekit import NS, Harness, check_model, limits, model_dump, store_dump

BATCH = 20
PAYLOAD = b"x" * 1000


@pytest.fixture(params=["lmdb", "memory"])
def full_store(request, tmp_path):
    if request.param == "lmdb":
        store = LmdbStore(tmp_path / "s", sync=False, map_size_initial=64 << 10,
                          map_size_max=512 << 10)
    else:
        store = MemoryStore(bytes_max=200_000)
    yield store
    store.close()


def _fill(h: Harness) -> tuple:
    """Publish batches to foo until one is refused; return that Applied."""
    for _ in range(1000):
        applied = h.publish("c1", "foo", *[PAYLOAD] * BATCH)
        if applied.result != [None] * BATCH:
            return applied
    raise AssertionError("the store never became full")


def _fresh_equals(h: Harness) -> None:
    check_model(h.sm)
    assert model_dump(StateMachine(h.store, h.limits)) == model_dump(h.sm)


def test_publish_until_full_then_room_again(full_store):
    h = Harness(full_store, limits(max_age_s=60, max_inactivity_s=1))
    h.connect("c1")
    h.subscribe("c1", "foo", "s", sp=First, mif=3)
    h.subscribe("c1", "foo", "q", q="g", mif=2)
    applied = _fill(h)
    # every message of the batch gets the store's error text; nothing of it happened
    assert len(set(applied.result)) == 1 and applied.result[0]
    text = applied.result[0]
    assert "full" in text or "capacity" in text
    assert applied.effects == []
    assert h.sm.last_applied == applied.index
    with h.store.read() as r:
        assert r.get_last_applied_index() == applied.index
    stored_last = h.sm.channels["foo"].last_seq
    assert stored_last % BATCH == 0
    _fresh_equals(h)
    snapshot = store_dump(h.store)
    # the same entry replayed is skipped; the same kind of batch is refused again
    assert h.sm.apply(applied.index, h.log[-1][1]) is None
    again = h.publish("c1", "foo", *[PAYLOAD] * BATCH)
    assert len(set(again.result)) == 1 and again.result[0] and again.result[0] != None
    assert store_dump(h.store)["channels"] == snapshot["channels"]
    _fresh_equals(h)
    # make room: every message expires
    expired = h.expire(now=h.tick(3600))
    assert expired.result == stored_last
    assert h.sm.channels["foo"].msgs == 0
    _fresh_equals(h)
    ok = h.publish("c1", "foo", *[PAYLOAD] * BATCH)
    assert ok.result == [None] * BATCH
    assert h.sm.channels["foo"].last_seq == stored_last + BATCH   # sequences go on
    assert ok.effects      # delivered again
    _fresh_equals(h)


def _make(kind: str, tmp_path, kib: int):
    if kind == "lmdb":
        return LmdbStore(tmp_path / "s", sync=False, map_size_initial=64 << 10,
                         map_size_max=kib << 10)
    return MemoryStore(bytes_max=kib * 400)


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_room_from_channel_deletion(kind, tmp_path):
    with _make(kind, tmp_path, 512) as store:
        h = Harness(store, limits(max_inactivity_s=1))
        h.connect("c1")
        applied = _fill(h)
        assert applied.result[0]
        other = h.publish("c1", "bar", *[PAYLOAD] * BATCH)
        assert None not in other.result                # a new channel does not fit either
        assert "bar" not in h.sm.channels              # and was not created
        _fresh_equals(h)
        deleted = h.delete_channel("foo", now=h.tick(10))
        _fresh_equals(h)
        assert deleted.result is True
        assert h.publish("c1", "bar", *[PAYLOAD] * BATCH).result == [None] * BATCH
        assert h.sm.channels["bar"].last_seq == BATCH
        _fresh_equals(h)


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_room_from_expiry_after_filling_one_message_at_a_time(kind, tmp_path):
    with _make(kind, tmp_path, 2048) as store:
        h = Harness(store, limits(max_age_s=10))
        h.connect("c1")
        while h.publish("c1", "foo", PAYLOAD).result == [None]:
            pass
        stored = h.sm.channels["foo"].msgs
        expired = h.expire(now=h.tick(3600))
        _fresh_equals(h)
        assert expired.result == stored and h.sm.channels["foo"].msgs == 0
        assert h.publish("c1", "foo", PAYLOAD).result == [None]


def test_full_store_restart_then_replay_matches(full_store, tmp_path):
    """A node that restarts after a refused entry replays its log to the same state."""
    h = Harness(full_store, limits())
    h.connect("c1")
    h.subscribe("c1", "foo", "s", mif=5)
    _fill(h)
    model = model_dump(h.sm)
    restarted = h.restart()
    for index, command in h.log:
        assert restarted.apply(index, command) is None
    assert model_dump(restarted) == model
