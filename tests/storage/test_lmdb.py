"""LmdbStore only: files, reopen, locking, format, growth, snapshots."""

from __future__ import annotations

import os
import select
import threading

import lmdb
import pytest

from storage import (ChannelStats, LmdbStore, MemoryStore, StoreCorruptError,
                     StoreLockedError, StoreUsageError)

KIB = 1 << 10


def _fill(store, name="foo", batches=3, batch=100, size=128, index0=0) -> int:
    with store.write() as txn:
        cid = txn.create_channel(name, b"rec")
    for i in range(batches):
        with store.write() as txn:
            first = i * batch + 1
            txn.append_messages(cid, [(s, os.urandom(size))
                                      for s in range(first, first + batch)])
            txn.set_last_applied_index(index0 + i + 1)
    return cid


def test_reopen_sees_everything_committed(tmp_path, dump):
    path = tmp_path / "s"
    store = LmdbStore(path, sync=True)
    cid = _fill(store)
    with store.write() as txn:
        txn.put_subscription(cid, 3, b"sub")
        txn.put_client("me", b"client")
        txn.put_meta("cluster_id", b"c")
        txn.delete_messages_upto(cid, 10)
    before = dump(store)
    store.close()
    store = LmdbStore(path, sync=False)
    try:
        assert dump(store) == before
        with store.write() as txn:
            assert txn.create_channel("next", b"") == cid + 1
        store.check()
    finally:
        store.close()


def test_second_open_is_refused(tmp_path):
    store = LmdbStore(tmp_path / "s")
    try:
        with pytest.raises(StoreLockedError):
            LmdbStore(tmp_path / "s")
    finally:
        store.close()
    LmdbStore(tmp_path / "s").close()  # released by close


def test_bad_map_sizes(tmp_path):
    with pytest.raises(StoreUsageError):
        LmdbStore(tmp_path / "s", map_size_initial=2 << 20, map_size_max=1 << 20)


def test_wrong_format_is_refused(tmp_path):
    LmdbStore(tmp_path / "s").close()
    env = lmdb.open(str(tmp_path / "s"), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.put(b"format", (99).to_bytes(8, "big"), db=env.open_db(b"sys", txn=txn))
    env.close()
    with pytest.raises(StoreCorruptError, match="format 99"):
        LmdbStore(tmp_path / "s")


def test_garbage_file_is_refused(tmp_path):
    os.makedirs(tmp_path / "s")
    (tmp_path / "s" / "data.mdb").write_bytes(b"not an lmdb file" * 1000)
    with pytest.raises(StoreCorruptError):
        LmdbStore(tmp_path / "s")


def test_big_transaction_grows_map_and_replays_exactly(tmp_path, dump):
    """One transaction far bigger than the initial map: growth happens
    mid-transaction (several doublings and replays) while readers run, and
    the result equals the same operations on a MemoryStore."""
    lm = LmdbStore(tmp_path / "s", sync=False, map_size_initial=64 * KIB)
    mem = MemoryStore()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            with lm.read() as r:
                r.list_channels()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for store in (lm, mem):
            with store.write() as txn:
                _big_ops(txn)
    finally:
        stop.set()
        thread.join(10)
    assert lm.usage().map_size >= 8 << 20
    assert dump(lm) == dump(mem)
    lm.check()
    lm.close()


def _big_ops(txn) -> None:
    old = txn.create_channel("old", b"o")
    txn.append_messages(old, [(s, b"o" * 100) for s in range(1, 501)])
    cid = txn.create_channel("big", b"b")
    txn.put_client("c", b"client")
    for start in range(1, 40_001, 1000):
        txn.append_messages(cid, [(s, s.to_bytes(8, "big") * 16)
                                  for s in range(start, start + 1000)])
    txn.delete_messages_upto(cid, 5000)
    txn.trim_messages(cid, msgs_max=30_000)
    txn.put_subscription(cid, 1, b"s")
    txn.delete_channel(old)
    txn.set_last_applied_index(77)


# ---------------------------------------------------------- snapshots -------
def test_snapshot_restore_round_trip(tmp_path, dump):
    src = LmdbStore(tmp_path / "src", sync=False)
    cid = _fill(src, batches=5)
    with src.write() as txn:
        txn.put_subscription(cid, 1, b"s")
        txn.put_client("c", b"x")
        txn.delete_messages_upto(cid, 250)  # free pages: compaction drops them
    expected = dump(src)
    info = src.snapshot_to(tmp_path / "snap")
    assert info.last_applied_index == 5
    assert info.size_bytes == os.path.getsize(tmp_path / "snap")
    assert not os.path.exists(tmp_path / "snap.tmp")
    with src.write() as txn:  # later changes are not in the snapshot
        txn.delete_channel(cid)
        txn.set_last_applied_index(6)
    dst = LmdbStore(tmp_path / "dst", sync=False)
    _fill(dst, "other")
    assert dst.restore_from(tmp_path / "snap") == 5
    assert dump(dst) == expected
    with dst.write() as txn:  # the channel id counter came along
        assert txn.create_channel("new", b"") == cid + 1
    dst.close()
    dst = LmdbStore(tmp_path / "dst")  # and the restore is on disk
    assert dump(dst)["channels"]["foo"] == expected["channels"]["foo"]
    assert src.restore_from(tmp_path / "snap") == 5
    assert dump(src) == expected
    src.close()
    dst.close()


def test_snapshot_to_file_object_at_offset(tmp_path, dump):
    store = LmdbStore(tmp_path / "s", sync=False)
    _fill(store)
    with open(tmp_path / "out", "wb") as f:
        f.write(b"HEADER")
        info = store.snapshot_to(f)
        f.write(b"TRAILER")
    raw = (tmp_path / "out").read_bytes()
    assert raw[:6] == b"HEADER" and raw[-7:] == b"TRAILER"
    assert len(raw) == 6 + info.size_bytes + 7
    (tmp_path / "snap").write_bytes(raw[6:-7])
    expected = dump(store)
    with store.write() as txn:
        txn.put_client("late", b"x")
    assert store.restore_from(tmp_path / "snap") == 3
    assert dump(store) == expected
    store.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_restore_refuses_bad_snapshot_and_keeps_data(tmp_path, dump, damage):
    store = LmdbStore(tmp_path / "s", sync=False)
    _fill(store)
    store.snapshot_to(tmp_path / "snap")
    good = (tmp_path / "snap").read_bytes()
    if damage == "garbage":
        (tmp_path / "snap").write_bytes(b"\x00junk" * 5000)
    elif damage == "truncated":
        (tmp_path / "snap").write_bytes(good[:len(good) // 2])
    else:
        os.unlink(tmp_path / "snap")
    before = dump(store)
    with pytest.raises(StoreCorruptError):
        store.restore_from(tmp_path / "snap")
    assert dump(store) == before
    store.check()
    store.close()


def test_snapshot_does_not_block_writers(tmp_path, dump):
    """The copy runs from a read transaction: while it is stuck writing into
    a full pipe, the writer commits; the snapshot holds the earlier state."""
    store = LmdbStore(tmp_path / "s", sync=False, map_size_initial=64 << 20)
    cid = _fill(store, batches=10, size=512)  # ~0.5 MiB, pipe holds 64 KiB
    expected = dump(store)
    read_fd, write_fd = os.pipe()
    result = {}

    def snap():
        with os.fdopen(write_fd, "wb") as pipe:
            result["info"] = store.snapshot_to(pipe)

    thread = threading.Thread(target=snap)
    thread.start()
    try:
        assert select.select([read_fd], [], [], 10)[0]  # the copy has begun
        for index in range(11, 21):  # commits while the copy is blocked
            with store.write() as txn:
                txn.append_messages(cid, [(index * 100 + 1, b"x")])
                txn.set_last_applied_index(index)
        assert thread.is_alive()
    finally:
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        thread.join(10)
    assert result["info"].last_applied_index == 10
    assert result["info"].size_bytes == -1
    (tmp_path / "snap").write_bytes(data)
    other = LmdbStore(tmp_path / "other", sync=False)
    assert other.restore_from(tmp_path / "snap") == 10
    assert dump(other) == expected
    with store.read() as r:
        assert r.channel_stats(cid) == ChannelStats(1, 2001, 1010, 512_010)
    other.close()
    store.close()


def test_truncated_data_file_is_refused_not_a_crash(tmp_path):
    store = LmdbStore(tmp_path / "s", sync=True)
    _fill(store, batches=5)
    store.close()
    data = tmp_path / "s" / "data.mdb"
    raw = data.read_bytes()
    data.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(StoreCorruptError, match="truncated"):
        LmdbStore(tmp_path / "s")


def test_damaged_snapshot_is_refused_not_a_crash(tmp_path, dump):
    """Pages overwritten with junk inside a snapshot of the right size: the
    check runs in a child process, so even a crash there is an error here."""
    store = LmdbStore(tmp_path / "s", sync=False)
    _fill(store, batches=20, size=256)
    store.snapshot_to(tmp_path / "snap")
    raw = bytearray((tmp_path / "snap").read_bytes())
    for page in range(2, len(raw) // 4096, 3):
        raw[page * 4096:page * 4096 + 64] = os.urandom(64)
    (tmp_path / "snap").write_bytes(bytes(raw))
    before = dump(store)
    with pytest.raises(StoreCorruptError):
        store.restore_from(tmp_path / "snap")
    assert dump(store) == before
    store.close()


def test_growth_during_snapshot_waits_for_it_but_readers_do_not(tmp_path):
    """A write that needs a bigger map while a snapshot copy is running
    waits for the copy (remapping under it is unsafe); meanwhile other
    readers still get in, and the write completes after the copy."""
    store = LmdbStore(tmp_path / "s", sync=False, map_size_initial=64 << 10)
    cid = _fill(store, batches=4, size=512)
    read_fd, write_fd = os.pipe()
    done = threading.Event()

    def snap():
        with os.fdopen(write_fd, "wb") as pipe:
            store.snapshot_to(pipe)

    def big_write():
        with store.write() as txn:  # far beyond the headroom: must grow
            txn.append_messages(cid, [(s, b"w" * 1000)
                                      for s in range(401, 5401)])
        done.set()

    snapper = threading.Thread(target=snap)
    snapper.start()
    assert select.select([read_fd], [], [], 10)[0]  # the copy has begun
    writer = threading.Thread(target=big_write)
    writer.start()
    try:
        assert not done.wait(0.3)  # growth waits for the copy
        with store.read() as r:  # but a reader is not held up
            assert r.channel_stats(cid).last_seq == 400
    finally:
        with os.fdopen(read_fd, "rb") as pipe:
            pipe.read()
        snapper.join(10)
        writer.join(10)
    assert done.is_set()
    with store.read() as r:
        assert r.channel_stats(cid).last_seq == 5400
    store.check()
    store.close()


def test_snapshot_into_failing_writer_ends_cleanly(tmp_path):
    store = LmdbStore(tmp_path / "s", sync=False)
    _fill(store, batches=10, size=512)

    class Broken:
        calls = 0

        def write(self, chunk):
            Broken.calls += 1
            if Broken.calls == 2:
                raise RuntimeError("peer went away")

    with pytest.raises(RuntimeError):
        store.snapshot_to(Broken())
    assert not [t for t in threading.enumerate() if t.name == "store-snapshot"]
    with store.write() as txn:
        txn.put_client("after", b"x")
    store.check()
    store.close()
