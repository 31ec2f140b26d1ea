"""A file layer that forgets every unsynced byte at a simulated power cut.

Test support, kept in raft/ so chaos/ and other packages' tests can use it too.
Real files hold the current content (so pysyncobj, which opens some files by
itself, sees them); ``PowerCutFS`` keeps aside what a real disk would have kept:

* the content of a file (by inode) as of its last ``fsync``;
* the names in a directory as of its last ``fsync_dir``.

``freeze()`` is the instant of the cut: an fsync that completes after it is
not durable. ``power_cut()`` rewrites every tracked directory to exactly that: files whose
name was never made durable vanish, a renamed file whose directory was not
synced is back under its old name, and every file holds only what was fsynced
(a file never fsynced is empty). Only directories given to the constructor (or
later synced through this object) are tracked. Call it only while no node uses
the files (after ``RaftNode.kill()``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import BinaryIO

from raft.fsio import OsFS


class PowerCutFS(OsFS):
    """OsFS that records durability instead of paying for it (no real fsync)."""

    def __init__(self, *dirs: str, fsync_delay_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._durable_data: dict[int, bytes] = {}
        self._durable_names: dict[str, dict[str, int]] = {}
        self._frozen = False
        #: Time an fsync takes (a real disk's latency widens the window in
        #: which a reply sent before its fsync would be caught).
        self.fsync_delay_s = fsync_delay_s
        self.fsyncs = 0
        for d in dirs:
            self.track(d)

    def track(self, directory: str) -> None:
        """Count everything now in ``directory`` as durable."""
        directory = os.path.abspath(directory)
        names: dict[str, int] = {}
        with self._lock:
            for name, path in _files(directory):
                st = os.stat(path)
                names[name] = st.st_ino
                with open(path, "rb") as f:
                    self._durable_data[st.st_ino] = f.read()
            self._durable_names[directory] = names

    # -- creation resets what is durable for a new inode --------------------
    def open_append(self, path: str) -> int:
        existed = os.path.exists(path)
        fd = super().open_append(path)
        if not existed:
            self._forget(os.fstat(fd).st_ino)
        return fd

    def open_trunc(self, path: str) -> int:
        existed = os.path.exists(path)
        fd = super().open_trunc(path)
        if not existed:
            self._forget(os.fstat(fd).st_ino)
        return fd

    def open_writer(self, path: str) -> BinaryIO:
        existed = os.path.exists(path)
        f = super().open_writer(path)
        if not existed:
            self._forget(os.fstat(f.fileno()).st_ino)
        return f

    def _forget(self, ino: int) -> None:
        with self._lock:
            self._durable_data[ino] = b""

    # -- durability points --------------------------------------------------
    def fsync(self, fd: int) -> None:
        if self.fsync_delay_s:
            time.sleep(self.fsync_delay_s)
        st = os.fstat(fd)
        data = os.pread(fd, st.st_size, 0)
        with self._lock:
            if not self._frozen:
                self._durable_data[st.st_ino] = data
                self.fsyncs += 1

    def fsync_path(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            self.fsync(fd)
        finally:
            os.close(fd)

    def fsync_dir(self, path: str) -> None:
        directory = os.path.abspath(path)
        names = {name: os.stat(p).st_ino for name, p in _files(directory)}
        with self._lock:
            if not self._frozen:
                self._durable_names[directory] = names

    # -- the fault ----------------------------------------------------------
    def freeze(self) -> None:
        """The power goes out NOW: fsyncs from here on are not durable. Stop
        the nodes (``stop(flush=False)``), then call ``power_cut()``."""
        with self._lock:
            self._frozen = True

    def power_cut(self) -> dict[str, list[str]]:
        """Reset every tracked directory to its durable state (freezing first
        if ``freeze`` was not called), and power on again. Returns, per
        directory, the names whose content or existence changed."""
        self.freeze()
        changed: dict[str, list[str]] = {}
        with self._lock:
            dirs = list(self._durable_names.items())
        for directory, durable in dirs:
            changed[directory] = self._restore_dir(directory, durable)
        with self._lock:
            self._frozen = False
        for directory, _ in dirs:
            self.track(directory)
        return changed

    def _restore_dir(self, directory: str, durable: dict[str, int]) -> list[str]:
        with self._lock:
            wanted = {n: self._durable_data.get(ino, b"") for n, ino in durable.items()}
        current: dict[str, bytes] = {}
        for name, path in _files(directory):
            with open(path, "rb") as f:
                current[name] = f.read()
            os.unlink(path)
        for name, content in wanted.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(content)
        names = set(current) | set(wanted)
        return sorted(n for n in names if current.get(n) != wanted.get(n))


def _files(directory: str) -> list[tuple[str, str]]:
    out = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and not os.path.islink(path):
            out.append((name, path))
    return out
