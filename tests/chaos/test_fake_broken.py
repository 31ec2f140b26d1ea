"""The checker must be able to fail: a simulated node that acknowledges before its
data is durable loses acknowledged publishes at a power cut, and the checker says so;
the same node acknowledging only after the fsync loses nothing."""
from __future__ import annotations

import random

import pytest

from chaos.checker import check

from .histories import FakeNode, H


def simulate(ack_before_commit: bool, seed: int) -> H:
    rng = random.Random(seed)
    node, h = FakeNode(ack_before_commit), H()
    counters = {"w1": 0, "w2": 0}
    cuts = 0
    for step in range(400):
        writer = rng.choice(sorted(counters))
        value = f"{writer}-{counters[writer]}"
        counters[writer] += 1
        h.invoke("c1", value)
        for acked in node.publish(value):
            h.done("c1", acked)
        if rng.random() < 0.2:
            for acked in node.fsync():
                h.done("c1", acked)
        if step in (150, 300):
            node.power_cut()
            cuts += 1
    assert cuts == 2
    h.sub("final", "c1", kind="final")
    for seq, value in enumerate(node.cache, 1):
        h.deliver("c1", seq, value)
    return h


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ack_before_commit_is_caught(seed):
    result = check(simulate(ack_before_commit=True, seed=seed).events)
    assert not result.valid
    assert "lost" in result.failures
    assert result.figures["lost"] > 0
    # the cut loses the unsynced tail of each writer, and writing went on after it:
    assert result.figures["lost_middle"] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ack_after_commit_loses_nothing(seed):
    result = check(simulate(ack_before_commit=False, seed=seed).events)
    assert result.valid, result.as_dict()
    assert result.figures["acknowledged"] > 200
