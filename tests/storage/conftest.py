"""Fixtures for the storage contract suite: every contract test runs against
both implementations through the parametrized ``store`` fixture."""

from __future__ import annotations

import pytest

from storage import LmdbStore, MemoryStore, Store

#: Small initial map so that ordinary tests exercise map growth too.
SMALL_MAP = 64 << 10


@pytest.fixture(params=["lmdb", "memory"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def make_store(kind, tmp_path):
    """``make_store(capacity=None)`` builds a store of the current kind;
    ``capacity`` caps it (LMDB map_size_max / MemoryStore bytes_max)."""
    made: list[Store] = []

    def make(capacity: int | None = None, name: str = "store") -> Store:
        if kind == "lmdb":
            store = LmdbStore(tmp_path / name, sync=False,
                              map_size_initial=SMALL_MAP,
                              map_size_max=capacity or (1 << 30))
        else:
            store = MemoryStore(bytes_max=capacity)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store) -> Store:
    return make_store()


def dump(store: Store) -> dict:
    """Everything visible through the read API, for comparing stores."""
    with store.read() as r:
        channels = {}
        for chan in r.list_channels():
            msgs = []
            seq = 0
            while True:
                chunk = r.read_messages(chan.channel_id, seq, 500)
                if not chunk:
                    break
                msgs.extend(chunk)
                seq = chunk[-1][0] + 1
            channels[chan.name] = (chan.channel_id, chan.record, chan.stats,
                                   msgs, r.list_subscriptions(chan.channel_id))
        return {"last_applied": r.get_last_applied_index(),
                "channels": channels, "clients": r.list_clients()}


@pytest.fixture(name="dump")
def dump_fixture():
    return dump
