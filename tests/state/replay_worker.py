"""Subprocess worker of test_determinism.py: applies command logs in THIS process (started
with its own PYTHONHASHSEED) and writes canonical dumps.

Protocol, one JSON object per line on stdin, one line answered on stdout:
  {"log": <path of a msgpack list of [index, command bytes]>, "out": <path prefix>,
   "cut": <restart position>}
writes ``<out>.straight`` (applied straight through) and ``<out>.restart`` (store closed,
reopened and the machine rebuilt after ``cut`` entries), both on an LmdbStore, and
answers ``ok`` (or ``error <traceback>`` on one line). EOF ends the worker.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import msgpack  # noqa: E402

from storage import LmdbStore  # noqa: E402
from tests.state.statekit import replay  # noqa: E402


def lmdb_factory(path: str):
    current = []

    def factory(reopen: bool):
        if current:
            current[0].close()
            current.clear()
        current.append(LmdbStore(path, sync=False, map_size_initial=1 << 20))
        return current[0]

    return factory


def handle(request: dict) -> None:
    with open(request["log"], "rb") as f:
        log = [(index, command) for index, command in msgpack.unpackb(f.read())]
    for mode, cut in (("straight", None), ("restart", request["cut"])):
        tmp = tempfile.mkdtemp(prefix="replay-worker-")
        try:
            dump = replay(lmdb_factory(os.path.join(tmp, "store")), log, cut)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        with open(f"{request['out']}.{mode}", "wb") as f:
            f.write(dump)


def main() -> None:
    for line in sys.stdin:
        try:
            handle(json.loads(line))
            answer = "ok"
        except Exception:
            answer = "error " + traceback.format_exc().replace("\n", "\\n")
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
