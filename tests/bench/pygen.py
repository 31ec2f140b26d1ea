"""nats-py load generator: what a Python application sees, under uvloop.

    python -m tests.bench.pygen pub HOST PORT N   # publish in a loop, then flush
    python -m tests.bench.pygen sub HOST PORT N   # subscribe with a counting callback

Same stdio handshake as rawgen (see ``child``). The subscriber's pending limits are
lifted so nats-py never drops a message as a slow consumer: it counts every one.
"""
from __future__ import annotations

import asyncio
import sys
import time

import nats
import uvloop

from . import child, wire

TIMEOUT_S = 60.0


async def _quiet(*_args) -> None:
    return None


async def _flush(nc) -> None:
    """A round trip that follows everything written so far.

    nats-py 2.16's ``flush`` writes its PING straight to the socket, ahead of the
    commands still buffered for its flusher task, and only then kicks that task. So
    the first PONG can come back before the server has read the last PUB (or the
    SUB); the second PING is written after the buffer, and its PONG is the proof.
    """
    await nc.flush(timeout=TIMEOUT_S)
    await nc.flush(timeout=TIMEOUT_S)


async def _connect(host: str, port: int):
    return await nats.connect(f"nats://{host}:{port}", allow_reconnect=False,
                              error_cb=_quiet, disconnected_cb=_quiet, closed_cb=_quiet)


async def publish(host: str, port: int, count: int) -> dict:
    nc = await _connect(host, port)
    child.ready()
    await asyncio.get_running_loop().run_in_executor(None, child.wait_go)
    subject, payload = wire.SUBJECT, wire.PAYLOAD
    t0, cpu0 = time.monotonic(), time.process_time()
    for _ in range(count):
        await nc.publish(subject, payload)
    await _flush(nc)
    t1, cpu1 = time.monotonic(), time.process_time()
    await nc.close()
    return {"t0": t0, "t1": t1, "cpu": cpu1 - cpu0, "count": count}


async def subscribe(host: str, port: int, count: int) -> dict:
    done = asyncio.Event()
    seen = {"n": 0, "t_first": None, "t_last": None}

    async def on_msg(_msg) -> None:
        seen["n"] += 1
        if seen["t_first"] is None:
            seen["t_first"] = time.monotonic()
        if seen["n"] == count:
            seen["t_last"] = time.monotonic()
            done.set()

    nc = await _connect(host, port)
    await nc.subscribe(wire.SUBJECT, cb=on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
    await _flush(nc)
    t_ready, cpu0 = time.monotonic(), time.process_time()
    child.ready(t_ready)
    try:
        await asyncio.wait_for(done.wait(), TIMEOUT_S)
    except asyncio.TimeoutError:
        pass
    t_last, cpu1 = seen["t_last"] or time.monotonic(), time.process_time()
    await nc.close()
    return {"t_ready": t_ready, "t_first": seen["t_first"] or t_last, "t_last": t_last,
            "cpu": cpu1 - cpu0, "count": seen["n"], "exact": seen["n"] == count}


def main(argv: list[str]) -> int:
    role, host, port, count = argv[0], argv[1], int(argv[2]), int(argv[3])
    result = uvloop.run((publish if role == "pub" else subscribe)(host, port, count))
    child.report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
