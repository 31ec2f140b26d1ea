"""Nemeses: named faults, each with ``start`` (inject) and ``stop`` (heal), and the
schedule that alternates them with quiet periods until the deadline.

Every fault is recorded as a ``nemesis`` event (phase start / stop) with the nodes it hit.
A health check (an agreed leader) runs before each fault; a fault whose start fails is
noted and healed.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from .cluster import Cluster
from .history import Recorder
from .nodes import Node


@dataclass
class Context:
    cluster: Cluster
    rec: Recorder
    rng: random.Random
    extra: dict = field(default_factory=dict)  # per-scenario helpers (network, power)


class Nemesis:
    name = "none"

    async def start(self, ctx: Context) -> list[str]:
        """Inject the fault; return the node ids it hit."""
        return []

    async def stop(self, ctx: Context) -> None:
        """Heal it."""


async def pick_leader(ctx: Context) -> Node:
    leader = await ctx.cluster.leader()
    return leader or ctx.rng.choice(ctx.cluster.nodes)


def minority(ctx: Context) -> list[Node]:
    nodes = list(ctx.cluster.nodes)
    ctx.rng.shuffle(nodes)
    return nodes[: (len(nodes) - 1) // 2]


class Kill(Nemesis):
    """kill -9 the target nodes; they stay down until ``stop`` restarts them."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = f"kill-{target}"
        self.hit: list[Node] = []

    async def targets(self, ctx: Context) -> list[Node]:
        if self.target == "leader":
            return [await pick_leader(ctx)]
        if self.target == "random":
            return [ctx.rng.choice(ctx.cluster.nodes)]
        if self.target == "minority":
            return minority(ctx)
        return list(ctx.cluster.nodes)

    async def start(self, ctx: Context) -> list[str]:
        self.hit = await self.targets(ctx)
        for node in self.hit:
            ctx.cluster.held.add(node.node_id)
            node.kill()
        return [n.node_id for n in self.hit]

    async def stop(self, ctx: Context) -> None:
        for node in self.hit:
            ctx.cluster.held.discard(node.node_id)
            if not node.alive():
                node.start()


class Pause(Nemesis):
    """SIGSTOP the target (longer than the election timeout), SIGCONT at ``stop``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = f"pause-{target}"
        self.hit: list[Node] = []

    async def start(self, ctx: Context) -> list[str]:
        if self.target == "leader":
            self.hit = [await pick_leader(ctx)]
        elif self.target == "minority":
            self.hit = minority(ctx)
        else:
            self.hit = [ctx.rng.choice(ctx.cluster.nodes)]
        for node in self.hit:
            ctx.cluster.held.add(node.node_id)
            node.pause()
        return [n.node_id for n in self.hit]

    async def stop(self, ctx: Context) -> None:
        for node in self.hit:
            node.resume()
            ctx.cluster.held.discard(node.node_id)


@dataclass
class Schedule:
    """Quiet for ``quiet_s``, fault held for ``fault_s`` (ranges, drawn from the seed)."""

    nemeses: list[Nemesis]
    quiet_s: tuple[float, float] = (3.0, 6.0)
    fault_s: tuple[float, float] = (2.5, 6.0)


async def run_schedule(ctx: Context, schedule: Schedule, deadline: float) -> int:
    """Alternate quiet periods and faults until ``deadline`` (monotonic); heal at the end.
    Returns the number of faults injected."""
    injected = 0
    while time.monotonic() < deadline:
        if not await _sleep_until(ctx.rng.uniform(*schedule.quiet_s), deadline):
            break
        nemesis = ctx.rng.choice(schedule.nemeses)
        await _healthy(ctx)
        hit = await _start(ctx, nemesis)
        injected += 1
        await _sleep_until(ctx.rng.uniform(*schedule.fault_s), deadline)
        await nemesis.stop(ctx)
        ctx.rec.record("nemesis", fault=nemesis.name, phase="stop", nodes=hit)
    return injected


async def _start(ctx: Context, nemesis: Nemesis) -> list[str]:
    try:
        hit = await nemesis.start(ctx)
    except Exception as exc:
        ctx.rec.record("note", text=f"{nemesis.name} failed to start: {exc!r}")
        hit = []
    ctx.rec.record("nemesis", fault=nemesis.name, phase="start", nodes=hit)
    return hit


async def _healthy(ctx: Context, timeout_s: float = 20.0) -> None:
    try:
        await ctx.cluster.wait_ready(timeout_s)
    except TimeoutError as exc:
        ctx.rec.record("note", text=f"unhealthy before a fault: {exc}")


async def _sleep_until(seconds: float, deadline: float) -> bool:
    """Sleep ``seconds`` but not past ``deadline``; False if the deadline came first."""
    remaining = deadline - time.monotonic()
    await asyncio.sleep(max(0.0, min(seconds, remaining)))
    return seconds < remaining
