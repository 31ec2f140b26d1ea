"""A FUSE pass-through file system that holds every unsynced write in memory, so that
killing it is a power cut: only what was fsynced is in the backing directory.

    python -m chaos.powerfs BACKING MOUNTPOINT      # foreground; SIGKILL = power cut

The model (``Overlay``, pure, tested without FUSE): per file, the written blocks not yet
fsynced and the file's current size live in memory; ``fsync``/``fdatasync`` writes them to
the backing file and sets its size. A cut (the process killed, the mount detached) keeps
the backing files: every unsynced byte, and every size change not synced, is gone; a file
never synced is empty. Reads see backing + overlay, as a page cache would.

Known limits: names (create, rename, unlink, mkdir) reach the backing directory at once,
as if every directory were fsynced immediately (kinder than a real disk for a rename
that skips the directory fsync; Runnel's raft/ and storage/ fsync their directories
anyway). When more than ``dirty_bytes_max`` is held, everything is written back (a real
kernel's writeback), which a later cut keeps.
"""
from __future__ import annotations

import os
import sys
import threading

BLOCK = 4096
DIRTY_BYTES_MAX = 256 * 1024 * 1024


class FileState:
    """``size``: the file's size now; ``low``: the lowest size since the last sync (backing
    bytes at or past it are no longer the file's: they read as zeros)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.low = size
        self.blocks: dict[int, bytearray] = {}


class Overlay:
    """Unsynced blocks and sizes per backing path (paths are the backing's)."""

    def __init__(self, dirty_bytes_max: int = DIRTY_BYTES_MAX) -> None:
        self.files: dict[str, FileState] = {}
        self.dirty_bytes_max = dirty_bytes_max
        self.lock = threading.RLock()
        self.syncs = 0

    def _state(self, path: str) -> FileState:
        state = self.files.get(path)
        if state is None:
            size = os.path.getsize(path) if os.path.exists(path) else 0
            state = self.files[path] = FileState(size)
        return state

    def size(self, path: str) -> int | None:
        with self.lock:
            state = self.files.get(path)
            return None if state is None else state.size

    @staticmethod
    def _backing(path: str, offset: int, length: int, low: int | None) -> bytearray:
        """Backing bytes [offset, offset+length), zeros at and past ``low``."""
        end = offset + length if low is None else min(offset + length, low)
        data = bytearray()
        if end > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                data = bytearray(f.read(end - offset))
        return data.ljust(length, b"\0")

    def _block(self, path: str, state: FileState, index: int) -> bytearray:
        block = state.blocks.get(index)
        if block is None:
            block = state.blocks[index] = self._backing(path, index * BLOCK, BLOCK, state.low)
        return block

    def write(self, path: str, data: bytes, offset: int) -> int:
        with self.lock:
            state = self._state(path)
            pos, view = offset, memoryview(data)
            while view:
                index, within = divmod(pos, BLOCK)
                n = min(BLOCK - within, len(view))
                self._block(path, state, index)[within:within + n] = view[:n]
                pos, view = pos + n, view[n:]
            state.size = max(state.size, offset + len(data))
            if self.dirty_bytes() > self.dirty_bytes_max:
                self.writeback_all()
            return len(data)

    def read(self, path: str, length: int, offset: int) -> bytes:
        with self.lock:
            state = self.files.get(path)
            if state is None:
                with open(path, "rb") as f:
                    f.seek(offset)
                    return f.read(length)
            end = min(offset + length, state.size)
            if end <= offset:
                return b""
            data = self._backing(path, offset, end - offset, state.low)
            for index in range(offset // BLOCK, (end - 1) // BLOCK + 1):
                block = state.blocks.get(index)
                if block is not None:
                    lo, hi = max(offset, index * BLOCK), min(end, (index + 1) * BLOCK)
                    data[lo - offset:hi - offset] = block[lo - index * BLOCK:hi - index * BLOCK]
            return bytes(data)

    def truncate(self, path: str, size: int) -> None:
        with self.lock:
            state = self._state(path)
            for index in [i for i in state.blocks if i * BLOCK >= size]:
                del state.blocks[index]
            partial = state.blocks.get(size // BLOCK)
            if partial is not None:
                partial[size % BLOCK:] = bytes(BLOCK - size % BLOCK)
            state.low = min(state.low, size)
            state.size = size

    def fsync(self, path: str) -> None:
        with self.lock:
            state = self.files.pop(path, None)
            if state is None:
                return
            with open(path, "r+b") as f:
                f.truncate(state.low)
                for index in sorted(state.blocks):
                    start = index * BLOCK
                    if start < state.size:
                        f.seek(start)
                        f.write(state.blocks[index][:state.size - start])
                f.truncate(state.size)
            self.syncs += 1

    def writeback_all(self) -> None:
        with self.lock:
            for path in list(self.files):
                if os.path.exists(path):
                    self.fsync(path)

    def rename(self, old: str, new: str) -> None:
        with self.lock:
            self.files.pop(new, None)
            if old in self.files:
                self.files[new] = self.files.pop(old)

    def forget(self, path: str) -> None:
        with self.lock:
            self.files.pop(path, None)

    def dirty_bytes(self) -> int:
        return sum(len(s.blocks) for s in self.files.values()) * BLOCK


def main(argv: list[str]) -> int:
    from .powerfs_ops import mount
    backing, mountpoint = argv
    mount(backing, mountpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
