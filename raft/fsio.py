"""The file operations raft/ uses, behind one small class so a test can replace
it (see faultfs.PowerCutFS, which forgets every unsynced byte at a power cut).

Every durable write in raft/ goes through an ``OsFS``: the journal, the meta
file (term and vote), the commit hint and the snapshot file. ``fsync`` here is
``fdatasync`` (it also makes a changed file size durable, which is all an
append-only log needs).
"""

from __future__ import annotations

import os
from typing import BinaryIO


class OsFS:
    """Plain POSIX files. Stateless; one instance may serve many nodes."""

    # -- whole files -------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        """The whole file, or None if it does not exist."""
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def remove(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def write_atomic(self, path: str, data: bytes, durable: bool) -> None:
        """Write ``path`` as a whole: temp file, fsync it, rename, fsync the
        directory (the two fsyncs only when ``durable``)."""
        tmp = path + ".tmp"
        fd = self.open_trunc(tmp)
        try:
            self.write(fd, data)
            if durable:
                self.fsync(fd)
        finally:
            self.close(fd)
        self.replace(tmp, path)
        if durable:
            self.fsync_dir(os.path.dirname(path) or ".")

    # -- descriptors -------------------------------------------------------
    def open_append(self, path: str) -> int:
        """Open (create) for appending; reads are allowed too."""
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)

    def open_trunc(self, path: str) -> int:
        """Create or empty ``path`` for writing."""
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def fsync(self, fd: int) -> None:
        os.fdatasync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_path(self, path: str) -> None:
        """fsync a file written by someone else (pysyncobj's snapshot receive)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- streams (snapshot payloads) ---------------------------------------
    def open_writer(self, path: str) -> BinaryIO:
        """A new binary file for a snapshot writer; ``fsync_file`` makes it durable."""
        return open(path, "w+b")

    def fsync_file(self, f: BinaryIO) -> None:
        f.flush()
        self.fsync(f.fileno())
