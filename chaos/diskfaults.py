"""Disk faults: a power cut of one node or of all nodes (chaos.powerfs under each data
directory), and truncation or bit flips in one node's files while it is down.

A power cut: kill -9 the node, SIGKILL its powerfs (what was not fsynced is gone),
detach the mount, mount again over the same backing directory, start the node.
A corruption: kill -9 the node, damage one of its files, start it. A node that then
refuses to start (as it must when it cannot verify its data) is noted with its log
tail, and repaired as an operator would: its data directory is wiped and it rejoins
empty, catching up from its peers.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time

from .nemesis import Context, Kill, Nemesis, pick_leader
from .nodes import REPO, Node

MOUNT_WAIT_S = 10.0
START_CHECK_S = 4.0


class PowerMount:
    """One powerfs process serving ``backing`` at ``mountpoint``."""

    def __init__(self, backing: str, mountpoint: str, log_path: str) -> None:
        self.backing, self.mountpoint, self.log_path = backing, mountpoint, log_path
        self.proc: subprocess.Popen | None = None

    def mount(self) -> None:
        os.makedirs(self.backing, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "chaos.powerfs", self.backing,
                                          self.mountpoint], stdout=log, stderr=subprocess.STDOUT,
                                         cwd=REPO, start_new_session=True)
        deadline = time.monotonic() + MOUNT_WAIT_S
        while not os.path.ismount(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"powerfs did not mount {self.mountpoint}")
            time.sleep(0.05)

    def cut(self) -> None:
        """The power goes out: unsynced writes vanish with the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)

    def unmount(self) -> None:
        self.cut()


async def setup_power(run_dir: str, n: int, rec) -> dict:
    mounts = [PowerMount(os.path.join(run_dir, "data", f"n{i + 1}"),
                         os.path.join(run_dir, "mnt", f"n{i + 1}"),
                         os.path.join(run_dir, f"powerfs-n{i + 1}.log")) for i in range(n)]
    for m in mounts:
        m.mount()
    return {"mounts": {f"n{i + 1}": m for i, m in enumerate(mounts)},
            "data_dirs": [m.mountpoint for m in mounts]}


async def teardown_power(helpers: dict) -> None:
    for m in helpers.get("mounts", {}).values():
        m.unmount()
    for m in helpers.get("mounts", {}).values():
        shutil.rmtree(os.path.dirname(m.mountpoint), ignore_errors=True)


class PowerCut(Nemesis):
    """Cut the power of one node (``target="one"``) or of all of them at once."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = f"power-cut-{target}"
        self.hit: list[Node] = []

    async def start(self, ctx: Context) -> list[str]:
        nodes = ctx.cluster.nodes
        self.hit = list(nodes) if self.target == "all" else [ctx.rng.choice(nodes)]
        mounts = ctx.extra["mounts"]
        for node in self.hit:  # all at the same instant: kill every node first
            ctx.cluster.held.add(node.node_id)
            node.kill()
        for node in self.hit:
            mounts[node.node_id].cut()
        return [n.node_id for n in self.hit]

    async def stop(self, ctx: Context) -> None:
        mounts = ctx.extra["mounts"]
        for node in self.hit:
            mounts[node.node_id].mount()
        for node in self.hit:
            ctx.cluster.held.discard(node.node_id)
            node.start()


class Corrupt(Nemesis):
    """kill -9 one node (the leader, or a random follower), damage one of its files
    while it is down (``truncate`` its tail or ``bitflip`` bits in it), start it."""

    def __init__(self, how: str, target: str = "leader") -> None:
        self.how, self.target = how, target
        self.name = f"corrupt-{how}"
        self.node: Node | None = None

    async def start(self, ctx: Context) -> list[str]:
        node = await pick_leader(ctx) if self.target == "leader" else ctx.rng.choice(
            ctx.cluster.nodes)
        self.node = node
        ctx.cluster.held.add(node.node_id)
        node.kill()
        path = _victim_file(node.spec.data_dir, ctx)
        detail = damage(path, self.how, ctx)
        ctx.rec.record("note", text=f"{self.name} {node.node_id}: {detail}")
        return [node.node_id]

    async def stop(self, ctx: Context) -> None:
        node = self.node
        node.start()
        await asyncio.sleep(START_CHECK_S)
        if not node.alive():
            ctx.rec.record("note", text=f"{node.node_id} refused to start after {self.name} "
                                        f"(exit {node.returncode()}); wiping its data. "
                                        f"log tail: {node.log_tail(6)}")
            wipe(node.spec.data_dir)
            node.start()
        ctx.cluster.held.discard(node.node_id)


def _victim_file(data_dir: str, ctx: Context) -> str:
    """The Raft journal or the store's data file, chosen by the seed."""
    candidates = [os.path.join(data_dir, "raft", "raft.log"),
                  os.path.join(data_dir, "store", "data.mdb")]
    existing = [p for p in candidates if os.path.exists(p) and os.path.getsize(p) > 0]
    return ctx.rng.choice(existing or candidates[:1])


def damage(path: str, how: str, ctx: Context) -> str:
    if not os.path.exists(path):
        return f"{path} missing, nothing damaged"
    size = os.path.getsize(path)
    rel = "/".join(path.split(os.sep)[-2:])
    if how == "truncate":
        cut = ctx.rng.randint(1, max(1, min(size, 64 * 1024)))
        os.truncate(path, size - cut)
        return f"truncated {rel} from {size} to {size - cut} bytes"
    flips = []
    with open(path, "r+b") as f:
        for _ in range(ctx.rng.randint(1, 8)):
            offset = ctx.rng.randrange(size)
            f.seek(offset)
            byte = f.read(1)[0] ^ (1 << ctx.rng.randrange(8))
            f.seek(offset)
            f.write(bytes([byte]))
            flips.append(offset)
    return f"flipped bits in {rel} ({size} bytes) at offsets {sorted(flips)}"


def wipe(data_dir: str) -> None:
    for name in os.listdir(data_dir):
        path = os.path.join(data_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)


def scenarios():
    from .scenarios import NO_SYNC, Scenario
    power = dict(setup=setup_power, teardown=teardown_power, needs=("fuse",))
    return [
        Scenario("power-cut-one", lambda: [PowerCut("one")],
                 "power cut of one node: its unsynced writes are discarded (chaos.powerfs)",
                 **power),
        Scenario("power-cut-all", lambda: [PowerCut("all")],
                 "power cut of every node at once (chaos.powerfs)", fault_s=(1.0, 2.0),
                 **power),
        Scenario("nosync-power-cut", lambda: [PowerCut("all")],
                 "MUST FAIL: --cluster_sync=false --file_sync=false, then power cuts of "
                 "every node", flags=NO_SYNC, expect_valid=False, fault_s=(1.0, 2.0),
                 quiet_s=(2.0, 4.0), **power),
        Scenario("corrupt-truncate", lambda: [Corrupt("truncate"), Kill("leader")],
                 "the leader's Raft journal or store truncated while it is down; kills"),
        Scenario("corrupt-bitflip", lambda: [Corrupt("bitflip"), Kill("leader")],
                 "bits flipped in the leader's journal or store while it is down; kills"),
    ]
