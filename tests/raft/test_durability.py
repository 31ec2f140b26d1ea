"""The durability contract (ARCHITECTURE.md §3), proved with a file layer that
forgets every unsynced byte at a simulated power cut (raft.faultfs).

The same scenario runs with sync on and off: with sync every acknowledged
proposal survives; without, acknowledged proposals are lost, which shows the
check can fail."""

from __future__ import annotations

import asyncio
import dataclasses

from raft.faultfs import PowerCutFS
from raft.journal import MetaStore

PROPOSALS = 3000
ACKED_BEFORE_CUT = 400
FSYNC_S = 0.002  # a disk's fsync latency: replies sent before their fsync get caught
FOLLOWER_FSYNC_S = 0.05


async def _propose_then_cut(kit, group, filesystems, leader) -> set[bytes]:
    """Pipeline proposals, crash every node mid-stream, cut the power.
    Returns the commands whose proposal was acknowledged before the crash."""
    tasks = [asyncio.ensure_future(leader.propose(b"cmd-%05d" % i, timeout=30))
             for i in range(PROPOSALS)]
    acked = lambda: [t for t in tasks if t.done() and not t.exception()]  # noqa: E731
    await kit.wait_until(lambda: len(acked()) >= ACKED_BEFORE_CUT, 30, "acknowledgements")
    for fs in filesystems:
        fs.freeze()  # the power goes out: what is not fsynced by now is lost
    snapshot = {b"cmd-%05d" % i for i, t in enumerate(tasks) if t in set(acked())}
    await asyncio.gather(*(n.stop(flush=False) for n in group))
    await asyncio.gather(*tasks, return_exceptions=True)
    for fs in filesystems:
        fs.power_cut()
    return snapshot


async def _recovered(kit, configs) -> set[bytes]:
    machines = [kit.Machine() for _ in configs]
    group = [await kit.start(c, m) for c, m in zip(configs, machines)]
    leader = await kit.leader_of(group)
    await leader.propose(b"marker", timeout=10)  # every committed entry is applied before it
    m = machines[group.index(leader)]
    return set(m.commands()) - {b"marker"}


async def _run_single(kit, tmp_path, sync: bool) -> tuple[set[bytes], set[bytes]]:
    data = tmp_path / "node"
    data.mkdir()
    fs = PowerCutFS(str(data), fsync_delay_s=FSYNC_S)
    config = kit.config(tmp_path, name="node", sync=sync, fs=fs)
    node = await kit.start(config, kit.Machine())
    await node.wait_leader(5)
    acked = await _propose_then_cut(kit, [node], [fs], node)
    return acked, await _recovered(kit, [config])


async def test_power_cut_keeps_every_acknowledged_proposal(kit, tmp_path):
    acked, recovered = await _run_single(kit, tmp_path, sync=True)
    assert len(acked) >= ACKED_BEFORE_CUT
    assert acked - recovered == set()


async def test_power_cut_without_sync_loses_acknowledged_proposals(kit, tmp_path):
    acked, recovered = await _run_single(kit, tmp_path, sync=False)
    assert len(acked) >= ACKED_BEFORE_CUT
    assert acked - recovered, "sync=False should lose acknowledged entries at a power cut"


async def _run_cluster(kit, tmp_path, sync: bool) -> tuple[set[bytes], set[bytes]]:
    filesystems = [PowerCutFS() for _ in range(3)]
    group, _ = await kit.cluster(tmp_path, sync=sync, fs_per_node=filesystems)
    for n, fs in zip(group, filesystems):
        fs.track(n.config.data_dir)
    leader = await kit.leader_of(group)
    for n, fs in zip(group, filesystems):
        # slow follower disks: an acknowledgement sent before its fsync
        # would reach the client long before the fsync is done
        fs.fsync_delay_s = 0.0 if n is leader else FOLLOWER_FSYNC_S
    acked = await _propose_then_cut(kit, group, filesystems, leader)
    # Restart the two FOLLOWERS only: an entry acknowledged when fsynced on a
    # majority is on at least one of them, and the longer log wins the election.
    return acked, await _recovered(kit, [n.config for n in group if n is not leader])


async def test_power_cut_of_a_whole_group_keeps_every_acknowledged_proposal(kit, tmp_path):
    acked, recovered = await _run_cluster(kit, tmp_path, sync=True)
    assert acked - recovered == set()


async def test_power_cut_of_a_whole_group_without_sync_loses_proposals(kit, tmp_path):
    acked, recovered = await _run_cluster(kit, tmp_path, sync=False)
    assert acked - recovered


async def test_term_and_vote_are_fsynced(kit, tmp_path):
    data = tmp_path / "node"
    data.mkdir()
    fs = PowerCutFS(str(data))
    # sync=False turns off journal fsync only: term and vote stay durable
    config = kit.config(tmp_path, name="node", sync=False, fs=fs)
    node = await kit.start(config, kit.Machine())
    await node.wait_leader(5)
    term = node.status().term
    await node.stop(flush=False)
    fs.power_cut()
    assert MetaStore(fs, str(data)).load_term() == (term, config.self_address)
    node = await kit.start(dataclasses.replace(config), kit.Machine())
    await node.wait_leader(5)
    assert node.status().term > term
