"""The supervisor's cluster: N nodes started together, watched, restarted, stopped.

Nodes the nemesis holds down (``held``) stay down until it heals them; any other node
that exits (a crash, a fatal error: exit 70) is noted and restarted by ``watch``.
Every wait polls an observable value (monitoring JSON) with a deadline.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from .nodes import Node, NodeSpec, free_port


@dataclass
class Addressing:
    """Where node i listens: ``host(i)``; ``wrap(i)`` prefixes its command."""

    hosts: list[str]
    wraps: list[list[str]]
    fixed_ports: bool = False  # every node in its own namespace: 4222, 8222, 6222

    @classmethod
    def loopback(cls, n: int) -> "Addressing":
        return cls(["127.0.0.1"] * n, [[] for _ in range(n)])


class Cluster:
    def __init__(self, run_dir: str, n: int, flags: list[str], env: dict,
                 addressing: Addressing | None = None, note=lambda text: None,
                 data_dirs: list[str] | None = None) -> None:
        addressing = addressing or Addressing.loopback(n)
        self.run_dir = run_dir
        self.data_dirs = data_dirs or [os.path.join(run_dir, "data", f"n{i + 1}") for i in range(n)]
        self.note = note
        self.held: set[str] = set()
        self.exits: list[tuple[str, int]] = []
        specs = [self._spec(i, addressing) for i in range(n)]
        peers = [s.peer for s in specs]
        self.nodes = [Node(s, peers, flags, env) for s in specs]
        self.by_id = {node.node_id: node for node in self.nodes}

    def _spec(self, i: int, addressing: Addressing) -> NodeSpec:
        node_id, host = f"n{i + 1}", addressing.hosts[i]
        ports = [4222, 8222, 6222] if addressing.fixed_ports else [free_port() for _ in range(3)]
        return NodeSpec(node_id, host, ports[0], ports[1], ports[2],
                        data_dir=self.data_dirs[i],
                        log_path=os.path.join(self.run_dir, "logs", f"{node_id}.log"),
                        wrap=addressing.wraps[i])

    @property
    def urls(self) -> list[str]:
        return [node.spec.url for node in self.nodes]

    def start(self) -> None:
        os.makedirs(os.path.join(self.run_dir, "logs"), exist_ok=True)
        for node in self.nodes:
            node.start()

    async def wait_ready(self, timeout_s: float = 30.0, nodes: list[Node] | None = None) -> str:
        """Until every given node (default: all) sees the same leader; returns its id."""
        nodes = nodes or self.nodes
        deadline = time.monotonic() + timeout_s
        while True:
            views = await asyncio.gather(*(asyncio.to_thread(n.clusterz) for n in nodes))
            leaders = {v.get("leader") if v else None for v in views}
            if len(leaders) == 1 and None not in leaders and "" not in leaders:
                return leaders.pop()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no agreed leader within {timeout_s}s: {leaders}")
            await asyncio.sleep(0.2)

    async def leader(self) -> Node | None:
        """The node that says it is the leader (None if none answers so)."""
        for node in self.nodes:
            view = await asyncio.to_thread(node.clusterz)
            if view and view.get("role") == "Leader":
                return node
        return None

    async def watch(self, stop: asyncio.Event, period_s: float = 0.5) -> None:
        """Restart nodes that exited on their own (not held down by the nemesis)."""
        while not stop.is_set():
            for node in self.nodes:
                if node.node_id in self.held or node.alive() or node.proc is None:
                    continue
                rc = node.returncode()
                self.exits.append((node.node_id, rc))
                self.note(f"{node.node_id} exited by itself with {rc}; restarting. "
                          f"log tail: {node.log_tail(8)}")
                node.start()
            try:
                await asyncio.wait_for(stop.wait(), period_s)
            except asyncio.TimeoutError:
                pass

    def heal_all(self) -> None:
        """Resume paused nodes and start every node that is down."""
        self.held.clear()
        for node in self.nodes:
            if node.paused:
                node.resume()
            if not node.alive():
                node.start()

    async def wait_converged(self, timeout_s: float = 30.0) -> bool:
        """Until every node reports the same applied index (and it stops moving)."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            views = await asyncio.gather(*(asyncio.to_thread(n.clusterz) for n in self.nodes))
            applied = [v.get("applied_index") if v else None for v in views]
            if None not in applied and len(set(applied)) == 1:
                if applied == last:
                    return True
                last = applied
            await asyncio.sleep(0.5)
        self.note(f"replicas did not converge within {timeout_s}s: applied {last}")
        return False

    def stop_all(self) -> dict[str, int | None]:
        return {node.node_id: node.stop() for node in self.nodes}

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()
