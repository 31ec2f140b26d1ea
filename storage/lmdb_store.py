"""LmdbStore: the Store contract on LMDB files (see DESIGN.md)."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from typing import Any

import lmdb

from . import _lmdb_tables as T
from ._common import Gate, ThreadGuard, check_u64
from ._lmdb_files import check_not_truncated, verify_snapshot
from ._lmdb_txn import _LmdbRead, _LmdbWrite, translate
from .api import (PathOrFile, SnapshotInfo, Store, StoreClosedError,
                  StoreLockedError, StoreUsage, StoreUsageError)

MAP_SIZE_INITIAL = 16 << 20
MAP_SIZE_MAX = 256 << 30
_DATA_FILE = "data.mdb"
_LOCK_FILE = "runnel-store.lock"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


RESERVE_BYTES_MIN = 256 * 1024


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
        check_not_truncated(os.path.join(self.path, _DATA_FILE))
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

    def _map_cap(self, reserve: bool) -> int:
        """map_size_max, plus a reserve that only freeing transactions may use:
        deleting in LMDB needs fresh pages too, so a full map could never be
        emptied without it."""
        if not reserve:
            return self._map_size_max
        return self._map_size_max + max(self._map_size_max // 16, RESERVE_BYTES_MIN)

    def _can_grow(self, reserve: bool = False) -> bool:
        return self._env.info()["map_size"] < self._map_cap(reserve)

    def _grow(self, reserve: bool = False) -> None:
        """Double the map (capped at map_size_max, or the reserve). Called by the
        writer with no write txn open; waits until no reader is inside the map."""
        map_size = self._env.info()["map_size"]
        self._gate.enter_exclusive()
        try:
            self._env.set_mapsize(min(map_size * 2, self._map_cap(reserve)))
        finally:
            self._gate.exit_exclusive()

    def _bump(self) -> None:
        """Commit a tiny transaction (writer thread, no txn open)."""
        txn = self._env.begin(write=True)
        try:
            T.bump(txn, self._dbs)
        except BaseException:
            self._abort_write(txn)
            raise
        txn.commit()

    def _abort_write(self, txn: Any) -> None:
        """Abort a write txn with readers held off: py-lmdb 3.0 takes a
        per-environment lock in abort that busy readers can starve for
        seconds (measured: p99 10 s with two reader threads in a loop)."""
        self._gate.enter_exclusive()
        try:
            txn.abort()
        finally:
            self._gate.exit_exclusive()

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
        with self.read():
            return StoreUsage(self._used_bytes(), self._env.info()["map_size"],
                              self._map_size_max)

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
        self._headroom_for_snapshot()
        with _LmdbRead(self, long=True) as r:
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

    def _headroom_for_snapshot(self) -> None:
        """Grow the map to at least twice its use before a copy starts.
        Growth has to wait for the copy (it remaps under the copy's reader)
        and would stall the apply thread: this makes it unlikely, because
        pages freed during the copy are not reused, so the file grows by
        whatever is written meanwhile. Waits for one write transaction."""
        self._guard.enter("snapshot")
        try:
            with self._write_lock:
                self._require_env()
                if (self._can_grow() and self._used_bytes() * 2
                        > self._env.info()["map_size"]):
                    self._grow()
        finally:
            self._guard.exit()

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
        except (AttributeError, OSError, ValueError):
            return self._copy_via_pipe(txn, fileobj)  # e.g. io.BytesIO
        fileobj.flush()
        if not fileobj.seekable():  # pipe or socket: size unknown
            self._env.copyfd(fd, compact=True, txn=txn)
            return -1
        start = os.lseek(fd, 0, os.SEEK_CUR)
        self._env.copyfd(fd, compact=True, txn=txn)
        end = os.lseek(fd, 0, os.SEEK_CUR)
        fileobj.seek(end)
        return end - start

    def _copy_via_pipe(self, txn: Any, fileobj: Any) -> int:
        """Copy into a pipe from a helper thread; write what comes out to
        ``fileobj`` here. If ``fileobj.write`` fails, closing the pipe
        ends the copy (EPIPE)."""
        read_fd, write_fd = os.pipe()
        errors: list[BaseException] = []

        def pump() -> None:
            try:
                self._env.copyfd(write_fd, compact=True, txn=txn)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
            finally:
                os.close(write_fd)

        thread = threading.Thread(target=pump, name="store-snapshot")
        thread.start()
        size = 0
        try:
            while chunk := os.read(read_fd, 1 << 20):
                fileobj.write(chunk)
                size += len(chunk)
        finally:
            os.close(read_fd)
            thread.join()
        if errors:
            raise errors[0]
        return size

    def restore_from(self, source: str | os.PathLike) -> int:
        source = os.fspath(source)
        index = verify_snapshot(source)
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
