"""The transaction objects of LmdbStore and the engine-error translation."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any, Callable, Sequence

import lmdb

from . import _lmdb_tables as T
from ._common import (CLOSED, as_record, check_append, check_count,
                      check_limit, check_u64, encode_name)
from .api import (Channel, ChannelStats, ReadTxn, Removed, StoreCorruptError,
                  StoreError, StoreFatalError, StoreFullError, WriteTxn)

if TYPE_CHECKING:
    from .lmdb_store import LmdbStore

#: After EIO (LMDB reports a short write so), the disk counts as full when
#: it has less free space than this.
DISK_FREE_FULL_BYTES = 4 << 20
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
    def __init__(self, store: "LmdbStore", long: bool = False) -> None:
        self._store = store
        self._long = long

    def __enter__(self) -> "_LmdbRead":
        store = self._store
        store._guard.enter("snapshot" if self._long else "read")
        try:
            store._gate.enter_shared(self._long)
            try:
                env = store._require_env()
                self._dbs = store._dbs
                self._txn = env.begin()
            except BaseException:
                store._gate.exit_shared(self._long)
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
            self._store._gate.exit_shared(self._long)
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
                self._store._abort_write(self._txn)
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
                self._restart(exc, fn)
                continue
            except lmdb.Error as exc:
                raise self._abandon(exc) from exc
            self._ops.append((fn, args))
            return result

    def _restart(self, exc: lmdb.Error, failing: Callable[..., Any] | None = None) -> None:
        """After MAP_FULL (or a full disk at commit): drop the engine txn,
        make room, and replay the recorded ops into a fresh txn; or abandon
        the transaction with StoreFullError when no room can be made."""
        while True:
            if self._txn is not CLOSED:
                self._store._abort_write(self._txn)
                self._txn = CLOSED
            try:
                self._make_room(exc, failing)
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

    def _make_room(self, exc: lmdb.Error, failing: Callable[..., Any] | None = None) -> None:
        store = self._store
        reserve = self._only_frees(failing)
        if isinstance(exc, lmdb.MapFullError) and store._can_grow(reserve):
            store._grow(reserve)
        elif not self._bumped:
            # Pages freed by the last commit are reusable only after one
            # more commit: a tiny commit recycles them, then retry once.
            self._bumped = True
            store._bump()
        else:
            raise translate(exc, store.path) from exc

    def _only_frees(self, failing: Callable[..., Any] | None) -> bool:
        """Whether this transaction stores no new messages (it may use the reserve)."""
        fns = [fn for fn, _ in self._ops] + ([failing] if failing is not None else [])
        return all(fn.__name__ != "append_messages" for fn in fns)

    def _abandon(self, exc: BaseException) -> StoreError:
        if self._txn is not CLOSED:
            try:
                self._store._abort_write(self._txn)
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
