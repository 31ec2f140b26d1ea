"""Network partitions between nodes in their own namespaces (chaos.netns).

* ``isolate-leader``: the leader can neither send to nor receive from any other node.
* ``halves``: a random minority against the majority, both ways.
* ``one-way``: one node stops receiving from the others, but they still receive it.
* ``bridge``: (5 nodes) two halves that can both reach one node in the middle.

Clients (in their own namespace) still reach every node: a client on the isolated side
sees its publishes time out (outcome unknown), as in Jepsen's partitions.
"""
from __future__ import annotations

from .cluster import Addressing
from .nemesis import Context, Kill, Nemesis, pick_leader
from .netns import Topology


def _num(node_id: str) -> str:
    return node_id.lstrip("n")


class Partition(Nemesis):
    def __init__(self, shape: str) -> None:
        self.shape = shape
        self.name = f"partition-{shape}"

    async def start(self, ctx: Context) -> list[str]:
        topo: Topology = ctx.extra["topology"]
        ids = [n.node_id for n in ctx.cluster.nodes]
        cuts = await self._cuts(ctx, ids)
        for dst, src in cuts:
            topo.block(_num(dst), _num(src))
        ctx.rec.record("note", text=f"{self.name}: dropping {sorted(cuts)} (dst, src)")
        return sorted({dst for dst, _ in cuts} | {src for _, src in cuts})

    async def _cuts(self, ctx: Context, ids: list[str]) -> list[tuple[str, str]]:
        rng = ctx.rng
        if self.shape == "isolate-leader":
            leader = (await pick_leader(ctx)).node_id
            return _both([leader], [i for i in ids if i != leader])
        if self.shape == "one-way":
            victim = rng.choice(ids)
            return [(victim, other) for other in ids if other != victim]
        if self.shape == "bridge" and len(ids) >= 5:
            shuffled = rng.sample(ids, len(ids))
            rest = shuffled[1:]  # shuffled[0] stays in the middle, heard by both
            half = len(rest) // 2
            return _both(rest[:half], rest[half:])
        shuffled = rng.sample(ids, len(ids))
        small = shuffled[: (len(ids) - 1) // 2]
        return _both(small, shuffled[len(small):])

    async def stop(self, ctx: Context) -> None:
        ctx.extra["topology"].heal()


def _both(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    return [(x, y) for x in a for y in b] + [(y, x) for x in a for y in b]


async def setup_inside(run_dir: str, n: int, rec) -> dict:
    """Inside the clients' namespace (the outer run made the topology)."""
    topo = Topology.from_env()
    assert topo is not None and topo.n == n, "netns scenarios run through chaos.run"
    addressing = Addressing(topo.node_hosts(), topo.node_wraps(), fixed_ports=True)
    return {"topology": topo, "addressing": addressing}


async def teardown_inside(helpers: dict) -> None:
    topo = helpers.get("topology")
    if topo is not None:
        topo.heal()


def scenarios():
    from .scenarios import Scenario
    net = dict(setup=setup_inside, teardown=teardown_inside, needs=("netns",))
    return [
        Scenario("partition-leader", lambda: [Partition("isolate-leader")],
                 "isolate the leader from every other node (both ways)", **net),
        Scenario("partition-halves", lambda: [Partition("halves")],
                 "a random minority cut from the majority (both ways)", **net),
        Scenario("partition-oneway", lambda: [Partition("one-way")],
                 "one node stops receiving from the others; they still hear it", **net),
        Scenario("partition-kill", lambda: [Partition("isolate-leader"), Partition("halves"),
                                            Kill("leader"), Kill("minority")],
                 "partitions and kills drawn at random", **net),
    ]
