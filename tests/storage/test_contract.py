"""The storage contract: every test runs against LmdbStore and MemoryStore."""

from __future__ import annotations

import io
import threading

import pytest

from storage import (KEY_BYTES_MAX, ChannelStats, Removed, StoreClosedError,
                     StoreCorruptError,
                     StoreUsageError)


def _msgs(first: int, count: int, size: int = 16) -> list[tuple[int, bytes]]:
    return [(seq, bytes([seq % 251]) * size) for seq in range(first, first + count)]


def _channel(store, name: str = "foo", count: int = 0) -> int:
    with store.write() as txn:
        cid = txn.create_channel(name, b"rec-" + name.encode())
        if count:
            txn.append_messages(cid, _msgs(1, count))
    return cid


# ------------------------------------------------------------ basics --------
def test_new_store_is_empty(store):
    with store.read() as r:
        assert r.get_last_applied_index() == 0
        assert r.list_channels() == [] and r.list_clients() == []
        assert r.get_meta("cluster_id") is None
        assert r.get_channel("foo") is None and r.get_channel_by_id(1) is None
        assert r.channel_stats(1) is None and r.get_message(1, 1) is None
        assert r.read_messages(1, 1, 10) == [] and r.list_subscriptions(1) == []
    store.check()


def test_channel_ids_are_sequential_and_never_reused(store):
    with store.write() as txn:
        assert txn.create_channel("a", b"A") == 1
        assert txn.create_channel("b", b"B") == 2
        txn.delete_channel(1)
        assert txn.create_channel("a", b"A2") == 3
    with store.read() as r:
        chan = r.get_channel("a")
        assert (chan.channel_id, chan.name, chan.record) == (3, "a", b"A2")
        assert chan.stats == ChannelStats(0, 0, 0, 0)
        assert r.get_channel_by_id(1) is None
        assert r.get_channel_by_id(2).name == "b"


def test_channels_listed_in_utf8_byte_order(store):
    names = ["zeta", "Alpha", "alpha", "é", "a.b", "a", "日本", "a>"]
    with store.write() as txn:
        for name in names:
            txn.create_channel(name, b"")
    with store.read() as r:
        listed = [c.name for c in r.list_channels()]
    assert listed == sorted(names, key=lambda n: n.encode())


def test_duplicate_channel_is_usage_error_and_txn_survives(store):
    with store.write() as txn:
        txn.create_channel("foo", b"1")
        with pytest.raises(StoreUsageError):
            txn.create_channel("foo", b"2")
        txn.put_client("c", b"x")
    with store.read() as r:
        assert r.get_channel("foo").record == b"1"
        assert r.get_client("c") == b"x"


@pytest.mark.parametrize("name", ["", "x" * (KEY_BYTES_MAX + 1), "\udc80", 7])
def test_invalid_names_rejected(store, name):
    with store.write() as txn:
        for call in (lambda: txn.create_channel(name, b""),
                     lambda: txn.put_client(name, b""),
                     lambda: txn.put_meta(name, b"")):
            with pytest.raises(StoreUsageError):
                call()
    with store.read() as r:
        with pytest.raises(StoreUsageError):
            r.get_channel(name)


def test_put_channel_replaces_record_keeps_stats(store):
    cid = _channel(store, count=3)
    with store.write() as txn:
        txn.put_channel(cid, b"new")
        with pytest.raises(StoreUsageError):
            txn.put_channel(cid + 1, b"x")
    with store.read() as r:
        chan = r.get_channel("foo")
        assert chan.record == b"new" and chan.stats == ChannelStats(1, 3, 3, 48)


# ---------------------------------------------------------- messages --------
def test_append_and_read(store):
    cid = _channel(store)
    with store.write() as txn:
        txn.append_messages(cid, _msgs(1, 10))
        txn.append_messages(cid, [(20, b"twenty"), (21, b"")])
    with store.read() as r:
        assert r.channel_stats(cid) == ChannelStats(1, 21, 12, 166)
        assert r.get_message(cid, 20) == b"twenty"
        assert r.get_message(cid, 21) == b"" and r.get_message(cid, 15) is None
        assert [s for s, _ in r.read_messages(cid, 0, 3)] == [1, 2, 3]
        assert [s for s, _ in r.read_messages(cid, 9, 100)] == [9, 10, 20, 21]
        assert [s for s, _ in r.read_messages(cid, 11, 100)] == [20, 21]
        assert r.read_messages(cid, 22, 100) == []
        assert r.read_messages(cid, 1, 5) == _msgs(1, 5)


def test_read_messages_bytes_bound(store):
    cid = _channel(store, count=10)
    with store.read() as r:
        assert len(r.read_messages(cid, 1, 100, bytes_max=48)) == 3
        assert len(r.read_messages(cid, 1, 100, bytes_max=47)) == 2
        assert len(r.read_messages(cid, 1, 100, bytes_max=1)) == 1  # progress
        assert len(r.read_messages(cid, 1, 100, bytes_max=0)) == 1
        for bad in (0, -1, 1.5):
            with pytest.raises(StoreUsageError):
                r.read_messages(cid, 1, bad)
        with pytest.raises(StoreUsageError):
            r.read_messages(cid, 1, 1, bytes_max=-1)


def test_sequences_sort_numerically_across_byte_boundaries(store):
    seqs = [1, 255, 256, 257, 65535, 65536, 2**32, 2**63, 2**64 - 1]
    cid = _channel(store)
    other = _channel(store, "bar")
    with store.write() as txn:
        txn.append_messages(cid, [(s, s.to_bytes(8, "big")) for s in seqs])
        txn.append_messages(other, [(1, b"o")])
    with store.read() as r:
        assert [s for s, _ in r.read_messages(cid, 0, 100)] == seqs
        assert r.channel_stats(cid) == ChannelStats(1, 2**64 - 1, len(seqs),
                                                    8 * len(seqs))
        assert r.read_messages(other, 0, 10) == [(1, b"o")]


@pytest.mark.parametrize("batch", [
    [(3, b"a"), (3, b"b")], [(5, b"a"), (4, b"b")], [(0, b"a")],
    [(2, b"ok"), (1, b"low")], [(2, "str")], [(2,)], [(2**64, b"x")],
    [(True, b"x")], [(2, b"a"), "junk"],
])
def test_bad_append_stores_nothing(store, batch):
    cid = _channel(store)
    with store.write() as txn:
        txn.append_messages(cid, [(1, b"first")])
        with pytest.raises(StoreUsageError):
            txn.append_messages(cid, batch)
        with pytest.raises(StoreUsageError):
            txn.append_messages(cid, [(1, b"again")])  # not above last_seq
        with pytest.raises(StoreUsageError):
            txn.append_messages(cid + 7, [(9, b"x")])  # unknown channel
        txn.append_messages(cid, [])
    with store.read() as r:
        assert r.read_messages(cid, 0, 10) == [(1, b"first")]
        assert r.channel_stats(cid) == ChannelStats(1, 1, 1, 5)


def test_append_copies_mutable_records(store):
    cid = _channel(store)
    buf = bytearray(b"abc")
    batch = [(1, buf)]
    with store.write() as txn:
        txn.append_messages(cid, batch)
        txn.put_client("c", buf)
        buf[:] = b"XYZ"
        batch.append((2, b"late"))
    with store.read() as r:
        assert r.read_messages(cid, 0, 10) == [(1, b"abc")]
        assert r.get_client("c") == b"abc"


def test_delete_messages_upto(store):
    cid = _channel(store, count=10)
    with store.write() as txn:
        assert txn.delete_messages_upto(cid, 0) == Removed(0, 0)
        assert txn.delete_messages_upto(cid, 4) == Removed(4, 64)
        assert txn.channel_stats(cid) == ChannelStats(5, 10, 6, 96)
        assert txn.delete_messages_upto(cid, 4) == Removed(0, 0)
        with pytest.raises(StoreUsageError):
            txn.delete_messages_upto(cid + 1, 4)
    with store.read() as r:
        assert r.get_message(cid, 4) is None and r.get_message(cid, 5)
        assert [s for s, _ in r.read_messages(cid, 0, 100)] == list(range(5, 11))


def test_delete_all_then_append_continues(store):
    cid = _channel(store, count=5)
    with store.write() as txn:
        assert txn.delete_messages_upto(cid, 2**64 - 1) == Removed(5, 80)
        assert txn.channel_stats(cid) == ChannelStats(6, 5, 0, 0)
        with pytest.raises(StoreUsageError):
            txn.append_messages(cid, [(5, b"x")])
    with store.write() as txn:
        txn.append_messages(cid, [(6, b"six"), (9, b"nine")])
    with store.read() as r:
        assert r.channel_stats(cid) == ChannelStats(6, 9, 2, 7)
    with store.write() as txn:
        assert txn.delete_messages_upto(cid, 7) == Removed(1, 3)
        assert txn.channel_stats(cid) == ChannelStats(9, 9, 1, 4)
    store.check()


def test_trim_messages(store):
    cid = _channel(store, count=10)
    with store.write() as txn:
        assert txn.trim_messages(cid) == Removed(0, 0)
        assert txn.trim_messages(cid, msgs_max=7) == Removed(3, 48)
        assert txn.trim_messages(cid, bytes_max=80) == Removed(2, 32)
        assert txn.channel_stats(cid) == ChannelStats(6, 10, 5, 80)
        assert txn.trim_messages(cid, msgs_max=0) == Removed(4, 64)
        assert txn.channel_stats(cid) == ChannelStats(10, 10, 1, 16)
        assert txn.trim_messages(cid, msgs_max=0, bytes_max=0) == Removed(0, 0)
        for bad in ({"msgs_max": -1}, {"bytes_max": -5}):
            with pytest.raises(StoreUsageError):
                txn.trim_messages(cid, **bad)
        with pytest.raises(StoreUsageError):
            txn.trim_messages(cid + 1, msgs_max=1)
    store.check()


def test_delete_channel_removes_messages_and_subs_only_its_own(store):
    # ids 1 and 256/257 share their low byte: big-endian prefixes keep apart
    with store.write() as txn:
        ids = [txn.create_channel(f"c{i}", b"") for i in range(257)]
        for cid in (1, 2, 256, 257):
            txn.append_messages(cid, _msgs(1, 3))
            txn.put_subscription(cid, 1, b"s%d" % cid)
    assert ids[-1] == 257
    with store.write() as txn:
        assert txn.delete_channel(1) == Removed(3, 48)
        assert txn.delete_channel(256) == Removed(3, 48)
        with pytest.raises(StoreUsageError):
            txn.delete_channel(1)
    with store.read() as r:
        assert r.get_channel("c0") is None and r.get_message(1, 1) is None
        assert r.list_subscriptions(1) == [] and r.list_subscriptions(256) == []
        assert r.read_messages(2, 0, 9) == _msgs(1, 3)
        assert r.read_messages(257, 0, 9) == _msgs(1, 3)
        assert r.list_subscriptions(257) == [(1, b"s257")]
        assert len(r.list_channels()) == 255
    store.check()


# ------------------------------------------------- subs, clients, meta ------
def test_subscriptions(store):
    cid = _channel(store)
    with store.write() as txn:
        txn.put_subscription(cid, 2, b"two")
        txn.put_subscription(cid, 1, b"one")
        txn.put_subscription(cid, 2**64 - 1, b"max")
        txn.put_subscription(cid, 2, b"TWO")
        with pytest.raises(StoreUsageError):
            txn.put_subscription(cid + 1, 1, b"x")
        with pytest.raises(StoreUsageError):
            txn.put_subscription(cid, -1, b"x")
    with store.write() as txn:
        assert txn.delete_subscription(cid, 1) is True
        assert txn.delete_subscription(cid, 1) is False
        assert txn.delete_subscription(cid + 1, 1) is False
    with store.read() as r:
        assert r.list_subscriptions(cid) == [(2, b"TWO"), (2**64 - 1, b"max")]
        assert r.get_subscription(cid, 2) == b"TWO"
        assert r.get_subscription(cid, 1) is None


def test_clients_and_meta(store):
    with store.write() as txn:
        txn.put_client("b", b"B")
        txn.put_client("a", b"A")
        txn.put_client("a", b"A2")
        txn.put_meta("cluster_id", b"test-cluster")
        assert txn.delete_client("zz") is False
        assert txn.delete_meta("zz") is False
    with store.write() as txn:
        assert txn.delete_client("b") is True
        txn.put_meta("format", b"\x01")
        assert txn.delete_meta("format") is True
    with store.read() as r:
        assert r.list_clients() == [("a", b"A2")]
        assert r.get_client("a") == b"A2" and r.get_client("b") is None
        assert r.get_meta("cluster_id") == b"test-cluster"
        assert r.get_meta("format") is None


def test_last_applied_index(store):
    with store.write() as txn:
        txn.set_last_applied_index(5)
        txn.set_last_applied_index(5)
        with pytest.raises(StoreUsageError):
            txn.set_last_applied_index(4)
        for bad in (-1, 2**64, "7", 1.0):
            with pytest.raises(StoreUsageError):
                txn.set_last_applied_index(bad)
        txn.set_last_applied_index(2**64 - 1)
    with store.read() as r:
        assert r.get_last_applied_index() == 2**64 - 1


# ------------------------------------------------------ transactions --------
def test_exception_abandons_everything(store, dump):
    cid = _channel(store, count=10)
    with store.write() as txn:
        txn.put_subscription(cid, 1, b"s")
        txn.put_client("c", b"c")
        txn.put_meta("k", b"v")
        txn.set_last_applied_index(3)
    before = dump(store)
    with pytest.raises(RuntimeError):
        with store.write() as txn:
            txn.append_messages(cid, _msgs(11, 5))
            txn.delete_messages_upto(cid, 12)
            txn.trim_messages(cid, msgs_max=2)
            other = txn.create_channel("bar", b"")
            txn.append_messages(other, _msgs(1, 100))
            txn.put_subscription(other, 9, b"x")
            txn.delete_channel(cid)
            txn.put_client("c", b"changed")
            txn.delete_client("c")
            txn.put_client("d", b"d")
            txn.put_meta("k", b"changed")
            txn.set_last_applied_index(9)
            assert txn.get_channel("foo") is None
            raise RuntimeError("abandon")
    assert dump(store) == before
    with store.read() as r:
        assert r.get_meta("k") == b"v"
    with store.write() as txn:  # the next id was not consumed
        assert txn.create_channel("baz", b"") == 2
    store.check()


def test_write_reads_its_own_writes(store):
    with store.write() as txn:
        cid = txn.create_channel("foo", b"r")
        txn.append_messages(cid, _msgs(1, 3))
        txn.put_client("c", b"x")
        txn.set_last_applied_index(8)
        assert txn.get_channel("foo").stats == ChannelStats(1, 3, 3, 48)
        assert txn.read_messages(cid, 2, 5) == _msgs(2, 2)
        assert txn.get_client("c") == b"x"
        assert txn.get_last_applied_index() == 8
        with pytest.raises(StoreUsageError):
            with store.read():
                pass


def test_txn_unusable_after_block(store):
    with store.write() as txn:
        pass
    with store.read() as r:
        pass
    with pytest.raises(StoreClosedError):
        txn.put_client("c", b"x")
    with pytest.raises(StoreClosedError):
        r.get_client("c")
    with pytest.raises(StoreClosedError):
        r.list_channels()


def test_one_transaction_per_thread(store):
    with store.read():
        with pytest.raises(StoreUsageError):
            with store.read():
                pass
        with pytest.raises(StoreUsageError):
            with store.write():
                pass
        with pytest.raises(StoreUsageError):
            store.snapshot_to(__file__ + ".never")
    with store.read() as r:  # the guard was released
        r.list_clients()


def test_reader_never_sees_uncommitted_or_abandoned_writes(store):
    with store.write() as txn:
        txn.put_client("c", b"old")
    seen = []
    with pytest.raises(RuntimeError):
        with store.write() as txn:
            txn.put_client("c", b"new")

            def reader():
                with store.read() as r:
                    seen.append(r.get_client("c"))

            thread = threading.Thread(target=reader)
            thread.start()
            thread.join(0.2)
            raise RuntimeError("abandon")
    thread.join(5)
    assert seen == [b"old"]


def test_concurrent_readers_see_consistent_commits(store):
    cid = _channel(store)
    stop = threading.Event()
    errors: list[str] = []

    def reader():
        while not stop.is_set():
            with store.read() as r:
                stats = r.channel_stats(cid)
                msgs = r.read_messages(cid, 0, 100_000)
                index = r.get_last_applied_index()
            if len(msgs) != stats.msgs or index * 100 != stats.last_seq:
                errors.append(f"{stats} {len(msgs)} {index}")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for index in range(1, 60):
            with store.write() as txn:
                txn.append_messages(cid, _msgs(index * 100 - 99, 100, 64))
                txn.trim_messages(cid, msgs_max=1000)
                txn.set_last_applied_index(index)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert errors == []
    store.check()


def test_closed_store(store):
    _channel(store)
    store.close()
    store.close()
    for open_txn in (store.read, store.write):
        with pytest.raises(StoreClosedError):
            with open_txn():
                pass


# ---------------------------------------------------------- snapshots -------
def test_snapshot_and_restore(store, dump, tmp_path):
    cid = _channel(store, count=50)
    with store.write() as txn:
        txn.put_subscription(cid, 4, b"sub")
        txn.put_client("c", b"x")
        txn.put_meta("cluster_id", b"cl")
        txn.delete_messages_upto(cid, 10)
        txn.set_last_applied_index(12)
    expected = dump(store)
    info = store.snapshot_to(tmp_path / "snap")
    assert info.last_applied_index == 12 and info.size_bytes > 0
    with open(tmp_path / "snap2", "wb") as f:
        assert store.snapshot_to(f).last_applied_index == 12
    buffer = io.BytesIO()  # no fileno()
    info3 = store.snapshot_to(buffer)
    assert (info3.last_applied_index, info3.size_bytes) == (12, len(buffer.getvalue()))
    (tmp_path / "snap3").write_bytes(buffer.getvalue())
    with store.write() as txn:
        txn.delete_channel(cid)
        txn.delete_meta("cluster_id")
        txn.create_channel("later", b"")
        txn.set_last_applied_index(20)
    assert store.restore_from(tmp_path / "snap") == 12
    assert dump(store) == expected
    with store.read() as r:
        assert r.get_meta("cluster_id") == b"cl"
    for name in ("snap2", "snap3"):
        assert store.restore_from(tmp_path / name) == 12
        assert dump(store) == expected
    with store.write() as txn:
        assert txn.create_channel("new", b"") == cid + 1
    store.check()


def test_restore_refuses_garbage(store, dump, tmp_path):
    _channel(store, count=5)
    before = dump(store)
    (tmp_path / "bad").write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreCorruptError):
        store.restore_from(tmp_path / "bad")
    with pytest.raises(StoreCorruptError):
        store.restore_from(tmp_path / "missing")
    assert dump(store) == before
