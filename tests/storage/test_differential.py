"""Hypothesis: random transactions applied to an LmdbStore and a MemoryStore
give the same results, the same errors and the same contents, including
transactions abandoned half-way and LMDB map growth mid-transaction."""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from storage import LmdbStore, MemoryStore, StoreUsageError

NAMES = st.sampled_from(["a", "b", "a.b", "é", "zz", ""])
CIDS = st.integers(0, 9)  # resolved by _cid: mostly existing channels
RECORDS = st.one_of(st.binary(max_size=24), st.integers(0, 3000).map(lambda n: b"r" * n))
LIMITS = st.one_of(st.none(), st.integers(0, 40), st.integers(0, 4000))

OPS = st.one_of(
    st.tuples(st.just("create"), NAMES, RECORDS),
    st.tuples(st.just("put_channel"), CIDS, RECORDS),
    st.tuples(st.just("delete_channel"), CIDS),
    st.tuples(st.just("append"), CIDS, st.integers(0, 3),
              st.lists(st.tuples(st.integers(1, 3), RECORDS), max_size=40)),
    st.tuples(st.just("delete_upto"), CIDS, st.integers(-2, 30)),
    st.tuples(st.just("trim"), CIDS, LIMITS, LIMITS),
    st.tuples(st.just("put_sub"), CIDS, st.integers(0, 5), RECORDS),
    st.tuples(st.just("del_sub"), CIDS, st.integers(0, 5)),
    st.tuples(st.just("put_client"), NAMES, RECORDS),
    st.tuples(st.just("del_client"), NAMES),
    st.tuples(st.just("put_meta"), NAMES, RECORDS),
    st.tuples(st.just("del_meta"), NAMES),
    st.tuples(st.just("set_index"), st.integers(-1, 3)),
    st.tuples(st.just("read"), CIDS, st.integers(0, 60), st.integers(1, 50),
              st.one_of(st.none(), st.integers(0, 5000))),
)


CHANNEL_OPS = {"put_channel", "delete_channel", "append", "delete_upto", "trim",
               "put_sub", "del_sub", "read"}


def _cid(txn, choice):
    """An existing channel id for choice 0..7 (when there is one), an
    unknown id otherwise."""
    ids = [chan.channel_id for chan in txn.list_channels()]
    return ids[choice % len(ids)] if ids and choice < 8 else 1000 + choice


def _append_batch(txn, cid, start_gap, steps):
    stats = txn.channel_stats(cid)
    seq = stats.last_seq if stats else 0
    seq += start_gap - 1  # gap 0 repeats last_seq: a usage error
    batch = []
    for step, record in steps:
        seq += step
        batch.append((seq, record))
    return batch


def apply_op(txn, op):
    """Run one op; return its result or the error class."""
    kind, *args = op
    if kind in CHANNEL_OPS:
        args[0] = _cid(txn, args[0])
    try:
        if kind == "append":
            cid, gap, steps = args
            return txn.append_messages(cid, _append_batch(txn, cid, gap, steps))
        if kind == "delete_upto":
            cid, delta = args
            stats = txn.channel_stats(cid)
            return txn.delete_messages_upto(cid, max(0, (stats.first_seq if stats else 0) + delta))
        if kind == "trim":
            return txn.trim_messages(args[0], msgs_max=args[1], bytes_max=args[2])
        if kind == "set_index":
            return txn.set_last_applied_index(txn.get_last_applied_index() + args[0])
        if kind == "read":
            cid, start, count, bytes_max = args
            return (txn.read_messages(cid, start, count, bytes_max),
                    txn.get_channel_by_id(cid), txn.list_subscriptions(cid))
        method = {
            "create": txn.create_channel, "put_channel": txn.put_channel,
            "delete_channel": txn.delete_channel, "put_sub": txn.put_subscription,
            "del_sub": txn.delete_subscription, "put_client": txn.put_client,
            "del_client": txn.delete_client, "put_meta": txn.put_meta,
            "del_meta": txn.delete_meta,
        }[kind]
        return method(*args)
    except StoreUsageError:
        return StoreUsageError


class Abandon(Exception):
    pass


def run_txn(store, ops, abandon):
    results = []
    try:
        with store.write() as txn:
            for op in ops:
                results.append(apply_op(txn, op))
            if abandon:
                raise Abandon
    except Abandon:
        results.append("abandoned")
    return results


def dump_all(store):
    with store.read() as r:
        channels = [(c, r.read_messages(c.channel_id, 0, 10_000),
                     r.list_subscriptions(c.channel_id))
                    for c in r.list_channels()]
        meta = [(k, r.get_meta(k)) for k in ["a", "b", "a.b", "é", "zz"]]
        return (r.get_last_applied_index(), channels, r.list_clients(), meta)


class StoresAgree(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="runnel-diff-")
        self.lmdb = self._open_lmdb()
        self.mem = MemoryStore()

    def _open_lmdb(self):
        return LmdbStore(self.dir, sync=False, map_size_initial=64 << 10)

    @rule(ops=st.lists(OPS, min_size=1, max_size=12), abandon=st.booleans())
    def transaction(self, ops, abandon):
        assert run_txn(self.lmdb, ops, abandon) == run_txn(self.mem, ops, abandon)

    @rule()
    def reopen_lmdb(self):
        self.lmdb.close()
        self.lmdb = self._open_lmdb()

    @invariant()
    def same_contents(self):
        assert dump_all(self.lmdb) == dump_all(self.mem)
        for store in (self.lmdb, self.mem):
            with store.read() as r:
                for chan in r.list_channels():
                    assert r.channel_stats(chan.channel_id) == chan.stats

    def teardown(self):
        self.lmdb.check()
        self.mem.check()
        self.lmdb.close()
        self.mem.close()
        shutil.rmtree(self.dir, ignore_errors=True)


StoresAgree.TestCase.settings = settings(
    max_examples=int(os.environ.get("DIFF_EXAMPLES", "60")),
    stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
test_stores_agree = StoresAgree.TestCase
