"""Snapshots and log compaction."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from raft.snapshot import read_header


async def _snapshot(kit, node, timeout: float = 10.0) -> int:
    """Ask for a snapshot and wait until the journal was compacted to it."""
    before = node.status().snapshot_index
    node.snapshot_now()
    await kit.wait_until(lambda: node.status().snapshot_index > before
                         and node.status().log_first_index >= node.status().snapshot_index - 1,
                         timeout, "a snapshot and the log compaction")
    return node.status().snapshot_index


async def test_restart_replays_only_the_entries_after_the_snapshot(kit, tmp_path):
    config = kit.config(tmp_path)
    m = kit.Machine()
    node = await kit.start(config, m, snapshots=True)
    for i in range(50):
        await node.propose(b"a%02d" % i, timeout=5)
    index = await _snapshot(kit, node)
    assert read_header(os.path.join(config.data_dir, "raft.snapshot"))["index"] == index
    for i in range(10):
        await node.propose(b"t%02d" % i, timeout=5)
    last = node.status().last_applied
    await node.stop()

    fresh = kit.Machine()  # an empty state machine: restore_snapshot fills it
    node = await kit.start(config, fresh, snapshots=True)
    await node.wait_applied(last, timeout=5)
    assert fresh.log == m.log
    assert node.apply_calls == 10  # only the tail was replayed
    assert min(fresh.seen) > index


async def test_a_follower_too_far_behind_gets_the_snapshot(kit, tmp_path):
    group, machines = await kit.cluster(tmp_path, snapshots=True)
    leader = await kit.leader_of(group)
    lagging = next(n for n in group if n is not leader)
    await leader.propose(b"first", timeout=5)
    await lagging.stop()
    for i in range(100):
        await leader.propose(b"b%03d" % i, timeout=5)
    await _snapshot(kit, leader)
    await leader.propose(b"tail", timeout=5)
    last = leader.status().last_applied

    old = machines[group.index(lagging)]
    back = await kit.start(lagging.config, old, snapshots=True)
    await back.wait_applied(last, timeout=20)
    assert back._snapshots.restored == 1
    assert old.log == machines[group.index(leader)].log
    # it stays in the group: new entries reach it as usual
    await leader.propose(b"later", timeout=5)
    await back.wait_applied(leader.status().last_applied, timeout=10)
    assert old.commands()[-1] == b"later"


async def test_a_slow_snapshot_runs_in_the_background_and_heartbeats_go_on(kit, tmp_path):
    release = threading.Event()
    group, machines = await kit.cluster(tmp_path, snapshots=True)
    leader = await kit.leader_of(group)
    term = leader.status().term
    m = machines[group.index(leader)]

    def slow_take(index: int):
        def writer(f):
            release.wait(10)
            f.write(b"state at %d" % index)
        return writer

    m.take_snapshot = slow_take
    leader._take = leader._snapshots._take = slow_take
    leader.snapshot_now()
    await kit.wait_until(lambda: leader._snapshots._job is not None, 5, "the snapshot to start")
    # longer than an election timeout (0.5-1.0 s) while the writer is blocked
    for i in range(30):
        await leader.propose(b"during-%02d" % i, timeout=5)
        await asyncio.sleep(0.05)
    assert all(n.status().term == term for n in group)
    assert leader.status().snapshot_index == 0
    release.set()
    await kit.wait_until(lambda: leader.status().snapshot_index > 0, 5, "the snapshot to finish")


async def test_a_failing_take_snapshot_is_not_fatal(kit, tmp_path):
    m = kit.Machine()
    fatal = kit.Fatal()
    node = await kit.start(kit.config(tmp_path), m, snapshots=True, fatal=fatal)
    await node.propose(b"x", timeout=5)

    def broken(index: int):
        raise OSError("disk full")

    node._snapshots._take = broken
    node.snapshot_now()
    await kit.wait_until(lambda: node._snapshots._retry_at > 0, 5, "the failure to be noted")
    await node.propose(b"y", timeout=5)
    assert fatal.errors == [] and node.status().snapshot_index == 0


async def test_a_damaged_snapshot_stops_the_node_instead_of_running_without_state(kit, tmp_path):
    config = kit.config(tmp_path)
    node = await kit.start(config, kit.Machine(), snapshots=True)
    for i in range(5):
        await node.propose(b"c%d" % i, timeout=5)
    await _snapshot(kit, node)
    await node.stop()
    path = os.path.join(config.data_dir, "raft.snapshot")
    with open(path, "r+b") as f:
        f.seek(-3, os.SEEK_END)
        f.write(b"XXX")
    fatal = kit.Fatal()
    node = await kit.start(config, kit.Machine(), snapshots=True, fatal=fatal)
    await kit.wait_until(lambda: fatal.errors, 5, "the fatal error")
    with pytest.raises(Exception):
        await node.propose(b"no", timeout=1)
