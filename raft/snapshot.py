"""Snapshots through pysyncobj's ``serializer`` / ``serializeChecker`` /
``deserializer`` hooks, written in a background thread so heartbeats go on.

File ``raft.snapshot`` (pysyncobj's ``fullDumpFile``; it streams this file to
followers that are too far behind):

    payload bytes (what the user's take_snapshot produced)
    header: msgpack {index, term, last, prev, cluster, payload_bytes, payload_crc}
    u32 header length, u32 crc32(header), magic b"RNLSNAP\\x01"

Lifecycle (tick thread unless noted):

1. pysyncobj decides to compact and calls ``serialize(tmp, (last, prev, cluster))``.
   We call ``take_snapshot(index)`` (quick: it returns bytes, a finished file's
   path, or a writer callable) and start a thread that writes
   ``raft.snapshot.part`` and fsyncs it. pysyncobj then tries to rename its
   ``tmp`` file, which we never create; the error is swallowed by pysyncobj and
   only leaves its serializer busy until our checker answers.
2. ``check()`` (each tick): SERIALIZING while the thread runs; then, on the tick
   thread, rename ``.part`` over ``raft.snapshot``, fsync the directory, answer
   SUCCESS once; pysyncobj then compacts the journal (the snapshot is already
   durable, so the order snapshot-then-compaction holds on disk).
3. ``deserialize(path)``: at start-up, and when a leader installed a snapshot.
   fsync the file (pysyncobj wrote a received one without fsync), check it,
   trim the journal so it starts at the snapshot's ``prev`` entry, and call the
   user's ``restore_snapshot(reader)``.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import threading
import time
import zlib
from typing import BinaryIO, Callable

import msgpack
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.node import TCPNode

from raft.errors import JournalCorrupt
from raft.fsio import OsFS

logger = logging.getLogger(__name__)

MAGIC = b"RNLSNAP\x01"
_TRAILER = struct.Struct("<II8s")
_CHUNK = 1 << 20
#: After a failed snapshot, wait this long before calling take_snapshot again.
RETRY_S = 10.0


class SnapshotReader:
    """What ``restore_snapshot`` receives: the payload of one snapshot file."""

    def __init__(self, path: str, header: dict) -> None:
        self.path = path
        self.index: int = header["index"]
        self.term: int = header["term"]
        self.size_bytes: int = header["payload_bytes"]
        self._crc: int = header["payload_crc"]

    def _chunks(self):
        remaining = self.size_bytes
        with open(self.path, "rb") as f:
            while remaining:
                chunk = f.read(min(_CHUNK, remaining))
                if not chunk:
                    raise JournalCorrupt(f"snapshot {self.path} is shorter than its header says")
                remaining -= len(chunk)
                yield chunk

    def read_bytes(self) -> bytes:
        """The whole payload, checked against its crc32."""
        data = b"".join(self._chunks())
        if zlib.crc32(data) != self._crc:
            raise JournalCorrupt(f"snapshot {self.path}: payload checksum mismatch")
        return data

    def extract_to(self, path: str) -> str:
        """Copy the payload to ``path`` (checked against its crc32); return path."""
        crc = 0
        with open(path, "wb") as out:
            for chunk in self._chunks():
                crc = zlib.crc32(chunk, crc)
                out.write(chunk)
        if crc != self._crc:
            os.unlink(path)
            raise JournalCorrupt(f"snapshot {self.path}: payload checksum mismatch")
        return path


def read_header(path: str) -> dict:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size < _TRAILER.size:
            raise JournalCorrupt(f"snapshot {path} is truncated")
        f.seek(size - _TRAILER.size)
        hlen, hcrc, magic = _TRAILER.unpack(f.read(_TRAILER.size))
        if magic != MAGIC or hlen > size - _TRAILER.size:
            raise JournalCorrupt(f"{path} is not a Runnel snapshot")
        f.seek(size - _TRAILER.size - hlen)
        body = f.read(hlen)
    if zlib.crc32(body) != hcrc:
        raise JournalCorrupt(f"snapshot {path}: header checksum mismatch")
    header = msgpack.unpackb(body, raw=False)
    if header["payload_bytes"] + hlen + _TRAILER.size != size:
        raise JournalCorrupt(f"snapshot {path}: size does not match its header")
    return header


class _Job:
    def __init__(self, index: int, header: dict, produced: object) -> None:
        self.index = index
        self.header = header
        self.produced = produced
        self.error: BaseException | None = None
        self.cancelled = False
        self.thread: threading.Thread | None = None


TakeSnapshot = Callable[[int], object]
RestoreSnapshot = Callable[[SnapshotReader], None]


class SnapshotStore:
    """The three pysyncobj hooks plus the start-up/installation glue."""

    def __init__(self, directory: str, fs: OsFS, journal, take: TakeSnapshot | None,
                 restore: RestoreSnapshot | None, on_fatal: Callable[[BaseException], None]) -> None:
        self.path = os.path.join(directory, "raft.snapshot")
        self._dir = directory
        self._fs = fs
        self._journal = journal
        self._take = take
        self._restore = restore
        self._on_fatal = on_fatal
        self._job: _Job | None = None
        self._retry_at = 0.0
        self.started_up = False
        self.last_index = 0
        self.taken = 0
        self.restored = 0
        for leftover in (".part", ".tmp", ".1.tmp"):
            fs.remove(self.path + leftover)

    # -- pysyncobj hooks ------------------------------------------------------
    def serialize(self, tmp_file: str, data) -> None:
        last, prev, cluster = data
        if self._take is None:
            return
        index = last[1]
        header = {"index": index, "term": last[2], "last": list(last), "prev": list(prev),
                  "cluster": sorted(n.address for n in cluster if n is not None)}
        job = _Job(index, header, None)
        self._job = job
        if time.monotonic() < self._retry_at:
            job.error = RuntimeError("previous snapshot failed; waiting before a retry")
            return
        try:
            job.produced = self._take(index)
        except Exception as exc:  # reported by check(); not fatal, retried later
            job.error = exc
            return
        job.thread = threading.Thread(target=self._write, args=(job,), name="raft-snapshot", daemon=True)
        job.thread.start()

    def check(self) -> int:
        job = self._job
        if job is None:
            return SERIALIZER_STATE.NOT_SERIALIZING
        if job.thread is not None and job.thread.is_alive():
            return SERIALIZER_STATE.SERIALIZING
        self._job = None
        if job.cancelled or job.error is not None:
            self._fs.remove(self.path + ".part")
            if job.error is not None and time.monotonic() >= self._retry_at:
                logger.error("snapshot at index %d failed: %r", job.index, job.error)
                self._retry_at = time.monotonic() + RETRY_S
            return SERIALIZER_STATE.FAILED
        self._fs.replace(self.path + ".part", self.path)
        self._fs.fsync_dir(self._dir)
        self.last_index = job.index
        self.taken += 1
        return SERIALIZER_STATE.SUCCESS

    def deserialize(self, path: str):
        try:
            return self._load(path)
        except BaseException as exc:
            # pysyncobj swallows exceptions here and would run on without the
            # state: make it fatal instead.
            self._on_fatal(exc)
            raise

    # -- internals ------------------------------------------------------------
    def _write(self, job: _Job) -> None:
        """Background thread: payload, trailer, fsync. No rename here."""
        try:
            with self._fs.open_writer(self.path + ".part") as f:
                self._write_payload(f, job.produced)
                f.flush()
                size = os.fstat(f.fileno()).st_size
                job.header["payload_bytes"] = size
                job.header["payload_crc"] = _crc_of(f, size)
                body = msgpack.packb(job.header, use_bin_type=True)
                f.seek(size)
                f.write(body + _TRAILER.pack(len(body), zlib.crc32(body), MAGIC))
                self._fs.fsync_file(f)
        except BaseException as exc:  # reported by check() on the tick thread
            job.error = exc

    @staticmethod
    def _write_payload(f: BinaryIO, produced: object) -> None:
        if isinstance(produced, (bytes, bytearray, memoryview)):
            f.write(produced)
        elif isinstance(produced, (str, os.PathLike)):
            with open(produced, "rb") as src:
                shutil.copyfileobj(src, f, _CHUNK)
        elif callable(produced):
            produced(f)
        else:
            raise TypeError(f"take_snapshot returned {type(produced).__name__}; "
                            "expected bytes, a path or a callable(file)")

    def _load(self, path: str):
        if self._job is not None:
            self._job.cancelled = True
        self._fs.fsync_path(path)
        self._fs.fsync_dir(self._dir)
        header = read_header(path)
        last, prev = tuple(header["last"]), tuple(header["prev"])
        if not self.started_up:
            self._align_journal(prev)
        reader = SnapshotReader(path, header)
        if self._restore is not None:
            self._restore(reader)
        self.last_index = max(self.last_index, reader.index)
        self.restored += 1
        cluster = {TCPNode(address) for address in header["cluster"]}
        return last, prev, cluster

    def _align_journal(self, prev: tuple) -> None:
        """At start-up: make the journal start at the snapshot's ``prev`` entry,
        so pysyncobj keeps the entries that follow it (it would otherwise clear
        the journal, e.g. after a crash between snapshot and compaction)."""
        journal = self._journal
        if len(journal) == 0 or journal.last_index < prev[1]:
            return
        if journal.first_index > prev[1]:
            raise JournalCorrupt(f"journal starts at {journal.first_index}, after the snapshot's "
                                 f"index {prev[1] + 1}: entries in between are missing")
        journal.trim_before(prev[1])


def _crc_of(f: BinaryIO, size: int) -> int:
    f.seek(0)
    crc = 0
    remaining = size
    while remaining:
        chunk = f.read(min(_CHUNK, remaining))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        remaining -= len(chunk)
    return crc
