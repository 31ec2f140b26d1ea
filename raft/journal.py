"""The durable Raft journal: pysyncobj's ``Journal`` interface, on an
append-only file that is fsynced with group commit, plus fsynced term/vote.

pysyncobj calls ``add``/``deleteEntriesFrom``/... on its tick thread; so does
``RaftNode``'s ``flush`` (the group commit). Nothing here is thread-safe and
nothing needs to be: the tick thread is the only caller.

Files in the data directory:

* ``raft.log``    header ``RNLRAFT\\x01`` + u32 format, then records
                  ``<u32 len, u32 crc32, u64 index, u64 term> command``.
* ``raft.meta``   msgpack ``[1, term, voted_for]`` + crc32; written with temp file,
                  fsync, rename, fsync of the directory, ALWAYS (even sync=False):
                  it changes only at elections.
* ``raft.commit`` msgpack ``[1, commit_index]`` + crc32; a hint written once a
                  second without fsync. Lost or torn, it only slows a restart.
"""

from __future__ import annotations

import logging
import os
import time
import struct
import zlib

import msgpack
from pysyncobj.journal import Journal

from raft.errors import JournalCorrupt
from raft.fsio import OsFS

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
HEADER = b"RNLRAFT\x01" + struct.pack("<I", FORMAT_VERSION)
_REC = struct.Struct("<IIQQ")
_IDX_TERM = struct.Struct("<QQ")
#: pysyncobj's NO_OP entry (``_COMMAND_TYPE.NO_OP``): a new leader's first entry.
NO_OP = b"\x01"

Entry = tuple  # (command: bytes, index: int, term: int)


def encode_record(command: bytes, idx: int, term: int) -> bytes:
    crc = zlib.crc32(command, zlib.crc32(_IDX_TERM.pack(idx, term)))
    return _REC.pack(len(command), crc, idx, term) + command


def decode_records(data: bytes, start: int) -> tuple[list[Entry], list[int], int]:
    """Parse records from ``start``; stop at the first torn or bad one.
    Returns (entries, offsets, end of the last good record)."""
    entries: list[Entry] = []
    offsets: list[int] = []
    pos = start
    size = len(data)
    while pos + _REC.size <= size:
        length, crc, idx, term = _REC.unpack_from(data, pos)
        end = pos + _REC.size + length
        if end > size:
            break
        command = data[pos + _REC.size:end]
        if zlib.crc32(command, zlib.crc32(_IDX_TERM.pack(idx, term))) != crc:
            break
        if entries and idx != entries[-1][1] + 1:
            raise JournalCorrupt(f"journal index jumps from {entries[-1][1]} to {idx} at byte {pos}")
        entries.append((command, idx, term))
        offsets.append(pos)
        pos = end
    return entries, offsets, pos


def _pack_checked(obj: object) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return body + struct.pack("<I", zlib.crc32(body))


def _unpack_checked(data: bytes) -> object:
    if len(data) < 5 or struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise ValueError("bad checksum")
    return msgpack.unpackb(data[:-4], raw=False)


class MetaStore:
    """Term and vote (durable, synchronous) and the commit-index hint."""

    def __init__(self, fs: OsFS, directory: str) -> None:
        self._fs = fs
        self.meta_path = os.path.join(directory, "raft.meta")
        self.hint_path = os.path.join(directory, "raft.commit")

    def load_term(self) -> tuple[int, str | None]:
        data = self._fs.read(self.meta_path)
        if data is None:
            return 0, None
        try:
            version, term, voted_for = _unpack_checked(data)
        except Exception as exc:
            raise JournalCorrupt(f"{self.meta_path} is damaged ({exc}); refusing to vote or lead") from exc
        if version != 1:
            raise JournalCorrupt(f"{self.meta_path}: unknown format {version}")
        return term, voted_for

    def store_term(self, term: int, voted_for: str | None) -> None:
        self._fs.write_atomic(self.meta_path, _pack_checked([1, term, voted_for]), durable=True)

    def load_commit_hint(self) -> int:
        data = self._fs.read(self.hint_path)
        if not data:
            return 1
        try:
            version, index = _unpack_checked(data)
            return int(index) if version == 1 else 1
        except Exception:
            logger.warning("ignoring a damaged commit hint %s", self.hint_path)
            return 1

    def store_commit_hint(self, index: int) -> None:
        self._fs.write_atomic(self.hint_path, _pack_checked([1, index]), durable=False)


class DurableJournal(Journal):
    """pysyncobj ``Journal`` with group commit: ``add`` only buffers; ``flush``
    writes everything buffered with one ``write`` and one ``fdatasync``.

    ``synced_index`` is the last index that is on disk (fsynced when ``sync``).
    RaftNode flushes before every pysyncobj tick and before releasing an
    append-entries acknowledgement, so the leader never counts, and a follower
    never acknowledges, an entry above ``synced_index``.
    """

    def __init__(self, directory: str, fs: OsFS | None = None, sync: bool = True) -> None:
        self._fs = fs or OsFS()
        self._sync = sync
        self._dir = directory
        self.path = os.path.join(directory, "raft.log")
        self._meta = MetaStore(self._fs, directory)
        self._entries: list[Entry] = []
        self._offsets: list[int] = []
        self._pending = bytearray()
        self._file_size = 0
        self._unsynced = False
        self._rewrite_needed = False
        self._fd: int | None = None
        self.synced_index = 0
        self.fsyncs = 0
        self.fsync_seconds = 0.0  # total time spent in fsync (monitoring: mean latency)
        #: Entries removed from the tail (conflicts, or pysyncobj re-sends).
        self.truncated_entries = 0
        self._term, self._voted_for = self._meta.load_term()
        self._commit_index = self._meta.load_commit_hint()
        self._hint_written = self._commit_index
        self._open()

    # -- loading -----------------------------------------------------------
    def _open(self) -> None:
        data = self._fs.read(self.path)
        if data is None or (len(data) <= len(HEADER) and HEADER.startswith(data)):
            self._create()
            return
        if not data.startswith(HEADER):
            raise JournalCorrupt(f"{self.path} is not a Runnel raft journal (bad header)")
        self._entries, self._offsets, end = decode_records(data, len(HEADER))
        self._fd = self._fs.open_append(self.path)
        self._file_size = end
        if end < len(data):
            logger.warning("journal %s: dropping a torn tail of %d bytes after index %s",
                           self.path, len(data) - end, self.last_index)
            self._fs.truncate(self._fd, end)
            self._unsynced = True
            self.flush()
        self.synced_index = self.last_index
        self._check_commit_hint()

    def _create(self) -> None:
        fd = self._fs.open_trunc(self.path)
        self._fs.write(fd, HEADER)
        if self._sync:
            self._fs.fsync(fd)
            self._fs.fsync_dir(self._dir)
        self._fs.close(fd)
        self._fd = self._fs.open_append(self.path)
        self._file_size = len(HEADER)
        self._check_commit_hint()

    def _check_commit_hint(self) -> None:
        if self._commit_index <= max(self.last_index, 1):
            return
        message = (f"journal {self.path} ends at index {self.last_index} but index "
                   f"{self._commit_index} was committed here before")
        if self._sync:
            raise JournalCorrupt(message + ": acknowledged entries are missing")
        logger.error("%s (sync is off: entries lost at a power cut)", message)
        self._commit_index = max(self.last_index, 1)

    @property
    def last_index(self) -> int:
        try:
            return self._entries[-1][1]
        except IndexError:  # empty (status() may read from another thread)
            return 0

    @property
    def first_index(self) -> int:
        try:
            return self._entries[0][1]
        except IndexError:
            return 0

    @property
    def dirty(self) -> bool:
        return bool(self._pending) or self._unsynced or self._rewrite_needed

    # -- group commit ------------------------------------------------------
    def flush(self) -> bool:
        """Write and (if sync) fsync everything buffered. True if it did work."""
        if self._fd is None:
            return False
        if self._rewrite_needed:
            self._rewrite()
            return True
        if not self._pending and not self._unsynced:
            return False
        if self._pending:
            self._fs.write(self._fd, self._pending)
            self._file_size += len(self._pending)
            self._pending = bytearray()
        if self._sync:
            started = time.perf_counter()
            self._fs.fsync(self._fd)
            self.fsync_seconds += time.perf_counter() - started
            self.fsyncs += 1
        self._unsynced = False
        self.synced_index = self.last_index
        return True

    def _rewrite(self) -> None:
        """Replace the file by one holding exactly ``_entries`` (atomic)."""
        tmp = self.path + ".new"
        buf = bytearray(HEADER)
        offsets = []
        for command, idx, term in self._entries:
            offsets.append(len(buf))
            buf += encode_record(command, idx, term)
        fd = self._fs.open_trunc(tmp)
        try:
            self._fs.write(fd, buf)
            if self._sync:
                self._fs.fsync(fd)
        finally:
            self._fs.close(fd)
        self._fs.close(self._fd)
        self._fs.replace(tmp, self.path)
        if self._sync:
            self._fs.fsync_dir(self._dir)
            self.fsyncs += 1
        self._fd = self._fs.open_append(self.path)
        self._offsets, self._file_size = offsets, len(buf)
        self._pending = bytearray()
        self._unsynced = self._rewrite_needed = False
        self.synced_index = self.last_index

    # -- pysyncobj's Journal interface --------------------------------------
    def add(self, command, idx, term):
        if self._entries and idx != self._entries[-1][1] + 1:
            raise JournalCorrupt(f"append of index {idx} after {self._entries[-1][1]}")
        command = bytes(command)
        self._entries.append((command, idx, term))
        if not self._rewrite_needed:
            self._offsets.append(self._file_size + len(self._pending))
            self._pending += encode_record(command, idx, term)
        if command == NO_OP:
            # A new leader counts its own NO_OP in the same tick it adds it:
            # make it durable now (once per election).
            self.flush()

    def clear(self):
        self._entries = []
        self._offsets = []
        self._pending = bytearray()
        self._rewrite_needed = True
        self.synced_index = 0

    def deleteEntriesFrom(self, entryFrom):
        if entryFrom >= len(self._entries):
            return
        self.truncated_entries += len(self._entries) - entryFrom
        del self._entries[entryFrom:]
        if not self._rewrite_needed:
            cut = self._offsets[entryFrom]
            del self._offsets[entryFrom:]
            if cut >= self._file_size:
                del self._pending[cut - self._file_size:]
            else:
                self._pending = bytearray()
                self._fs.truncate(self._fd, cut)
                self._file_size = cut
                self._unsynced = True
        self.synced_index = min(self.synced_index, self.last_index)

    def deleteEntriesTo(self, entryTo):
        # Log compaction after a snapshot that is already durable.
        del self._entries[:entryTo]
        self._rewrite()

    def trim_before(self, index: int) -> None:
        """Drop entries below ``index`` (used when a snapshot is loaded)."""
        pos = index - self.first_index
        if self._entries and 0 < pos < len(self._entries):
            self.deleteEntriesTo(pos)

    def entry(self, index: int) -> Entry | None:
        pos = index - self.first_index
        if self._entries and 0 <= pos < len(self._entries):
            return self._entries[pos]
        return None

    def __getitem__(self, item):
        return self._entries[item]

    def __len__(self):
        return len(self._entries)

    def _destroy(self):
        self.close(flush=True)

    def close(self, flush: bool) -> None:
        """Close the file; ``flush=False`` drops what is buffered (a crash)."""
        if self._fd is None:
            return
        if flush:
            self.flush()
            self._store_hint()
        self._fs.close(self._fd)
        self._fd = None

    def setRaftCommitIndex(self, raftCommitIndex):
        self._commit_index = raftCommitIndex

    def getRaftCommitIndex(self):
        return max(1, min(self._commit_index, self.last_index))

    def setCurrentTerm(self, term, votedForNodeId):
        # Durable BEFORE pysyncobj sends the vote request or vote that depends on it.
        self._meta.store_term(term, votedForNodeId)
        self._term, self._voted_for = term, votedForNodeId

    def getCurrentTerm(self):
        return self._term

    def getVotedForNodeId(self):
        return self._voted_for

    def onOneSecondTimer(self):
        self._store_hint()

    def _store_hint(self) -> None:
        index = min(self._commit_index, self.synced_index)
        if index > self._hint_written:
            self._meta.store_commit_hint(index)
            self._hint_written = index
