"""Real chaos runs against a local 3-node cluster: the smoke run (kill the leader, ~40 s)
must be valid, and the two broken configurations must be reported as losing data.
Each keeps its history, node logs and data directories under pytest's tmp_path."""
from __future__ import annotations

import pytest

from chaos.run import run
from chaos.scenarios import registry
from chaos.support import unavailable


def _run(name: str, seed: int, duration_s: float, tmp_path):
    scenario = registry()[name]
    why = unavailable(scenario.needs)
    if why:
        pytest.skip(why)
    outcome = run(scenario, seed, duration_s, run_dir=str(tmp_path / name), keep=True)
    figures = outcome.result.figures
    where = f"{name} seed {seed}: {outcome.result.failures} in {outcome.run_dir}"
    return outcome, figures, where


@pytest.mark.timeout(150)
def test_smoke_kill_leader(tmp_path):
    outcome, f, where = _run("kill-leader", 1, 40, tmp_path)
    assert outcome.result.valid, where
    assert outcome.faults.get("kill-leader", 0) >= 3, outcome.faults
    assert f["acknowledged"] > 500 and f["read"] >= f["acknowledged"], f
    assert f["dumps"] == 3 and f["max_outstanding"] > 0, f


@pytest.mark.timeout(120)
def test_ack_before_commit_build_is_caught(tmp_path):
    outcome, f, where = _run("broken-ack-before-commit", 7, 15, tmp_path)
    assert not outcome.result.valid, where
    assert f["lost"] > 0, (where, f)


@pytest.mark.timeout(120)
def test_fsync_off_with_power_cuts_is_caught(tmp_path):
    outcome, f, where = _run("nosync-power-cut", 1, 15, tmp_path)
    assert not outcome.result.valid, where
    assert f["lost"] > 0, (where, f)
