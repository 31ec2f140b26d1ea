"""MemoryStore snapshot file format: one msgpack map.

``{"format": "runnel-memory-store", "version": 1, "last_applied": int,
"next_cid": int, "meta": {key: bytes}, "clients": {id: bytes},
"channels": [[cid, name, record, first, last, [[seq, rec], ...],
[[sub_id, rec], ...]], ...]}``. Message counts and bytes are recomputed.
"""

from __future__ import annotations

from typing import Any

import msgpack

FORMAT = "runnel-memory-store"
VERSION = 1


def dump_state(st: Any) -> bytes:
    channels = []
    for cid in sorted(st.chans):
        chan = st.chans[cid]
        live = chan.seqs[chan.head:]
        channels.append([cid, chan.name, chan.record, chan.first, chan.last,
                         [[seq, chan.data[seq]] for seq in live],
                         sorted([sid, rec] for sid, rec in chan.subs.items())])
    return msgpack.packb({
        "format": FORMAT, "version": VERSION,
        "last_applied": st.last_applied, "next_cid": st.next_cid,
        "meta": st.meta, "clients": st.clients, "channels": channels,
    }, use_bin_type=True)


def load_state(blob: bytes, state_cls: type, channel_cls: type) -> Any:
    """Parse a snapshot; ValueError/TypeError/KeyError if malformed."""
    doc = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a MemoryStore snapshot")
    if doc["version"] != VERSION:
        raise ValueError(f"MemoryStore snapshot version {doc['version']!r}")
    st = state_cls()
    st.last_applied, st.next_cid = int(doc["last_applied"]), int(doc["next_cid"])
    st.meta = {str(k): bytes(v) for k, v in doc["meta"].items()}
    st.clients = {str(k): bytes(v) for k, v in doc["clients"].items()}
    for cid, name, record, first, last, msgs, subs in doc["channels"]:
        chan = channel_cls(int(cid), str(name), bytes(record))
        chan.first, chan.last = int(first), int(last)
        chan.seqs = [int(seq) for seq, _rec in msgs]
        chan.data = {int(seq): bytes(rec) for seq, rec in msgs}
        chan.msgs = len(chan.seqs)
        chan.nbytes = sum(len(rec) for rec in chan.data.values())
        chan.subs = {int(sid): bytes(rec) for sid, rec in subs}
        st.chans[chan.cid] = chan
        st.names[chan.name] = chan.cid
        st.msg_bytes += chan.nbytes
    return st
