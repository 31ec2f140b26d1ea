"""Append/read/snapshot throughput of LmdbStore.

    .venv/bin/python -m storage.bench [--dir DIR] [--batches N] [--batch 1000]
                                      [--size 128] [--keep N]

Appends ``batches`` transactions of ``batch`` records of ``size`` bytes
(each transaction also sets last_applied_index, as Raft apply does, and
with ``--keep`` trims the channel as max_msgs does), once
with sync=True and once with sync=False, then reads everything back in
1000-message read transactions and snapshots the store. Prints msgs/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from .lmdb_store import LmdbStore


def _append(store: LmdbStore, batches: int, batch: int, size: int,
            keep: int) -> float:
    with store.write() as txn:
        cid = txn.create_channel("bench", b"")
    payload = [os.urandom(size) for _ in range(batch)]
    seq = 0
    start = time.perf_counter()
    for index in range(1, batches + 1):
        msgs = [(seq + i + 1, payload[i]) for i in range(batch)]
        seq += batch
        with store.write() as txn:
            txn.append_messages(cid, msgs)
            if keep:
                txn.trim_messages(cid, msgs_max=keep)
            txn.set_last_applied_index(index)
    return time.perf_counter() - start


def _read_all(store: LmdbStore) -> tuple[int, float]:
    with store.read() as r:
        cid = r.get_channel("bench").channel_id
    start, seq, count = time.perf_counter(), 1, 0
    while True:
        with store.read() as r:
            msgs = r.read_messages(cid, seq, 1000)
        if not msgs:
            break
        count += len(msgs)
        seq = msgs[-1][0] + 1
    return count, time.perf_counter() - start


def run(base: str, batches: int, batch: int, size: int, keep: int) -> None:
    total = batches * batch
    for sync in (True, False):
        path = os.path.join(base, f"sync-{sync}")
        store = LmdbStore(path, sync=sync)
        try:
            elapsed = _append(store, batches, batch, size, keep)
            trim = f", trim to {keep}" if keep else ""
            print(f"append sync={sync!s:5}{trim}: {total} x {size} B in {batches} "
                  f"txns: {total / elapsed:,.0f} msgs/s "
                  f"({elapsed / batches * 1e3:.2f} ms/txn)")
            if not sync:
                count, elapsed = _read_all(store)
                print(f"read  1000/txn     : {count / elapsed:,.0f} msgs/s")
                snap = os.path.join(base, "snap.mdb")
                start = time.perf_counter()
                info = store.snapshot_to(snap)
                elapsed = time.perf_counter() - start
                print(f"snapshot           : {info.size_bytes / 2**20:.1f} MiB "
                      f"in {elapsed * 1e3:.0f} ms "
                      f"({info.size_bytes / 2**20 / elapsed:.0f} MiB/s)")
        finally:
            store.close()
            shutil.rmtree(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--keep", type=int, default=0,
                        help="also trim the channel to this many messages")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="runnel-bench-", dir=args.dir)
    try:
        run(base, args.batches, args.batch, args.size, args.keep)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
