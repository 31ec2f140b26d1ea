"""Fallback Runnel node for the bench, used only while ``python -m broker`` cannot start.

    python -m tests.bench.runnel_launcher HOST PORT

Runs the core NATS server with its defaults under uvloop, as ``python -m broker``
does, until SIGINT or SIGTERM.
"""
from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from broker.server import NatsServer


async def serve(host: str, port: int) -> None:
    server = NatsServer(host, port)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    uvloop.run(serve(sys.argv[1], int(sys.argv[2])))
