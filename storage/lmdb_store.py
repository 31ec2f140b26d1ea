"""LmdbStore: the Store contract on LMDB files (see DESIGN.md)."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
from typing import Any, Callable, Sequence

import lmdb

from . import _lmdb_tables as T
from ._common import (CLOSED, Gate, ThreadGuard, as_record, check_append,
                      check_count, check_limit, check_u64, encode_name)
from .api import (Channel, ChannelStats, PathOrFile, ReadTxn, Removed,
                  SnapshotInfo, Store, StoreClosedError, StoreCorruptError,
                  StoreError, StoreFatalError, StoreFullError,
                  StoreLockedError, StoreUsage, StoreUsageError, WriteTxn)

MAP_SIZE_INITIAL = 16 << 20
MAP_SIZE_MAX = 256 << 30
#: After EIO (LMDB reports a short write so), the disk counts as full when
#: it has less free space than this.
DISK_FREE_FULL_BYTES = 4 << 20
_DATA_FILE = "data.mdb"
_LOCK_FILE = "runnel-store.lock"
_CORRUPT = (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError,
            lmdb.VersionMismatchError, lmdb.PanicError)


def _disk_free_bytes(path: str) -> int:
    st = os.statvfs(path)
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


def translate(exc: BaseException, path: str) -> StoreError:
    """Map an engine or OS error to the storage error it means."""
    if isinstance(exc, StoreError):
        return exc
    code = getattr(exc, "errno", None) or getattr(exc, "code", None) or 0
    if isinstance(exc, lmdb.MapFullError):
        return StoreFullError(f"store map is full at map_size_max: {exc}", "map")
    if isinstance(exc, lmdb.DiskError) or code in (errno.ENOSPC, errno.EDQUOT):
        return StoreFullError(f"disk is full: {exc}", "disk")
    if code == errno.EIO and _disk_free_bytes(path) < DISK_FREE_FULL_BYTES:
        return StoreFullError(f"disk is full (short write): {exc}", "disk")
    if isinstance(exc, _CORRUPT):
        return StoreCorruptError(f"store {path} is damaged: {exc}")
    return StoreFatalError(f"store {path}: {exc!r}")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LmdbReads(ReadTxn):
    """ReadTxn over ``self._txn`` (an lmdb.Transaction) and ``self._dbs``."""

    _txn: Any = CLOSED
    _dbs: Any = None

    def get_last_applied_index(self) -> int:
        return T.last_applied(self._txn, self._dbs)

    def get_meta(self, key: str) -> bytes | None:
        return self._txn.get(encode_name(key, "meta key"), db=self._dbs.meta)

    def get_channel(self, name: str) -> Channel | None:
        return T.channel_by_name(self._txn, self._dbs,
                                 encode_name(name, "channel name"))

    def get_channel_by_id(self, channel_id: int) -> Channel | None:
        return T.channel_by_id(self._txn, self._dbs, channel_id)

    def list_channels(self) -> list[Channel]:
        return T.list_channels(self._txn, self._dbs)

    def channel_stats(self, channel_id: int) -> ChannelStats | None:
        return T.stats(self._txn, self._dbs, channel_id)

    def get_message(self, channel_id: int, seq: int) -> bytes | None:
        return T.get_pair(self._txn, self._dbs.msgs, channel_id, seq)

    def read_messages(self, channel_id: int, start_seq: int, count_max: int,
                      bytes_max: int | None = None) -> list[tuple[int, bytes]]:
        check_count(count_max)
        return T.read_messages(self._txn, self._dbs, channel_id, start_seq,
                               count_max, check_limit(bytes_max, "bytes_max"))

    def get_subscription(self, channel_id: int, sub_id: int) -> bytes | None:
        return T.get_pair(self._txn, self._dbs.subs, channel_id, sub_id)

    def list_subscriptions(self, channel_id: int) -> list[tuple[int, bytes]]:
        return T.list_pairs(self._txn, self._dbs.subs, channel_id)

    def get_client(self, client_id: str) -> bytes | None:
        return self._txn.get(encode_name(client_id, "client id"),
                             db=self._dbs.clients)

    def list_clients(self) -> list[tuple[str, bytes]]:
        return T.list_clients(self._txn, self._dbs)


class _LmdbRead(_LmdbReads):
    def __init__(self, store: "LmdbStore") -> None:
        self._store = store

    def __enter__(self) -> "_LmdbRead":
        store = self._store
        store._guard.enter("read")
        try:
            store._gate.enter_shared()
            try:
                env = store._require_env()
                self._dbs = store._dbs
                self._txn = env.begin()
            except BaseException:
                store._gate.exit_shared()
                raise
        except BaseException:
            store._guard.exit()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        txn, self._txn = self._txn, CLOSED
        try:
            txn.abort()
        finally:
            self._store._gate.exit_shared()
            self._store._guard.exit()


class _LmdbWrite(_LmdbReads, WriteTxn):
    """The write transaction. Every mutation is recorded as (function, args)
    so that after MDB_MAP_FULL the transaction can be abandoned, the map
    grown, and the recorded mutations replayed into a fresh transaction:
    the caller never sees growth, and nothing is half-applied."""

    def __init__(self, store: "LmdbStore") -> None:
        self._store = store
        self._ops: list[tuple[Callable[..., Any], tuple]] = []
        self._failed: StoreError | None = None
        self._bumped = False

    def __enter__(self) -> "_LmdbWrite":
        store = self._store
        store._guard.enter("write")
        try:
            store._write_lock.acquire()
            try:
                store._require_env()
                store._grow_early()
                self._dbs = store._dbs
                self._txn = store._begin_write()
            except BaseException:
                store._write_lock.release()
                raise
        except BaseException:
            store._guard.exit()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None and self._failed is None:
                self._commit()
            elif self._txn is not CLOSED:
                self._txn.abort()
        finally:
            self._txn = CLOSED
            self._store._write_lock.release()
            self._store._guard.exit()
        if exc_type is None and self._failed is not None:
            raise self._failed

    # -- machinery ---------------------------------------------------------
    def _mutate(self, fn: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                result = fn(self._txn, self._dbs, *args)
            except lmdb.MapFullError as exc:
                self._restart(exc)
                continue
            except lmdb.Error as exc:
                raise self._abandon(exc) from exc
            self._ops.append((fn, args))
            return result

    def _restart(self, exc: lmdb.Error) -> None:
        """After MAP_FULL (or a full disk at commit): drop the engine txn,
        make room, and replay the recorded ops into a fresh txn; or abandon
        the transaction with StoreFullError when no room can be made."""
        while True:
            if self._txn is not CLOSED:
                self._txn.abort()
                self._txn = CLOSED
            try:
                self._make_room(exc)
                self._txn = self._store._begin_write()
                for fn, args in self._ops:
                    fn(self._txn, self._dbs, *args)
                return
            except lmdb.MapFullError as again:
                exc = again
            except StoreError as err:
                self._abandon(err)
                raise
            except lmdb.Error as err:
                raise self._abandon(err) from err

    def _make_room(self, exc: lmdb.Error) -> None:
        store = self._store
        if isinstance(exc, lmdb.MapFullError) and store._can_grow():
            store._grow()
        elif not self._bumped:
            # Pages freed by the last commit are reusable only after one
            # more commit: a tiny commit recycles them, then retry once.
            self._bumped = True
            store._bump()
        else:
            raise translate(exc, store.path) from exc

    def _abandon(self, exc: BaseException) -> StoreError:
        if self._txn is not CLOSED:
            try:
                self._txn.abort()
            except lmdb.Error:
                pass
            self._txn = CLOSED
        self._failed = translate(exc, self._store.path)
        return self._failed

    def _commit(self) -> None:
        while True:
            txn, self._txn = self._txn, CLOSED  # a failed commit aborts it
            try:
                txn.commit()
                return
            except lmdb.Error as exc:
                if isinstance(translate(exc, self._store.path), StoreFullError):
                    self._restart(exc)
                else:
                    raise self._abandon(exc) from exc

    # -- WriteTxn ----------------------------------------------------------
    def set_last_applied_index(self, index: int) -> None:
        self._mutate(T.set_last_applied, check_u64(index, "index"))

    def put_meta(self, key: str, value: bytes) -> None:
        self._mutate(T.put_key, self._dbs.meta, encode_name(key, "meta key"),
                     as_record(value))

    def delete_meta(self, key: str) -> bool:
        return self._mutate(T.delete_key, self._dbs.meta,
                            encode_name(key, "meta key"))

    def create_channel(self, name: str, record: bytes) -> int:
        return self._mutate(T.create_channel, encode_name(name, "channel name"),
                            as_record(record))

    def put_channel(self, channel_id: int, record: bytes) -> None:
        self._mutate(T.put_channel, channel_id, as_record(record))

    def delete_channel(self, channel_id: int) -> Removed:
        return self._mutate(T.delete_channel, channel_id)

    def append_messages(self, channel_id: int,
                        messages: Sequence[tuple[int, bytes]]) -> None:
        # Validated and copied into a list of our own: the recorded ops are
        # replayed after map growth and must not see later caller changes.
        self._mutate(T.append_messages, channel_id, check_append(messages, 0))

    def delete_messages_upto(self, channel_id: int, seq: int) -> Removed:
        return self._mutate(T.delete_messages_upto, channel_id,
                            check_u64(seq, "seq"))

    def trim_messages(self, channel_id: int, *, msgs_max: int | None = None,
                      bytes_max: int | None = None) -> Removed:
        return self._mutate(T.trim_messages, channel_id,
                            check_limit(msgs_max, "msgs_max"),
                            check_limit(bytes_max, "bytes_max"))

    def put_subscription(self, channel_id: int, sub_id: int,
                         record: bytes) -> None:
        self._mutate(T.put_subscription, channel_id,
                     check_u64(sub_id, "sub_id"), as_record(record))

    def delete_subscription(self, channel_id: int, sub_id: int) -> bool:
        if T.get_pair(self._txn, self._dbs.subs, channel_id, sub_id) is None:
            return False
        return self._mutate(T.delete_key, self._dbs.subs,
                            T.u64(channel_id) + T.u64(sub_id))

    def put_client(self, client_id: str, record: bytes) -> None:
        self._mutate(T.put_key, self._dbs.clients,
                     encode_name(client_id, "client id"), as_record(record))

    def delete_client(self, client_id: str) -> bool:
        return self._mutate(T.delete_key, self._dbs.clients,
                            encode_name(client_id, "client id"))


class LmdbStore(Store):
    """The Store contract on an LMDB environment in directory ``path``.

    ``sync=True``: a commit is on disk when ``write()`` returns (LMDB
    fdatasyncs the data pages, then writes the meta page with O_DSYNC).
    ``sync=False``: commits reach the OS page cache only; they survive a
    process crash but not a power cut (call :meth:`flush` to force).
    The map starts at ``map_size_initial`` and doubles on demand up to
    ``map_size_max``; beyond that writes raise StoreFullError("map").
    """

    def __init__(self, path: str | os.PathLike, *, sync: bool = True,
                 map_size_initial: int = MAP_SIZE_INITIAL,
                 map_size_max: int = MAP_SIZE_MAX) -> None:
        if not 0 < map_size_initial <= map_size_max:
            raise StoreUsageError("need 0 < map_size_initial <= map_size_max")
        self.path = os.fspath(path)
        self.sync = sync
        self._map_size_initial = map_size_initial
        self._map_size_max = map_size_max
        self._gate = Gate()
        self._guard = ThreadGuard()
        self._write_lock = threading.Lock()
        self._snapshots = 0
        self._env: lmdb.Environment | None = None
        self._dbs: T.Dbs | None = None
        os.makedirs(self.path, exist_ok=True)
        self._lock_fd = self._lock_dir()
        try:
            self._open_env()
        except BaseException:
            os.close(self._lock_fd)
            raise

    # -- opening -----------------------------------------------------------
    def _lock_dir(self) -> int:
        fd = os.open(os.path.join(self.path, _LOCK_FILE), os.O_RDWR | os.O_CREAT,
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(f"store {self.path} is already open "
                                   f"(another process, or this one)") from None
        return fd

    def _initial_map_size(self) -> int:
        try:
            used = os.path.getsize(os.path.join(self.path, _DATA_FILE))
        except FileNotFoundError:
            used = 0
        size = self._map_size_initial
        while size < 2 * used and size < self._map_size_max:
            size *= 2
        return max(min(size, self._map_size_max), used)

    def _open_env(self) -> None:
        try:
            env = lmdb.open(self.path, map_size=self._initial_map_size(),
                            max_dbs=len(T.DB_NAMES), sync=self.sync,
                            metasync=self.sync, readahead=False)
        except lmdb.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            with env.begin(write=True) as txn:
                dbs = T.Dbs(env, txn)
                T.init_or_check(txn, dbs)
        except BaseException as exc:
            env.close()
            if isinstance(exc, lmdb.Error):
                raise translate(exc, self.path) from exc
            raise
        self._env, self._dbs = env, dbs
        self._psize = env.stat()["psize"]

    def _require_env(self) -> lmdb.Environment:
        if self._env is None:
            raise StoreClosedError(f"store {self.path} is closed")
        return self._env

    # -- growth ------------------------------------------------------------
    def _begin_write(self) -> Any:
        try:
            return self._env.begin(write=True)
        except lmdb.Error as exc:
            raise translate(exc, self.path) from exc

    def _used_bytes(self) -> int:
        return (self._env.info()["last_pgno"] + 1) * self._psize

    def _grow_early(self) -> None:
        """Double the map before a write when it is 3/4 used, so that growth
        rarely waits for a running snapshot (writer thread, no txn open)."""
        map_size = self._env.info()["map_size"]
        if (self._snapshots == 0 and map_size < self._map_size_max
                and self._used_bytes() * 4 > map_size * 3):
            self._grow()

    def _can_grow(self) -> bool:
        return self._env.info()["map_size"] < self._map_size_max

    def _grow(self) -> None:
        """Double the map (capped at map_size_max). Called by the writer with
        no write txn open; waits until no reader is inside the map."""
        map_size = self._env.info()["map_size"]
        self._gate.enter_exclusive()
        try:
            self._env.set_mapsize(min(map_size * 2, self._map_size_max))
        finally:
            self._gate.exit_exclusive()

    def _bump(self) -> None:
        """Commit a tiny transaction (writer thread, no txn open)."""
        with self._env.begin(write=True) as txn:
            T.bump(txn, self._dbs)

    def set_map_size_max(self, map_size_max: int) -> None:
        """Change the growth cap (e.g. raise it after a StoreFullError)."""
        check_u64(map_size_max, "map_size_max", low=1)
        self._map_size_max = map_size_max

    # -- Store -------------------------------------------------------------
    def read(self) -> _LmdbRead:
        return _LmdbRead(self)

    def write(self) -> _LmdbWrite:
        return _LmdbWrite(self)

    def usage(self) -> StoreUsage:
        self._gate.enter_shared()
        try:
            env = self._require_env()
            return StoreUsage(self._used_bytes(), env.info()["map_size"],
                              self._map_size_max)
        finally:
            self._gate.exit_shared()

    def flush(self) -> None:
        """Force everything committed to disk (useful with sync=False)."""
        with self.read():
            try:
                self._env.sync(True)
            except lmdb.Error as exc:
                raise translate(exc, self.path) from exc

    def check(self) -> None:
        with self.read() as r:
            T.scan_check(r._txn, r._dbs)

    def close(self) -> None:
        self._guard.enter("close")
        try:
            with self._write_lock:
                self._gate.enter_exclusive()
                try:
                    if self._env is not None:
                        self._env.close()
                        self._env = self._dbs = None
                        os.close(self._lock_fd)
                finally:
                    self._gate.exit_exclusive()
        finally:
            self._guard.exit()

    # -- snapshots -----------------------------------------------------------
    def snapshot_to(self, target: PathOrFile) -> SnapshotInfo:
        with self.read() as r:
            self._snapshots += 1
            try:
                index = r.get_last_applied_index()
                if isinstance(target, (str, os.PathLike)):
                    size = self._copy_to_path(r._txn, os.fspath(target))
                else:
                    size = self._copy_to_file(r._txn, target)
            except (lmdb.Error, OSError) as exc:
                raise translate(exc, self.path) from exc
            finally:
                self._snapshots -= 1
        return SnapshotInfo(index, size)

    def _copy_to_path(self, txn: Any, path: str) -> int:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self._env.copyfd(fd, compact=True, txn=txn)
            os.fsync(fd)
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(os.path.abspath(path)))
        return size

    def _copy_to_file(self, txn: Any, fileobj: Any) -> int:
        try:
            fd = fileobj.fileno()
        except (AttributeError, OSError):
            raise StoreUsageError("snapshot target must be a path or a "
                                  "real file object (with fileno())") from None
        fileobj.flush()
        start = os.lseek(fd, 0, os.SEEK_CUR)
        self._env.copyfd(fd, compact=True, txn=txn)
        end = os.lseek(fd, 0, os.SEEK_CUR)
        fileobj.seek(end)
        return end - start

    def restore_from(self, source: str | os.PathLike) -> int:
        source = os.fspath(source)
        index = _verify_snapshot(source)
        self._guard.enter("restore")
        try:
            with self._write_lock:
                self._require_env()
                tmp = os.path.join(self.path, _DATA_FILE + ".restore")
                _copy_file_synced(source, tmp)
                self._gate.enter_exclusive()
                try:
                    self._swap_in(tmp)
                finally:
                    self._gate.exit_exclusive()
        finally:
            self._guard.exit()
        return index

    def _swap_in(self, tmp: str) -> None:
        self._env.close()
        self._env = self._dbs = None
        os.replace(tmp, os.path.join(self.path, _DATA_FILE))
        _fsync_dir(self.path)
        self._open_env()


def _copy_file_synced(source: str, dest: str) -> None:
    try:
        with open(source, "rb") as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as exc:
        try:
            os.unlink(dest)
        except FileNotFoundError:
            pass
        raise translate(exc, os.path.dirname(dest)) from exc


def _verify_snapshot(source: str) -> int:
    """Open a snapshot file read-only, check it fully, return its index."""
    if not os.path.isfile(source):
        raise StoreCorruptError(f"snapshot {source} is not a file")
    try:
        env = lmdb.open(source, subdir=False, readonly=True, lock=False,
                        max_dbs=len(T.DB_NAMES), create=False)
    except lmdb.Error as exc:
        raise StoreCorruptError(f"snapshot {source}: {exc}") from exc
    try:
        with env.begin() as txn:
            dbs = T.Dbs(env, txn, create=False)
            T.check_format(txn, dbs)
            T.scan_check(txn, dbs)
            return T.last_applied(txn, dbs)
    except lmdb.Error as exc:
        raise StoreCorruptError(f"snapshot {source}: {exc}") from exc
    finally:
        env.close()
