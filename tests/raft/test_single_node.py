"""A group of one: propose/apply, ordering, timeouts, errors."""

from __future__ import annotations

import asyncio
import socket

import pytest

from raft import (ApplyFailed, CommandTooLarge, NodeStopped, NoLeader, ProposalTimeout, RaftConfig,
                  RaftError)


async def test_propose_returns_apply_result_from_the_tick_thread(kit, tmp_path):
    m = kit.Machine()
    node = await kit.start(kit.config(tmp_path), m)
    await node.wait_leader(5)
    result = await node.propose(b"hello", timeout=5)
    assert result == ("applied", m.last_index)
    assert m.log == [(m.last_index, b"hello")]
    assert node.status().last_applied == m.last_index
    assert len(m.apply_thread) == 1 and m.apply_thread.pop().startswith("raft-tick-")


async def test_sequential_and_concurrent_proposals_keep_their_order(kit, tmp_path):
    m = kit.Machine()
    node = await kit.start(kit.config(tmp_path), m)
    sequential = [b"s%03d" % i for i in range(100)]
    for command in sequential:
        await node.propose(command, timeout=5)
    assert m.commands() == sequential

    concurrent = [b"c%04d" % i for i in range(2000)]
    results = await asyncio.gather(*(node.propose(c, timeout=20) for c in concurrent))
    by_index = dict(m.log)
    # every proposer got the result of ITS command, and indexes only grow
    assert [by_index[index] for _, index in results] == concurrent
    indexes = [i for i, _ in m.log]
    assert indexes == sorted(set(indexes))
    # one caller's proposals (gathered in order) are applied in that order
    assert m.commands()[len(sequential):] == concurrent


async def test_timeout_raises_no_leader_when_no_majority_is_reachable(kit, tmp_path):
    dead = [f"127.0.0.1:{p}" for p in kit.ports(2)]
    m = kit.Machine()
    node = await kit.start(kit.config(tmp_path, peers=tuple(dead)), m)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NoLeader) as info:
        await node.propose(b"never", timeout=0.3)
    assert isinstance(info.value, ProposalTimeout) and isinstance(info.value, TimeoutError)
    assert "cannot reach a majority" in str(info.value)
    assert 0.3 <= loop.time() - started < 2.0
    assert m.log == []


async def test_command_too_large_is_refused_before_proposing(kit, tmp_path):
    node = await kit.start(kit.config(tmp_path, command_bytes_max=1000), kit.Machine())
    with pytest.raises(CommandTooLarge):
        await node.propose(b"x" * 1001, timeout=1)


async def test_apply_exception_is_fatal_and_fails_the_pending_proposals(kit, tmp_path):
    m = kit.Machine()
    m.fail_on = b"bad"
    fatal = kit.Fatal()
    node = await kit.start(kit.config(tmp_path), m, fatal=fatal)
    await node.propose(b"good", timeout=5)
    with pytest.raises(NodeStopped):
        await node.propose(b"bad", timeout=5)
    assert len(fatal.errors) == 1 and isinstance(fatal.errors[0], ApplyFailed)
    with pytest.raises(NodeStopped):
        await node.propose(b"after", timeout=1)
    assert m.commands() == [b"good"]


async def test_start_fails_clearly_when_the_port_is_taken(kit, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        address = "127.0.0.1:%d" % busy.getsockname()[1]
        peers = tuple(f"127.0.0.1:{p}" for p in kit.ports(2))
        with pytest.raises(RaftError, match="cannot bind"):
            await kit.start(RaftConfig(self_address=address, data_dir=str(tmp_path), peers=peers),
                            kit.Machine())
    finally:
        busy.close()


async def test_stop_fails_waiting_proposals_and_refuses_new_ones(kit, tmp_path):
    dead = [f"127.0.0.1:{p}" for p in kit.ports(2)]
    node = await kit.start(kit.config(tmp_path, peers=tuple(dead)), kit.Machine())
    waiting = asyncio.ensure_future(node.propose(b"stuck", timeout=30))
    await kit.wait_until(lambda: node._pending, 5, "the proposal to be pending")
    await node.stop()
    with pytest.raises(NodeStopped):
        await waiting
    with pytest.raises(NodeStopped):
        await node.propose(b"later", timeout=1)


async def test_batch_end_hook_runs_after_each_ticks_applies_and_before_replies(kit, tmp_path):
    m = kit.Machine()
    ends: list[int] = []
    node = await kit.start(kit.config(tmp_path), m, on_apply_batch_end=ends.append)

    async def propose_and_check(command: bytes) -> None:
        _, index = await node.propose(command, timeout=20)
        # a state machine committing its transaction in the hook has done so
        assert ends and ends[-1] >= index

    await asyncio.gather(*(propose_and_check(b"p%04d" % i) for i in range(2000)))
    assert ends == sorted(ends) and ends[-1] == m.last_index
    assert len(ends) < 2000  # grouped: one call per tick, not per entry


async def test_a_group_of_one_binds_no_port(kit, tmp_path):
    (port,) = kit.ports(1)
    config = RaftConfig(self_address=f"127.0.0.1:{port}", data_dir=str(tmp_path))
    node = await kit.start(config, kit.Machine())
    await node.propose(b"x", timeout=5)
    with socket.socket() as probe:  # the port is still free
        probe.bind(("127.0.0.1", port))
