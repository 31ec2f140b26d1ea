"""MemoryStore: the in-memory twin of LmdbStore, for tests.

Same contract, same validation (both go through ``_common``), same results;
the contract suite and a hypothesis test hold the two together.

How it differs inside (none of it observable through the contract):

* A write transaction mutates the live tables and keeps an undo log; an
  exception (or a failed commit) runs the undo log backwards.
* Isolation comes from the gate: a write transaction holds it exclusively
  for its whole life, readers share it. A reader therefore waits for a
  running writer instead of seeing the previous commit as LMDB does.
* ``MemoryStore(bytes_max=N)`` makes a commit that would leave more than N
  bytes of message records fail with ``StoreFullError("capacity")``, to
  drive full-store paths in callers' tests.
* Snapshots are msgpack files readable only by MemoryStore.
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from typing import Any, Callable, Sequence

from ._common import (CLOSED, Gate, ThreadGuard, as_record, check_append,
                      check_count, check_limit, check_u64, encode_name, is_u64)
from ._memory_snapshot import dump_state, load_state
from .api import (Channel, ChannelStats, PathOrFile, ReadTxn, Removed,
                  SnapshotInfo, Store, StoreClosedError, StoreCorruptError,
                  StoreFullError, StoreUsage, StoreUsageError, WriteTxn)

_MISSING = object()


class MemChannel:
    """One channel: record, stats, messages (sorted ``seqs[head:]`` plus a
    seq -> record dict) and subscriptions."""

    __slots__ = ("cid", "name", "record", "first", "last", "msgs", "nbytes",
                 "seqs", "head", "data", "subs")

    def __init__(self, cid: int, name: str, record: bytes) -> None:
        self.cid, self.name, self.record = cid, name, record
        self.first = self.last = self.msgs = self.nbytes = 0
        self.seqs: list[int] = []
        self.head = 0
        self.data: dict[int, bytes] = {}
        self.subs: dict[int, bytes] = {}

    def stats(self) -> ChannelStats:
        return ChannelStats(self.first, self.last, self.msgs, self.nbytes)

    def view(self) -> Channel:
        return Channel(self.cid, self.name, self.record, self.stats())


class MemState:
    """Everything a MemoryStore holds."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.chans: dict[int, MemChannel] = {}
        self.clients: dict[str, bytes] = {}
        self.meta: dict[str, bytes] = {}
        self.last_applied = 0
        self.next_cid = 1
        self.msg_bytes = 0


class _MemReads(ReadTxn):
    _st: Any = CLOSED

    def _chan(self, cid: int) -> MemChannel | None:
        return self._st.chans.get(cid) if is_u64(cid) else None

    def get_last_applied_index(self) -> int:
        return self._st.last_applied

    def get_meta(self, key: str) -> bytes | None:
        meta = self._st.meta
        encode_name(key, "meta key")
        return meta.get(key)

    def get_channel(self, name: str) -> Channel | None:
        st = self._st
        encode_name(name, "channel name")
        cid = st.names.get(name)
        return None if cid is None else st.chans[cid].view()

    def get_channel_by_id(self, channel_id: int) -> Channel | None:
        chan = self._chan(channel_id)
        return None if chan is None else chan.view()

    def list_channels(self) -> list[Channel]:
        st = self._st
        return [st.chans[st.names[name]].view() for name in sorted(st.names)]

    def channel_stats(self, channel_id: int) -> ChannelStats | None:
        chan = self._chan(channel_id)
        return None if chan is None else chan.stats()

    def get_message(self, channel_id: int, seq: int) -> bytes | None:
        chan = self._chan(channel_id)
        return None if chan is None or not is_u64(seq) else chan.data.get(seq)

    def read_messages(self, channel_id: int, start_seq: int, count_max: int,
                      bytes_max: int | None = None) -> list[tuple[int, bytes]]:
        check_count(count_max)
        check_limit(bytes_max, "bytes_max")
        chan = self._chan(channel_id)
        if chan is None or not is_u64(start_seq):
            return []
        seqs, data, out, total = chan.seqs, chan.data, [], 0
        i = bisect_left(seqs, start_seq, chan.head)
        for seq in seqs[i:i + count_max]:
            total += len(data[seq])
            if bytes_max is not None and out and total > bytes_max:
                break
            out.append((seq, data[seq]))
        return out

    def get_subscription(self, channel_id: int, sub_id: int) -> bytes | None:
        chan = self._chan(channel_id)
        return None if chan is None or not is_u64(sub_id) else chan.subs.get(sub_id)

    def list_subscriptions(self, channel_id: int) -> list[tuple[int, bytes]]:
        chan = self._chan(channel_id)
        return [] if chan is None else sorted(chan.subs.items())

    def get_client(self, client_id: str) -> bytes | None:
        encode_name(client_id, "client id")
        return self._st.clients.get(client_id)

    def list_clients(self) -> list[tuple[str, bytes]]:
        return sorted(self._st.clients.items())


class _MemRead(_MemReads):
    def __init__(self, store: "MemoryStore") -> None:
        self._store = store

    def __enter__(self) -> "_MemRead":
        store = self._store
        store._guard.enter("read")
        store._gate.enter_shared()
        if store._state is None:
            store._gate.exit_shared()
            store._guard.exit()
            raise StoreClosedError("store is closed")
        self._st = store._state
        return self

    def __exit__(self, *exc: object) -> None:
        self._st = CLOSED
        self._store._gate.exit_shared()
        self._store._guard.exit()


class _MemWrite(_MemReads, WriteTxn):
    def __init__(self, store: "MemoryStore") -> None:
        self._store = store
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> "_MemWrite":
        store = self._store
        store._guard.enter("write")
        store._gate.enter_exclusive()
        if store._state is None:
            store._gate.exit_exclusive()
            store._guard.exit()
            raise StoreClosedError("store is closed")
        self._st = store._state
        self._bytes_before = self._st.msg_bytes
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._commit()
            else:
                self._rollback()
        finally:
            self._st = CLOSED
            self._store._gate.exit_exclusive()
            self._store._guard.exit()

    def _commit(self) -> None:
        cap = self._store._bytes_max
        used = self._st.msg_bytes
        if cap is not None and used > cap and used > self._bytes_before:
            self._rollback()
            raise StoreFullError(
                f"memory store capacity {cap} bytes exceeded ({used})",
                "capacity")
        self._undo.clear()

    def _rollback(self) -> None:
        while self._undo:
            self._undo.pop()()

    # -- undo-logged primitives --------------------------------------------
    def _set(self, table: dict, key: Any, value: Any) -> None:
        old = table.get(key, _MISSING)
        table[key] = value
        self._undo.append(lambda: _restore(table, key, old))

    def _delete(self, table: dict, key: Any) -> bool:
        old = table.pop(key, _MISSING)
        if old is _MISSING:
            return False
        self._undo.append(lambda: table.__setitem__(key, old))
        return True

    def _setattrs(self, obj: Any, **values: Any) -> None:
        old = {name: getattr(obj, name) for name in values}
        for name, value in values.items():
            setattr(obj, name, value)
        self._undo.append(lambda: [setattr(obj, n, v) for n, v in old.items()])

    def _require(self, cid: int) -> MemChannel:
        chan = self._chan(cid)
        if chan is None:
            raise StoreUsageError(f"unknown channel id {cid!r}")
        return chan

    # -- WriteTxn ----------------------------------------------------------
    def set_last_applied_index(self, index: int) -> None:
        st = self._st
        check_u64(index, "index")
        if index < st.last_applied:
            raise StoreUsageError(f"last applied index may not go down "
                                  f"({st.last_applied} -> {index})")
        self._setattrs(st, last_applied=index)

    def put_meta(self, key: str, value: bytes) -> None:
        encode_name(key, "meta key")
        self._set(self._st.meta, key, as_record(value))

    def delete_meta(self, key: str) -> bool:
        encode_name(key, "meta key")
        return self._delete(self._st.meta, key)

    def create_channel(self, name: str, record: bytes) -> int:
        st = self._st
        encode_name(name, "channel name")
        record = as_record(record)
        if name in st.names:
            raise StoreUsageError(f"channel {name!r} already exists")
        cid = st.next_cid
        self._setattrs(st, next_cid=cid + 1)
        self._set(st.chans, cid, MemChannel(cid, name, record))
        self._set(st.names, name, cid)
        return cid

    def put_channel(self, channel_id: int, record: bytes) -> None:
        chan = self._require(channel_id)
        self._setattrs(chan, record=as_record(record))

    def delete_channel(self, channel_id: int) -> Removed:
        st = self._st
        chan = self._require(channel_id)
        self._delete(st.chans, chan.cid)
        self._delete(st.names, chan.name)
        self._setattrs(st, msg_bytes=st.msg_bytes - chan.nbytes)
        return Removed(chan.msgs, chan.nbytes)

    def append_messages(self, channel_id: int,
                        messages: Sequence[tuple[int, bytes]]) -> None:
        batch = check_append(messages, 0)
        chan = self._require(channel_id)
        if not batch:
            return
        if batch[0][0] <= chan.last:
            raise StoreUsageError(f"message seq {batch[0][0]} must be above "
                                  f"the channel's last_seq {chan.last}")
        added = sum(len(rec) for _seq, rec in batch)
        self._setattrs(chan, first=chan.first if chan.msgs else batch[0][0],
                       last=batch[-1][0], msgs=chan.msgs + len(batch),
                       nbytes=chan.nbytes + added)
        self._setattrs(self._st, msg_bytes=self._st.msg_bytes + added)
        seqs, data = chan.seqs, chan.data
        for seq, rec in batch:
            seqs.append(seq)
            data[seq] = rec
        self._undo.append(lambda: _unappend(chan, batch))

    def delete_messages_upto(self, channel_id: int, seq: int) -> Removed:
        check_u64(seq, "seq")
        chan = self._require(channel_id)
        return self._delete_front(chan, bisect_right(chan.seqs, seq, chan.head))

    def trim_messages(self, channel_id: int, *, msgs_max: int | None = None,
                      bytes_max: int | None = None) -> Removed:
        msgs_cap = check_limit(msgs_max, "msgs_max")
        bytes_cap = check_limit(bytes_max, "bytes_max")
        chan = self._require(channel_id)
        msgs, nbytes, i = chan.msgs, chan.nbytes, chan.head
        while msgs > 1 and ((msgs_cap is not None and msgs > msgs_cap) or
                            (bytes_cap is not None and nbytes > bytes_cap)):
            nbytes -= len(chan.data[chan.seqs[i]])
            msgs -= 1
            i += 1
        return self._delete_front(chan, i)

    def _delete_front(self, chan: MemChannel, end: int) -> Removed:
        """Delete ``chan.seqs[head:end]``, fix stats, log the undo."""
        old_seqs, old_head = chan.seqs, chan.head
        removed = [(seq, chan.data.pop(seq)) for seq in old_seqs[old_head:end]]
        if not removed:
            return Removed(0, 0)
        nbytes = sum(len(rec) for _seq, rec in removed)
        self._setattrs(chan, msgs=chan.msgs - len(removed),
                       nbytes=chan.nbytes - nbytes,
                       first=(old_seqs[end] if end < len(old_seqs)
                              else chan.last + 1))
        self._setattrs(self._st, msg_bytes=self._st.msg_bytes - nbytes)
        if end > 64 and 2 * end > len(old_seqs):
            chan.seqs, chan.head = old_seqs[end:], 0
        else:
            chan.head = end
        self._undo.append(lambda: _unfront(chan, old_seqs, old_head, removed))
        return Removed(len(removed), nbytes)

    def put_subscription(self, channel_id: int, sub_id: int,
                         record: bytes) -> None:
        check_u64(sub_id, "sub_id")
        record = as_record(record)
        self._set(self._require(channel_id).subs, sub_id, record)

    def delete_subscription(self, channel_id: int, sub_id: int) -> bool:
        chan = self._chan(channel_id)
        if chan is None or not is_u64(sub_id):
            return False
        return self._delete(chan.subs, sub_id)

    def put_client(self, client_id: str, record: bytes) -> None:
        encode_name(client_id, "client id")
        self._set(self._st.clients, client_id, as_record(record))

    def delete_client(self, client_id: str) -> bool:
        encode_name(client_id, "client id")
        return self._delete(self._st.clients, client_id)


def _restore(table: dict, key: Any, old: Any) -> None:
    if old is _MISSING:
        table.pop(key, None)
    else:
        table[key] = old


def _unappend(chan: MemChannel, batch: list[tuple[int, bytes]]) -> None:
    del chan.seqs[len(chan.seqs) - len(batch):]
    for seq, _rec in batch:
        del chan.data[seq]


def _unfront(chan: MemChannel, seqs: list[int], head: int,
             removed: list[tuple[int, bytes]]) -> None:
    chan.seqs, chan.head = seqs, head
    chan.data.update(removed)


class MemoryStore(Store):
    """The Store contract in memory. ``bytes_max`` caps message bytes."""

    def __init__(self, *, bytes_max: int | None = None) -> None:
        self._bytes_max = check_limit(bytes_max, "bytes_max")
        self._state: MemState | None = MemState()
        self._gate = Gate()
        self._guard = ThreadGuard()

    def set_bytes_max(self, bytes_max: int | None) -> None:
        """Change the capacity (None: unlimited)."""
        self._bytes_max = check_limit(bytes_max, "bytes_max")

    def read(self) -> _MemRead:
        return _MemRead(self)

    def write(self) -> _MemWrite:
        return _MemWrite(self)

    def usage(self) -> StoreUsage:
        with self.read() as r:
            cap = self._bytes_max or 0
            return StoreUsage(r._st.msg_bytes, cap, cap)

    def check(self) -> None:
        with self.read() as r:
            check_state(r._st)

    def close(self) -> None:
        self._guard.enter("close")
        self._gate.enter_exclusive()
        self._state = None
        self._gate.exit_exclusive()
        self._guard.exit()

    def snapshot_to(self, target: PathOrFile) -> SnapshotInfo:
        with self.read() as r:
            blob = dump_state(r._st)
            index = r._st.last_applied
        if isinstance(target, (str, os.PathLike)):
            _write_path(os.fspath(target), blob)
        else:
            target.write(blob)
            if hasattr(target, "flush"):
                target.flush()
        return SnapshotInfo(index, len(blob))

    def restore_from(self, source: str | os.PathLike) -> int:
        try:
            with open(source, "rb") as f:
                state = load_state(f.read(), MemState, MemChannel)
            check_state(state)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise StoreCorruptError(f"snapshot {source}: {exc!r}") from exc
        self._guard.enter("restore")
        self._gate.enter_exclusive()
        try:
            if self._state is None:
                raise StoreClosedError("store is closed")
            self._state = state
        finally:
            self._gate.exit_exclusive()
            self._guard.exit()
        return state.last_applied


def _write_path(path: str, blob: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_state(st: MemState) -> None:
    """Full invariant check of a MemState (StoreCorruptError)."""
    def fail(what: str) -> None:
        raise StoreCorruptError(f"memory store: {what}")

    if sorted(st.names.values()) != sorted(st.chans):
        fail("name index and channels differ")
    total = 0
    for cid, chan in st.chans.items():
        live = chan.seqs[chan.head:]
        if (st.names.get(chan.name) != cid or cid >= st.next_cid
                or live != sorted(set(live)) or set(live) != set(chan.data)):
            fail(f"channel {cid} index")
        nbytes = sum(len(chan.data[s]) for s in live)
        ok = (len(live) == chan.msgs and nbytes == chan.nbytes and
              (live[0] == chan.first and live[-1] == chan.last if live else
               chan.first == chan.last + 1 or chan.first == chan.last == 0))
        if not ok:
            fail(f"channel {cid} stats")
        total += nbytes
    if total != st.msg_bytes:
        fail("message byte total")
