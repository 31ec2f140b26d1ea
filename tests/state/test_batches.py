"""A Raft tick's entries applied in one store transaction (`apply_in_batch` +
`end_batch`) end exactly as the same entries applied one transaction each: same
results, same effects in log order, same store; and a batch that runs out of room
falls back to one entry at a time, so only the entries that do not fit are refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.state import StateMachine
from storage import LmdbStore, MemoryStore
from tests.state.statekit import limits, plain, store_dump

GOLDEN = Path(__file__).with_name("golden") / "v1.json"


def _golden():
    golden = json.loads(GOLDEN.read_text())
    entries = [(e["index"], bytes.fromhex(e["command"])) for e in golden["entries"]]
    return golden, entries


def _resolver(golden):
    return limits(**golden["limits"])


def _one_by_one(store, resolver, entries):
    effects = []
    sm = StateMachine(store, resolver, lambda index, found: effects.append((index, found)))
    results = [sm.apply(index, command) for index, command in entries]
    return results, effects


def _batched(store, resolver, entries, size):
    sm = StateMachine(store, resolver)
    results, effects = [], []
    for start in range(0, len(entries), size):
        held = [sm.apply_in_batch(index, command) for index, command in entries[start:start + size]]
        effects += sm.end_batch()
        results += [result.value for result in held]
    return results, effects, sm


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_batched_apply_equals_one_entry_per_transaction(size, tmp_path):
    golden, entries = _golden()
    expected_results, expected_effects = _one_by_one(MemoryStore(), _resolver(golden), entries)
    with LmdbStore(tmp_path / "s", sync=False) as store:
        results, effects, _ = _batched(store, _resolver(golden), entries, size)
        assert plain(results) == plain(expected_results)
        assert plain(effects) == plain(expected_effects)
        assert plain(store_dump(store)) == golden["store"]


def test_replayed_entries_in_a_batch_are_skipped(tmp_path):
    golden, entries = _golden()
    store = MemoryStore()
    _, _, sm = _batched(store, _resolver(golden), entries, 1000)
    before = store_dump(store)
    again = [sm.apply_in_batch(index, command) for index, command in entries]
    assert sm.end_batch() == [] and all(result.value is None for result in again)
    assert store_dump(store) == before


def test_a_batch_without_room_refuses_only_what_does_not_fit():
    golden, entries = _golden()
    store = MemoryStore(bytes_max=2500)  # room for the clients and a few messages
    sm = StateMachine(store, _resolver(golden))
    held = [sm.apply_in_batch(index, command) for index, command in entries]
    sm.end_batch()
    one_by_one = StateMachine(MemoryStore(bytes_max=2500), _resolver(golden))
    expected = [one_by_one.apply(index, command) for index, command in entries]
    assert [result.value for result in held] == expected
    assert any(isinstance(value, list) and any(value) for value in expected)  # some refused
    assert store_dump(store) == store_dump(one_by_one.store)
    assert sm.last_applied == entries[-1][0]
