"""chaos.powerfs is a power cut: what was fsynced survives, nothing else does.

The Overlay model is tested on its own; then the real FUSE mount (skipped without
/dev/fuse, fusepy or root) with plain files and with LMDB (storage.LmdbStore), whose
sync=True commits must survive a cut and whose sync=False commits must not."""
from __future__ import annotations

import os

import pytest

from chaos.diskfaults import PowerMount
from chaos.powerfs import BLOCK, Overlay
from chaos.support import unavailable


@pytest.fixture
def backing(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"A" * 10)
    return str(path)


def test_unsynced_writes_stay_in_memory(backing):
    ov = Overlay()
    ov.write(backing, b"BBBB", 8)
    assert ov.read(backing, 100, 0) == b"A" * 8 + b"BBBB"
    assert open(backing, "rb").read() == b"A" * 10      # the "disk" is untouched
    ov.fsync(backing)
    assert open(backing, "rb").read() == b"A" * 8 + b"BBBB"


def test_truncate_then_grow_reads_zeros_not_old_bytes(backing):
    ov = Overlay()
    ov.truncate(backing, 4)
    ov.write(backing, b"C", 6)
    assert ov.read(backing, 100, 0) == b"AAAA\0\0C"
    assert ov.size(backing) == 7
    ov.fsync(backing)
    assert open(backing, "rb").read() == b"AAAA\0\0C"


def test_writes_across_blocks_and_far_offsets(tmp_path):
    path = str(tmp_path / "g")
    open(path, "wb").close()
    ov = Overlay()
    data = bytes(range(256)) * 40  # 10240 bytes: three blocks
    ov.write(path, data, BLOCK - 100)
    assert ov.read(path, len(data), BLOCK - 100) == data
    assert ov.read(path, 10, 0) == b"\0" * 10
    ov.fsync(path)
    assert open(path, "rb").read() == b"\0" * (BLOCK - 100) + data


def test_rename_carries_unsynced_data(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    open(a, "wb").close()
    ov = Overlay()
    ov.write(a, b"xyz", 0)
    os.rename(a, b)
    ov.rename(a, b)
    assert ov.read(b, 10, 0) == b"xyz"
    ov.fsync(b)
    assert open(b, "rb").read() == b"xyz"


def test_writeback_when_too_much_is_held(tmp_path):
    path = str(tmp_path / "h")
    open(path, "wb").close()
    ov = Overlay(dirty_bytes_max=4 * BLOCK)
    ov.write(path, b"z" * (5 * BLOCK), 0)
    assert os.path.getsize(path) == 5 * BLOCK and not ov.files


needs_fuse = pytest.mark.skipif(bool(unavailable(("fuse",))), reason=unavailable(("fuse",)))


@pytest.fixture
def mount(tmp_path):
    m = PowerMount(str(tmp_path / "backing"), str(tmp_path / "mnt"), str(tmp_path / "fs.log"))
    m.mount()
    yield m
    m.unmount()


def _cut_and_remount(m: PowerMount) -> None:
    m.cut()
    m.mount()


@needs_fuse
def test_mounted_cut_keeps_only_fsynced_bytes(mount):
    path = os.path.join(mount.mountpoint, "journal")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b"durable;")
    os.fdatasync(fd)
    os.write(fd, b"lost;")
    os.close(fd)
    assert open(path, "rb").read() == b"durable;lost;"
    _cut_and_remount(mount)
    assert open(path, "rb").read() == b"durable;"
    never = os.path.join(mount.mountpoint, "never-synced")
    with open(never, "wb") as f:
        f.write(b"gone")
    _cut_and_remount(mount)
    assert open(never, "rb").read() == b""


@needs_fuse
@pytest.mark.parametrize("sync", [True, False])
def test_lmdb_on_the_mount(mount, sync):
    from storage import LmdbStore
    path = os.path.join(mount.mountpoint, "store")
    store = LmdbStore(path, sync=sync)
    for index in range(1, 21):
        with store.write() as txn:
            txn.set_last_applied_index(index)
    store.close()  # no flush of its own beyond what sync asks for
    _cut_and_remount(mount)
    store = LmdbStore(path, sync=sync)
    with store.read() as txn:
        recovered = txn.get_last_applied_index()
    store.close()
    if sync:
        assert recovered == 20
    else:
        assert recovered < 20
