"""A full store: StoreFullError, nothing half-applied, old data intact, and
writes succeed again once room returns (map, capacity and a real full disk)."""

from __future__ import annotations

import os
import subprocess

import pytest

from storage import LmdbStore, StoreClosedError, StoreFullError

MIB = 1 << 20


def _batch(first: int, count: int = 1000, size: int = 128):
    return [(seq, seq.to_bytes(8, "big") * (size // 8))
            for seq in range(first, first + count)]


def _fill_until_full(store, cid: int, batch: int = 1000, size: int = 128,
                     limit: int = 10_000) -> tuple[int, StoreFullError]:
    """Append batches until StoreFullError; return (last seq stored, error)."""
    seq = 0
    for index in range(1, limit):
        try:
            with store.write() as txn:
                txn.append_messages(cid, _batch(seq + 1, batch, size))
                txn.put_client("writer", b"%d" % index)
                txn.set_last_applied_index(index)
        except StoreFullError as exc:
            return seq, exc
        seq += batch
    raise AssertionError("never became full")


def _new_channel(store) -> int:
    with store.write() as txn:
        return txn.create_channel("foo", b"rec")


def test_full_then_room_after_delete(make_store, dump):
    """Contract: LMDB with a small map_size_max, MemoryStore with bytes_max."""
    store = make_store(capacity=2 * MIB)
    cid = _new_channel(store)
    last, exc = _fill_until_full(store, cid)
    assert exc.reason in ("map", "capacity") and last >= 5000
    before = dump(store)
    assert before["last_applied"] == last // 1000
    with pytest.raises(StoreFullError):  # still full: same result again
        with store.write() as txn:
            txn.append_messages(cid, _batch(last + 1))
            txn.set_last_applied_index(10**6)
    assert dump(store) == before
    store.check()
    with store.write() as txn:
        txn.delete_messages_upto(cid, last // 2)
    for i in range(2):  # room is back
        with store.write() as txn:
            txn.append_messages(cid, _batch(last + 1 + i * 1000))
    with store.read() as r:
        assert r.channel_stats(cid).last_seq == last + 2000
    store.check()


def test_map_full_abandons_transaction(tmp_path, dump):
    store = LmdbStore(tmp_path / "s", sync=False, map_size_initial=64 << 10,
                      map_size_max=MIB)
    cid = _new_channel(store)
    last, exc = _fill_until_full(store, cid)
    assert exc.reason == "map"
    before = dump(store)
    with pytest.raises(StoreFullError):
        with store.write() as txn:
            txn.put_client("x", b"1")
            try:
                txn.append_messages(cid, _batch(last + 1, 5000))
            except StoreFullError:
                pass  # swallowed: the block still must not look committed
            with pytest.raises(StoreClosedError):
                txn.put_client("y", b"2")
    assert dump(store) == before
    store.set_map_size_max(4 * MIB)  # raising the cap makes room too
    with store.write() as txn:
        txn.append_messages(cid, _batch(last + 1, 5000))
    assert store.usage().map_size > MIB
    store.check()
    store.close()


def _mount_tmpfs(path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    os.makedirs(path)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                           "tmpfs", str(path)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, always unmounted afterwards."""
    path = tmp_path / "disk"
    _mount_tmpfs(path, "2m")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk(small_disk, dump):
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (512 << 10))
    store = LmdbStore(small_disk / "s", sync=True, map_size_initial=64 << 10)
    try:
        cid = _new_channel(store)
        last, exc = _fill_until_full(store, cid, batch=50, size=1000)
        assert exc.reason == "disk"
        before = dump(store)
        with pytest.raises(StoreFullError):
            with store.write() as txn:
                txn.append_messages(cid, _batch(last + 1, 50, 1000))
        assert dump(store) == before
        store.check()
        with pytest.raises(StoreFullError):  # a snapshot cannot fit either
            store.snapshot_to(small_disk / "snap")
        assert sorted(os.listdir(small_disk)) == ["ballast", "s"]
        os.unlink(ballast)  # room returns
        for i in range(3):
            with store.write() as txn:
                txn.append_messages(cid, _batch(last + 1 + i * 50, 50, 1000))
        store.check()
    finally:
        store.close()
    store = LmdbStore(small_disk / "s")
    with store.read() as r:
        assert r.channel_stats(cid).last_seq == last + 150
    store.close()


def test_full_disk_room_from_deleting_messages(small_disk):
    store = LmdbStore(small_disk / "s", sync=True, map_size_initial=64 << 10)
    try:
        cid = _new_channel(store)
        last, exc = _fill_until_full(store, cid, batch=50, size=1000)
        assert exc.reason == "disk"
        with store.write() as txn:
            txn.delete_messages_upto(cid, last // 2)
        for i in range(3):
            with store.write() as txn:
                txn.append_messages(cid, _batch(last + 1 + i * 50, 50, 1000))
        store.check()
    finally:
        store.close()
