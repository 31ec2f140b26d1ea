"""A node's replica, read from its stopped store: ``{channel: [[seq, value], ...]}``.

Run in a child process (``python -m chaos.dump <store dir>`` prints JSON) so that a
damaged store that crashes the LMDB binding cannot take the supervisor with it.
"""
from __future__ import annotations

import json
import subprocess
import sys

PAGE = 1000


def dump_store(store_dir: str) -> dict:
    from broker.protocol.stan import MsgProto
    from storage import LmdbStore

    store = LmdbStore(store_dir, sync=False)
    try:
        out: dict[str, list] = {}
        with store.read() as txn:
            for channel in txn.list_channels():
                rows, start = [], 1
                while True:
                    page = txn.read_messages(channel.channel_id, start, PAGE)
                    if not page:
                        break
                    rows += [[seq, MsgProto.FromString(rec).data.decode(errors="replace")]
                             for seq, rec in page]
                    start = page[-1][0] + 1
                out[channel.name] = rows
        return {"channels": out, "last_applied": txn_last_applied(store)}
    finally:
        store.close()


def txn_last_applied(store) -> int:
    with store.read() as txn:
        return txn.get_last_applied_index()


def dump_in_child(store_dir: str, timeout_s: float = 60.0) -> tuple[dict | None, str]:
    """(dump, error text)."""
    proc = subprocess.run([sys.executable, "-m", "chaos.dump", store_dir], capture_output=True,
                          text=True, timeout=timeout_s)
    if proc.returncode != 0:
        return None, (proc.stderr or proc.stdout)[-2000:]
    return json.loads(proc.stdout), ""


if __name__ == "__main__":
    json.dump(dump_store(sys.argv[1]), sys.stdout)
