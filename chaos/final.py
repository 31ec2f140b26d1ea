"""After the faults: a final read of every channel through a client, and each node's
replica read from its store once the nodes are stopped.

The final reader subscribes to every channel from the first message (non-durable,
manual acks, a large MaxInflight) and reads until it holds every seq up to the
channel's last seq as the node it is connected to reports it (``/streaming/channelsz``),
or until the deadline.
"""
from __future__ import annotations

import asyncio
import time

from broker import client

from .history import Recorder
from .nodes import Node
from .workload import WorkloadConfig, close_quietly, open_session

FINAL_MAX_INFLIGHT = 4096


async def final_read(rec: Recorder, node: Node, cfg: WorkloadConfig,
                     timeout_s: float = 30.0) -> dict[str, int]:
    """Read every channel through ``node``; returns the highest seq read per channel."""
    stop = asyncio.Event()
    conn = await asyncio.wait_for(
        open_session(f"final-{int(time.time())}", [node.spec.url], cfg, stop), timeout_s)
    seen: dict[str, set[int]] = {ch: set() for ch in cfg.channel_names()}
    try:
        for channel in cfg.channel_names():
            await _subscribe(conn, rec, channel, seen[channel])
        await _until_complete(rec, node, seen, timeout_s)
    finally:
        await close_quietly(conn)
    return {ch: max(s, default=0) for ch, s in seen.items()}


async def _subscribe(conn, rec: Recorder, channel: str, seen: set[int]) -> None:
    name = f"final-{channel}"

    async def on_msg(msg: client.Msg) -> None:
        seen.add(msg.sequence)
        rec.record("deliver", subscriber=name, channel=channel, seq=msg.sequence,
                   value=msg.data.decode(errors="replace"), redelivered=msg.redelivered)
        try:
            await msg.ack()
        except client.StanError:
            pass

    await conn.subscribe(channel, on_msg, start_at=client.StartPosition.FIRST,
                         max_inflight=FINAL_MAX_INFLIGHT, ack_wait=30, manual_acks=True)
    rec.record("sub", subscriber=name, channel=channel, kind="final",
               max_inflight=FINAL_MAX_INFLIGHT)


async def _until_complete(rec: Recorder, node: Node, seen: dict[str, set[int]],
                          timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = {ch: await _last_seq(node, ch) for ch in seen}
        if all(last[ch] is not None and all(s in seen[ch] for s in range(1, last[ch] + 1))
               for ch in seen):
            return
        await asyncio.sleep(0.5)
    rec.record("note", text=f"final read incomplete after {timeout_s}s: "
                            f"{ {ch: len(s) for ch, s in seen.items()} }")


async def _last_seq(node: Node, channel: str) -> int | None:
    data = await asyncio.to_thread(node.get_json, f"/streaming/channelsz?channel={channel}")
    if data is None:
        return 0 if node.alive() else None  # a channel never published to: 404
    return data.get("last_seq", 0)
