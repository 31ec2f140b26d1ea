"""The Runnel client and node-nats-streaming (the official node client) read each other's
messages through a Runnel node, both ways, and share a queue group. The node side runs
the judges of tests/js/stan (see tests/stan/README.md) as separate processes; their
blocking waits run in a thread so that the client's event loop keeps going."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from broker import client
from broker.client import StartPosition
from tests.stan.conftest import CLUSTER, Judges, start_stan_node

pytestmark = pytest.mark.timeout(90)

COUNT = 5


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    started = start_stan_node(tmp_path_factory.mktemp("client-cross"), label="cross")
    yield started
    started.kill()


@pytest.fixture
def judges():
    made = Judges()
    yield made
    made.close()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def wait_for(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_node_publishes_and_this_client_receives(node, judges):
    channel = uid("from-node")
    conn = await client.connect(CLUSTER, uid("py-live"), servers=[node.url])
    try:
        live: list[client.Msg] = []
        await conn.subscribe(channel, live.append)
        await asyncio.to_thread(judges.publish, "node", node.url, uid("node-pub"), channel,
                                count=COUNT, data="node-{i}")
        await wait_for(lambda: len(live) == COUNT, what=f"{COUNT} messages from node")
        late: list[client.Msg] = []
        await conn.subscribe(channel, late.append, start_at=StartPosition.FIRST)
        await wait_for(lambda: len(late) == COUNT, what="the same messages from the start")
        for got in (live, late):
            assert [m.sequence for m in got] == list(range(1, COUNT + 1))
            assert [m.data for m in got] == [f"node-{i}".encode() for i in range(1, COUNT + 1)]
            assert not any(m.redelivered for m in got)
    finally:
        await conn.close()


async def test_this_client_publishes_and_node_receives(node, judges):
    channel = uid("from-py")
    live = await asyncio.to_thread(judges.sub, "node", node.url, uid("node-live"), channel,
                                   count=COUNT)
    async with await client.connect(CLUSTER, uid("py-pub"), servers=[node.url]) as conn:
        for i in range(1, COUNT + 1):
            await conn.publish(channel, f"py-{i}".encode())
    msgs = await asyncio.to_thread(live.wait_msgs, COUNT)
    assert [m["seq"] for m in msgs] == list(range(1, COUNT + 1)), live.describe()
    assert [m["data"] for m in msgs] == [f"py-{i}" for i in range(1, COUNT + 1)], live.describe()
    # and a node subscriber started afterwards reads them from the store
    late = await asyncio.to_thread(judges.sub, "node", node.url, uid("node-late"), channel,
                                   start="first", count=COUNT)
    msgs = await asyncio.to_thread(late.wait_msgs, COUNT)
    assert [m["data"] for m in msgs] == [f"py-{i}" for i in range(1, COUNT + 1)], late.describe()


async def test_publish_async_from_this_client_is_read_in_order_by_node(node, judges):
    channel, count = uid("async"), 200
    live = await asyncio.to_thread(judges.sub, "node", node.url, uid("node-live"), channel,
                                   count=count)
    async with await client.connect(CLUSTER, uid("py-pub"), servers=[node.url],
                                    max_pub_acks_inflight=32) as conn:
        acked: list[str] = []
        for i in range(1, count + 1):
            await conn.publish_async(channel, f"a-{i}", lambda g, e: acked.append(g) if e is None else None)
        await wait_for(lambda: len(acked) == count, what="every PubAck")
    msgs = await asyncio.to_thread(live.wait_msgs, count)
    assert [m["data"] for m in msgs] == [f"a-{i}" for i in range(1, count + 1)], live.describe()


async def test_a_queue_group_shared_with_a_node_member(node, judges):
    channel, count = uid("shared-queue"), 20
    node_member = await asyncio.to_thread(judges.sub, "node", node.url, uid("node-q"), channel,
                                          queue="workers", durable="dq")
    async with await client.connect(CLUSTER, uid("py-q"), servers=[node.url]) as conn:
        mine: list[client.Msg] = []
        await conn.subscribe(channel, mine.append, queue="workers", durable_name="dq")
        for i in range(1, count + 1):
            await conn.publish(channel, f"job-{i}")

        def total() -> int:
            return len(mine) + len(node_member.msgs)

        await wait_for(lambda: total() >= count, what=f"{count} jobs across both members")
        await asyncio.sleep(0.3)
        theirs = [m["seq"] for m in node_member.msgs]
        assert sorted([m.sequence for m in mine] + theirs) == list(range(1, count + 1)), \
            node_member.describe()
        assert mine and theirs, "both members got work"
