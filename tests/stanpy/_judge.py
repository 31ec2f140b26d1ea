"""Shared plumbing of the stan.py (asyncio-nats-streaming) judges: pub.py, sub.py.

Run them with the interpreter of .venv-stanpy (asyncio-nats-client's package is
named `nats`, like nats-py's, so it lives in a venv of its own). stan.py 0.4.0
passes ``loop=`` to asyncio APIs that Python 3.10 removed: the compat shim
(shared/compat/sitecustomize.py) is applied here if it is not already on
PYTHONPATH, and protobuf is told to use its pure-Python implementation, which
the old generated protocol_pb2 needs.

Every judge prints one JSON object per line ("events"), reads optional
commands from stdin, and always ends by itself: --deadline (ms) bounds the work
and a hard timer 5 s later exits with status 2, whatever the library does.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
COMPAT_CANDIDATES = [
    Path(os.environ["RUNNEL_COMPAT_DIR"]) if os.environ.get("RUNNEL_COMPAT_DIR") else None,
    REPO.parent / "shared" / "compat",
    Path("/work/shared/compat"),
]


def _apply_compat_shim() -> None:
    if sys.version_info < (3, 10):
        return
    loaded = sys.modules.get("sitecustomize")
    if loaded is not None and "loop=" in (loaded.__doc__ or ""):
        return  # PYTHONPATH already had it
    for folder in COMPAT_CANDIDATES:
        if folder is not None and (folder / "sitecustomize.py").is_file():
            spec = importlib.util.spec_from_file_location("runnel_compat_sitecustomize",
                                                          folder / "sitecustomize.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["runnel_compat_sitecustomize"] = module
            return
    sys.stderr.write("stan.py judge: shared/compat/sitecustomize.py not found "
                     "(set RUNNEL_COMPAT_DIR); stan.py 0.4.0 fails on Python >= 3.10 without it\n")


_apply_compat_shim()

from nats.aio.client import Client as NATS  # noqa: E402  (asyncio-nats-client 0.11.x)
from stan.aio.client import Client as STAN  # noqa: E402  (asyncio-nats-streaming 0.4.0)

_errors = 0


def emit(event: str, **fields) -> None:
    global _errors
    if event == "error":
        _errors += 1
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def err_text(exc: BaseException | str | None) -> str | None:
    if exc is None:
        return None
    if isinstance(exc, str):
        return exc
    text = str(exc)
    if isinstance(exc, asyncio.TimeoutError) and not text:
        return "timeout"
    return text or type(exc).__name__


def exit_code() -> int:
    return 1 if _errors else 0


def hard_exit(code: int) -> None:
    sys.stdout.flush()
    os._exit(code)


def arm_hard_deadline(ms: float) -> None:
    def fire():
        emit("hard-timeout", after_ms=ms)
        hard_exit(2)
    timer = threading.Timer(ms / 1000.0, fire)
    timer.daemon = True
    timer.start()


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--cluster", default="test-cluster")
    parser.add_argument("--client", required=True)
    parser.add_argument("--channel")
    parser.add_argument("--deadline", type=float, default=10000, help="ms")
    parser.add_argument("--connect-timeout", type=float, default=2000, help="ms")
    return parser


async def connect(args, **stan_kwargs) -> tuple[NATS, STAN] | None:
    """Core NATS connection, then the STAN session; None (after an error event) on failure."""
    nc = NATS()

    async def quiet(exc):  # the default error_cb logs a traceback per failed attempt
        sys.stderr.write(f"nats: {err_text(exc)}\n")

    try:
        await nc.connect(servers=[args.url], connect_timeout=args.connect_timeout / 1000.0,
                         max_reconnect_attempts=10, reconnect_time_wait=0.25,
                         name=args.client, error_cb=quiet)
    except Exception as exc:  # noqa: BLE001 - reported as an event
        emit("error", stage="connect", error=err_text(exc) or "nats: no servers available")
        return None
    sc = STAN()
    try:
        await sc.connect(args.cluster, args.client, nats=nc,
                         connect_timeout=args.connect_timeout / 1000.0, **stan_kwargs)
    except Exception as exc:  # noqa: BLE001
        emit("error", stage="connect", error=err_text(exc))
        await close_nats(nc)
        return None
    emit("connected", client=args.client, cluster=args.cluster)
    return nc, sc


async def close_nats(nc: NATS) -> None:
    try:
        await asyncio.wait_for(nc.close(), 3)
    except Exception:  # noqa: BLE001
        pass


async def close_session(nc: NATS, sc: STAN) -> None:
    """CloseRequest, then the NATS connection; reports `closed`."""
    error = None
    try:
        await asyncio.wait_for(sc.close(), 5)
    except Exception as exc:  # noqa: BLE001
        error = err_text(exc)
    emit("closed", error=error)
    await close_nats(nc)


def start_command_reader(loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
    """Lines of stdin, as lists of words, on a queue; ["eof"] when stdin ends."""
    queue: asyncio.Queue = asyncio.Queue()

    def reader():
        for line in sys.stdin:
            words = line.split()
            if words:
                loop.call_soon_threadsafe(queue.put_nowait, words)
        loop.call_soon_threadsafe(queue.put_nowait, ["eof"])

    threading.Thread(target=reader, daemon=True).start()
    return queue
