"""Scenario 1 (issue 6 item 7): any node serves clients (ARCHITECTURE §4).

A client publishes on n2 and another consumes on n3; every acknowledged message
arrives in order, and all three replicas hold the same channel.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.cluster.stanclient import FailoverStan
from tests.support.cluster import check_acked

pytestmark = pytest.mark.timeout(60)


async def test_publish_on_node2_consume_on_node3(cluster, subs):
    n1, n2, n3 = cluster.nodes
    channel = "orders"
    consumer = subs([n3.url], "consumer", channel, start="first")
    consumer.wait_event("ready")

    publisher = await FailoverStan.connect([n2.url], "publisher")
    result = await publisher.publish_retrying(channel, "m", count=200, timeout=5.0)
    assert result.timeouts == 0 and not result.errors, (result.timeouts, result.errors)
    # a second, pipelined burst: batches of publishes coalesced into one command
    sent = [f"p-{i}".encode() for i in range(300)]
    errors = await asyncio.gather(*[publisher.publish_once(channel, d, 10.0) for d in sent])
    assert set(errors) == {None}, set(errors)
    assert await publisher.close() is None

    expected = [d.decode() for d in result.acked]
    await asyncio.to_thread(consumer.wait_until, lambda s: len(s.msgs) >= 500, 20,
                            "500 messages on n3")
    got = [m["data"] for m in consumer.msgs]
    assert [m["seq"] for m in consumer.msgs] == list(range(1, 501)), consumer.describe()
    assert got[:200] == expected
    assert sorted(got[200:]) == sorted(d.decode() for d in sent)
    assert {m["server"] for m in consumer.msgs} == {f"127.0.0.1:{n3.port}"}
    consumer.stop()

    contents = await asyncio.to_thread(cluster.check_consistent, [channel])
    check_acked(contents[channel], result.acked + sent[:0], "orders")
    assert len(contents[channel]) == 500
