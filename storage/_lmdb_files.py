"""Checks on LMDB files made before LMDB maps them.

LMDB memory-maps the data file and trusts it: a truncated file makes the
process die of SIGBUS, damaged pages can crash it. So:

* ``check_not_truncated`` reads the two meta pages (LMDB 0.9 layout, data
  version 1) and refuses a file shorter than its last used page. Cheap; run
  on every open and on every snapshot before it is restored.
* ``verify_snapshot`` opens a snapshot and runs the full invariant scan in a
  CHILD process, so that a crash on a damaged file becomes a clean
  StoreCorruptError in the parent instead of killing the node.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

from .api import StoreCorruptError

_MAGIC = 0xBEEFC0DE
_PAGE_HEADER = 16  # pgno u64, pad u16, flags u16, lower u16, upper u16
_META = struct.Struct("<II")      # mm_magic, mm_version at +16
_PSIZE_AT = _PAGE_HEADER + 24     # mm_dbs[FREE].md_pad holds the page size
_LAST = struct.Struct("<QQ")      # mm_last_pg, mm_txnid
_LAST_AT = _PAGE_HEADER + 120
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _meta(raw: bytes, offset: int) -> tuple[int, int] | None:
    if len(raw) < offset + _LAST_AT + _LAST.size:
        return None
    magic, version = _META.unpack_from(raw, offset + _PAGE_HEADER)
    if magic != _MAGIC or version != 1:
        return None
    return _LAST.unpack_from(raw, offset + _LAST_AT)


def check_not_truncated(path: str) -> None:
    """StoreCorruptError if the LMDB data file at ``path`` is shorter than
    its newest meta page says. A missing file passes (a new store)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_PSIZE_AT + 4)
            if len(head) < _PSIZE_AT + 4:
                if not head:
                    return
                raise StoreCorruptError(f"{path}: too short for LMDB")
            psize = struct.unpack_from("<I", head, _PSIZE_AT)[0]
            if psize < 512 or psize > 1 << 16 or psize & (psize - 1):
                raise StoreCorruptError(f"{path}: not an LMDB file")
            f.seek(0)
            raw = f.read(2 * psize)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return
    metas = [m for m in (_meta(raw, 0), _meta(raw, psize)) if m]
    if not metas:
        raise StoreCorruptError(f"{path}: no valid LMDB meta page")
    last_pg, _txnid = max(metas, key=lambda m: m[1])
    if size < (last_pg + 1) * psize:
        raise StoreCorruptError(f"{path}: truncated ({size} bytes, needs "
                                f"{(last_pg + 1) * psize})")


def verify_snapshot(path: str) -> int:
    """Check a snapshot file fully in a child process; return its index."""
    if not os.path.isfile(path):
        raise StoreCorruptError(f"snapshot {path} is not a file")
    check_not_truncated(path)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "storage._lmdb_files", path], env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stdout.strip() or proc.stderr.strip()[-500:]
                  or f"verifier died with status {proc.returncode}")
        raise StoreCorruptError(f"snapshot {path}: {detail}")
    return json.loads(proc.stdout)["last_applied_index"]


def _verify_here(path: str) -> int:
    import lmdb

    from . import _lmdb_tables as T
    env = lmdb.open(path, subdir=False, readonly=True, lock=False,
                    max_dbs=len(T.DB_NAMES), create=False)
    try:
        with env.begin() as txn:
            dbs = T.Dbs(env, txn, create=False)
            T.check_format(txn, dbs)
            T.scan_check(txn, dbs)
            return T.last_applied(txn, dbs)
    finally:
        env.close()


def main(argv: list[str]) -> int:
    try:
        index = _verify_here(argv[1])
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        print(f"{type(exc).__name__}: {exc}")
        return 1
    print(json.dumps({"last_applied_index": index}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
