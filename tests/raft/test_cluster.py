"""A 3-node group on 127.0.0.1 (distinct free ports, in one process)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from raft import NoLeader, ProposalTimeout


class _Criticals(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.CRITICAL)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def criticals():
    handler = _Criticals()
    logger = logging.getLogger("pysyncobj")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


async def _all_applied(kit, group, index: int) -> None:
    await asyncio.gather(*(n.wait_applied(index, timeout=20) for n in group))


@pytest.mark.parametrize("fix_next_index", [True, False], ids=["monotonic-next-index", "pysyncobj-as-is"])
async def test_replicas_apply_the_same_sequence_under_pipelined_load(kit, tmp_path, criticals,
                                                                    fix_next_index):
    group, machines = await kit.cluster(tmp_path, fix_next_index=fix_next_index)
    leader = await kit.leader_of(group)
    term = leader.status().term
    followers = [n for n in group if n is not leader]
    # many proposals in flight, from the leader and from both followers
    proposals = [n.propose(b"%s-%05d" % (tag, i), timeout=30)
                 for i in range(1500) for tag, n in ((b"L", leader), (b"F", followers[0]),
                                                     (b"G", followers[1]))]
    results = await asyncio.gather(*proposals)
    assert all(kind == "applied" for kind, _ in results)
    last = max(index for _, index in results)
    await _all_applied(kit, group, last)
    assert machines[0].log == machines[1].log == machines[2].log
    assert len(machines[0].log) == 4500
    statuses = [n.status() for n in group]
    if fix_next_index and all(s.term == term for s in statuses):
        # no election happened: with the monotonic nextIndex no follower ever
        # re-received (and truncated) entries it already had
        assert [n._core.journal.truncated_entries for n in group] == [0, 0, 0]
        assert criticals == []


async def test_leader_kill_still_commits_on_the_remaining_two(kit, tmp_path):
    group, machines = await kit.cluster(tmp_path)
    leader = await kit.leader_of(group)
    for i in range(50):
        await leader.propose(b"before-%02d" % i, timeout=5)
    await leader.stop(flush=False)  # a crash
    survivors = [n for n in group if n is not leader]
    new_leader = await kit.leader_of(survivors)
    assert new_leader is not leader
    for i in range(50):
        await survivors[i % 2].propose(b"after-%02d" % i, timeout=5)
    live = [machines[group.index(n)] for n in survivors]
    last = new_leader.status().last_applied
    await _all_applied(kit, survivors, last)
    assert live[0].log == live[1].log
    assert live[0].commands() == ([b"before-%02d" % i for i in range(50)]
                                  + [b"after-%02d" % i for i in range(50)])

    # the crashed node comes back (same directory) and catches up
    old = machines[group.index(leader)]
    back = await kit.start(leader.config, old)
    await back.wait_applied(last, timeout=20)
    assert old.log == live[0].log


async def test_proposals_time_out_when_the_majority_is_gone(kit, tmp_path):
    group, _ = await kit.cluster(tmp_path, leader_fallback_s=1.0)
    leader = await kit.leader_of(group)
    await leader.propose(b"ok", timeout=5)
    for n in group:
        if n is not leader:
            await n.stop()
    # still leader for leader_fallback_s, but nothing can commit
    with pytest.raises(ProposalTimeout) as info:
        await leader.propose(b"stalled", timeout=0.3)
    assert not isinstance(info.value, NoLeader)
    # then it steps down: no leader, and the error says so
    await kit.wait_until(lambda: leader.status().leader is None, 10, "the leader to step down")
    with pytest.raises(NoLeader):
        await leader.propose(b"alone", timeout=0.3)
