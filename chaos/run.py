"""One chaos run: start the cluster, run workload and nemesis until the deadline, heal,
read everything back, stop, dump every replica, check, and keep what a failure needs.

Layout of a run directory (``chaos/runs/<scenario>-s<seed>`` by default):
``history.jsonl``, ``result.json``, ``logs/<node>.log``, ``data/<node>/`` (data dirs are
removed after a valid run unless ``keep``; kept after an invalid one).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from . import checker
from .cluster import Cluster
from .dump import dump_in_child
from .netns import ENV_KEY, Topology
from .nodes import REPO
from .final import final_read
from .history import Recorder, load
from .nemesis import Context, Schedule, run_schedule
from .scenarios import Scenario
from .workload import Workload

HERE = os.path.dirname(os.path.abspath(__file__))
STOP_GRACE_S = 15.0


@dataclass
class RunOutcome:
    scenario: str
    seed: int
    duration_s: float
    run_dir: str
    result: checker.Result
    faults: dict
    wall_s: float
    expect_valid: bool

    @property
    def as_expected(self) -> bool:
        return self.result.valid == self.expect_valid


def default_run_dir(name: str, seed: int) -> str:
    return os.path.join(HERE, "runs", f"{name}-s{seed}")


def run(scenario: Scenario, seed: int, duration_s: float, nodes: int = 3,
        run_dir: str | None = None, keep: bool = False) -> RunOutcome:
    run_dir = os.path.abspath(run_dir or default_run_dir(scenario.name, seed))
    if "netns" in scenario.needs and Topology.from_env() is None:
        _keep_failed(run_dir)
        return _run_in_netns(scenario, seed, duration_s, nodes, run_dir, keep)
    if Topology.from_env() is None:
        _keep_failed(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    started = time.monotonic()
    with _client_log(os.path.join(run_dir, "client.log")):
        outcome = asyncio.run(_run(scenario, seed, duration_s, nodes, run_dir))
    outcome.wall_s = round(time.monotonic() - started, 1)
    with open(os.path.join(run_dir, "result.json"), "w") as f:
        json.dump({"scenario": scenario.name, "seed": seed, "duration_s": duration_s,
                   "nodes": nodes, "faults": outcome.faults, "wall_s": outcome.wall_s,
                   "expect_valid": scenario.expect_valid, **outcome.result.as_dict()},
                  f, indent=1, default=str)
    if outcome.result.valid and not keep:
        shutil.rmtree(os.path.join(run_dir, "data"), ignore_errors=True)
    return outcome


def _keep_failed(run_dir: str) -> None:
    """A replay must not wipe the evidence: an earlier run there that was not valid (or
    did not finish) is renamed ``<dir>.<its time>`` first."""
    if not os.path.isdir(run_dir):
        return
    try:
        with open(os.path.join(run_dir, "result.json")) as f:
            if json.load(f).get("valid"):
                return
    except (OSError, ValueError):
        pass
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(os.path.getmtime(run_dir)))
    os.rename(run_dir, f"{run_dir}.{stamp}")


def _run_in_netns(scenario: Scenario, seed: int, duration_s: float, nodes: int,
                  run_dir: str, keep: bool) -> RunOutcome:
    """Build the namespaces, run this same scenario inside the clients' namespace
    (``python -m chaos ... --run-dir``), remove the namespaces, read its result."""
    topo = Topology(f"{os.getpid() % 0xFFFF:04x}", nodes)
    argv = ["ip", "netns", "exec", topo.ns("c"), sys.executable, "-m", "chaos",
            "--scenario", scenario.name, "--seed", str(seed), "--duration", str(duration_s),
            "--nodes", str(nodes), "--run-dir", run_dir] + (["--keep"] if keep else [])
    topo.destroy()
    try:
        topo.create()
        subprocess.run(argv, cwd=REPO, env={**os.environ, ENV_KEY: topo.to_env()},
                       timeout=duration_s + 300)
    finally:
        topo.destroy()
    with open(os.path.join(run_dir, "result.json")) as f:
        data = json.load(f)
    result = checker.Result(data["figures"], data["samples"], data["notes"])
    return RunOutcome(scenario.name, seed, duration_s, run_dir, result, data["faults"],
                      data["wall_s"], scenario.expect_valid)


class _client_log:
    """Send the client's and nats-py's log lines to the run's client.log, not stderr."""

    NAMES = ("runnel.client", "nats", "asyncio")

    def __init__(self, path: str) -> None:
        self.handler = logging.FileHandler(path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))

    def __enter__(self) -> None:
        for name in self.NAMES:
            logger = logging.getLogger(name)
            logger.addHandler(self.handler)
            logger.propagate = False

    def __exit__(self, *exc) -> None:
        for name in self.NAMES:
            logger = logging.getLogger(name)
            logger.removeHandler(self.handler)
            logger.propagate = True
        self.handler.close()


async def _run(scenario: Scenario, seed: int, duration_s: float, n: int,
               run_dir: str) -> RunOutcome:
    rec = Recorder(os.path.join(run_dir, "history.jsonl"))
    rec.record("meta", scenario=scenario.name, seed=seed, duration_s=duration_s, nodes=n,
               flags=list(scenario.flags), env=scenario.env)
    env_helpers = await scenario.setup(run_dir, n, rec)
    cluster = Cluster(run_dir, n, list(scenario.flags), dict(scenario.env),
                      addressing=env_helpers.get("addressing"),
                      note=lambda text: rec.record("note", text=text),
                      data_dirs=env_helpers.get("data_dirs"))
    try:
        faults = await _exercise(scenario, seed, duration_s, cluster, rec, env_helpers)
        await _read_back(scenario, cluster, rec)
    finally:
        cluster.kill_all()
        await scenario.teardown(env_helpers)
        rec.close()
    result = checker.check(load(rec.path))
    return RunOutcome(scenario.name, seed, duration_s, run_dir, result, faults, 0.0,
                      scenario.expect_valid)


async def _exercise(scenario: Scenario, seed: int, duration_s: float, cluster: Cluster,
                    rec: Recorder, helpers: dict) -> dict:
    cluster.start()
    await cluster.wait_ready(60)
    ctx = Context(cluster, rec, random.Random(seed), helpers)
    stop = asyncio.Event()
    workload = Workload(rec, cluster.urls, scenario.workload, seed)
    watch = asyncio.ensure_future(cluster.watch(stop))
    load_task = asyncio.ensure_future(workload.run(stop))
    deadline = time.monotonic() + duration_s
    schedule = Schedule(scenario.nemeses(), scenario.quiet_s, scenario.fault_s)
    try:
        await run_schedule(ctx, schedule, deadline)
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        stop.set()
        await _bounded(load_task, STOP_GRACE_S, rec, "workload")
        await _bounded(watch, STOP_GRACE_S, rec, "watch")
    return _fault_counts(rec)


def _fault_counts(rec: Recorder) -> dict:
    counts: dict[str, int] = {}
    for e in load(rec.path):
        if e["type"] == "nemesis" and e.get("phase") == "start":
            counts[e["fault"]] = counts.get(e["fault"], 0) + 1
    return counts


async def _bounded(task: asyncio.Future, timeout_s: float, rec: Recorder, what: str) -> None:
    try:
        await asyncio.wait_for(task, timeout_s)
    except asyncio.TimeoutError:
        rec.record("note", text=f"{what} did not stop within {timeout_s}s (cancelled)")
    except Exception as exc:
        rec.record("note", text=f"{what} failed: {exc!r}")


async def _read_back(scenario: Scenario, cluster: Cluster, rec: Recorder) -> None:
    """Heal, read every channel through a client, then dump every stopped replica."""
    cluster.heal_all()
    try:
        leader_id = await cluster.wait_ready(60)
    except TimeoutError as exc:
        rec.record("note", text=f"no leader after healing: {exc}")
        return
    try:
        await final_read(rec, cluster.by_id[leader_id], scenario.workload)
    except Exception as exc:
        rec.record("note", text=f"final read failed: {exc!r}")
    await cluster.wait_converged(30)
    for node_id, rc in cluster.stop_all().items():
        if rc not in (0, None, 143, -15):
            rec.record("note", text=f"{node_id} stopped with exit code {rc}")
    for node in cluster.nodes:
        dump, error = await asyncio.to_thread(
            dump_in_child, os.path.join(node.spec.data_dir, "store"))
        if dump is None:
            rec.record("note", text=f"cannot dump {node.node_id}: {error}")
        else:
            rec.record("dump", node=node.node_id, **dump)
