"""Fixtures of the state machine tests: every behaviour test runs on a MemoryStore
and on an LmdbStore (``store_kind``), through `Harness` (statekit.py)."""
from __future__ import annotations

import pytest

from storage import LmdbStore, MemoryStore
from tests.state.statekit import Harness, check_model, model_dump, store_dump


@pytest.fixture(params=["memory", "lmdb"])
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def make_store(store_kind, tmp_path):
    made = []

    def make(name: str = "store"):
        if store_kind == "lmdb":
            store = LmdbStore(tmp_path / name, sync=False, map_size_initial=1 << 20,
                              map_size_max=1 << 30)
        else:
            store = MemoryStore()
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


_CALL_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def make_harness(make_store, request):
    """``make_harness(limits=None)``: a Harness on a fresh store of the current kind.
    At the end of the test every harness's model is checked against its store and
    against a machine restarted from that store."""
    made: list[Harness] = []

    def make(limits=None, **kwargs) -> Harness:
        harness = Harness(make_store(), limits, **kwargs)
        made.append(harness)
        return harness

    yield make
    if not request.node.stash.get(_CALL_PASSED, False):
        return  # the test failed (or is an expected failure): nothing more to say
    for harness in made:
        check_model(harness.sm)
        before_model, before_store = model_dump(harness.sm), store_dump(harness.store)
        restarted = harness.restart()
        assert model_dump(restarted) == before_model
        assert store_dump(harness.store) == before_store


@pytest.fixture
def h(make_harness) -> Harness:
    """A harness with the default limits."""
    return make_harness()
