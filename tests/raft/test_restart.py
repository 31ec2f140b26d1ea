"""Restart: pysyncobj replays its journal; apply sees the indexes it already
applied and the state machine skips them."""

from __future__ import annotations

import dataclasses


async def test_replay_after_restart_shows_applied_indexes_and_changes_nothing(kit, tmp_path):
    m = kit.Machine()  # survives the restart, as an LMDB store would
    config = kit.config(tmp_path)
    node = await kit.start(config, m)
    for i in range(20):
        await node.propose(b"a%02d" % i, timeout=5)
    before = list(m.log)
    last = m.last_index
    await node.stop()

    m.seen.clear()
    node = await kit.start(config, m)
    await node.wait_applied(last, timeout=5)
    # the replay handed apply every old index again, in order; all were skipped
    assert [i for i in m.seen if i <= last] == [i for i, _ in before]
    assert m.skipped == [i for i, _ in before]
    assert m.log == before
    result = await node.propose(b"new", timeout=5)
    assert result[0] == "applied" and result[1] > last
    assert m.commands() == [c for _, c in before] + [b"new"]


async def test_a_fresh_state_machine_is_rebuilt_from_the_journal(kit, tmp_path):
    config = kit.config(tmp_path)
    m = kit.Machine()
    node = await kit.start(config, m)
    for i in range(30):
        await node.propose(b"b%02d" % i, timeout=5)
    await node.stop()

    fresh = kit.Machine()
    node = await kit.start(config, fresh)
    await node.propose(b"marker", timeout=5)  # applied after everything before it
    assert fresh.log[:-1] == m.log
    assert fresh.skipped == []


async def test_the_commit_hint_lets_a_restart_apply_before_any_election(kit, tmp_path):
    # A peer that never answers: no election can be won after the restart.
    dead = f"127.0.0.1:{kit.ports(1)[0]}"
    config = kit.config(tmp_path)
    m = kit.Machine()
    node = await kit.start(config, m)
    for i in range(10):
        await node.propose(b"c%02d" % i, timeout=5)
    await node.stop()  # writes the commit hint

    alone = dataclasses.replace(config, peers=(dead,))
    fresh = kit.Machine()
    node = await kit.start(alone, fresh)
    await kit.wait_until(lambda: fresh.log == m.log, 5, "replay up to the commit hint")
    assert node.status().leader is None
