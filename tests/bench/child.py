"""The stdio handshake between the bench and a load generator process.

The child prints ``ready [time]`` once connected, may wait for a ``go`` line on
stdin, then prints exactly one JSON line with its result. The parent side is
``harness.Child``.
"""
from __future__ import annotations

import json
import sys


def ready(at: float | None = None) -> None:
    print("ready" if at is None else f"ready {at!r}", flush=True)


def wait_go() -> None:
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("parent went away")


def report(result: dict) -> None:
    print(json.dumps(result), flush=True)
