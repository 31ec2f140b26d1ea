"""The scenario set: a name, the nemeses it draws from, the node flags and environment,
and whether the run is expected to be valid (the must-fail configurations are not).

``setup`` prepares what a scenario needs beyond processes (network namespaces, the
power-cut file system) and returns helpers for the nemeses; ``teardown`` removes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

from .nemesis import Kill, Nemesis, Pause
from .workload import WorkloadConfig

NO_SYNC = ("--cluster_sync=false", "--file_sync=false")
ACK_BEFORE_COMMIT = {"RUNNEL_UNSAFE_ACK_BEFORE_COMMIT": "1"}


async def _no_setup(run_dir: str, n: int, rec) -> dict:
    return {}


async def _no_teardown(helpers: dict) -> None:
    return None


@dataclass(frozen=True)
class Scenario:
    name: str
    nemeses: Callable[[], list[Nemesis]]
    summary: str
    flags: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    expect_valid: bool = True
    needs: tuple[str, ...] = ()  # "netns", "fuse": skipped where unavailable
    workload: WorkloadConfig = WorkloadConfig()
    quiet_s: tuple[float, float] = (3.0, 6.0)
    fault_s: tuple[float, float] = (2.5, 6.0)
    setup: Callable[[str, int, object], Awaitable[dict]] = _no_setup
    teardown: Callable[[dict], Awaitable[None]] = _no_teardown


def _kills() -> list[Scenario]:
    return [
        Scenario("kill-leader", lambda: [Kill("leader")], "kill -9 the Raft leader"),
        Scenario("kill-random", lambda: [Kill("random")], "kill -9 one node at random"),
        Scenario("kill-minority", lambda: [Kill("minority")], "kill -9 a minority of nodes"),
        Scenario("kill-all", lambda: [Kill("all")], "kill -9 every node at once",
                 fault_s=(1.0, 3.0)),
        Scenario("pause-leader", lambda: [Pause("leader")],
                 "SIGSTOP the leader for 2.5-6 s (election timeout 0.5-1 s), then SIGCONT"),
        Scenario("pause-random", lambda: [Pause("random"), Pause("minority")],
                 "SIGSTOP one node or a minority, then SIGCONT"),
        Scenario("mixed-process", lambda: [Kill("leader"), Kill("random"), Kill("all"),
                                           Pause("leader"), Pause("random")],
                 "kills and pauses drawn at random"),
    ]


def _must_fail() -> list[Scenario]:
    return [
        Scenario("broken-ack-before-commit", lambda: [Pause("leader"), Kill("leader")],
                 "MUST FAIL: a build that sends the PubAck before commit "
                 "(RUNNEL_UNSAFE_ACK_BEFORE_COMMIT=1); the leader paused or killed",
                 env=ACK_BEFORE_COMMIT, expect_valid=False, quiet_s=(1.0, 2.5),
                 workload=WorkloadConfig(rate_per_writer_hz=60.0)),
    ]


def registry() -> dict[str, Scenario]:
    scenarios = _kills() + _must_fail()
    for extra in _optional():
        scenarios += extra()
    return {s.name: s for s in scenarios}


def _optional() -> list[Callable[[], list[Scenario]]]:
    """Scenario families whose modules need more than processes."""
    out = []
    try:
        from .netfaults import scenarios as net
        out.append(net)
    except ImportError:
        pass
    try:
        from .diskfaults import scenarios as disk
        out.append(disk)
    except ImportError:
        pass
    return out


#: ``make chaos``: (scenario, seed, duration_s), about 10 minutes in all on 2 cores.
DEFAULT_SET: list[tuple[str, int, float]] = [
    ("kill-leader", 1, 40), ("kill-random", 2, 25), ("kill-minority", 3, 25),
    ("kill-all", 4, 25), ("pause-leader", 5, 25), ("pause-random", 6, 25),
    ("mixed-process", 7, 30), ("partition-leader", 8, 30), ("partition-halves", 9, 25),
    ("partition-oneway", 10, 25), ("partition-kill", 11, 30), ("power-cut-one", 12, 25),
    ("power-cut-all", 13, 25), ("corrupt-truncate", 14, 30), ("corrupt-bitflip", 15, 30),
    ("broken-ack-before-commit", 16, 15), ("nosync-power-cut", 17, 15),
]
