"""Transparent continuation when nats-py reconnects to *another* server: a 3-node Runnel
cluster (tests/support/cluster.py), the client connected to one node that is then
killed. nats-py moves to another node of the list; the session, its PINGs and its
subscription continue there without the application doing anything."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from broker import client
from tests.support.cluster import CLUSTER_ID, Cluster

pytestmark = pytest.mark.timeout(90)


async def until(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def publish_retrying(conn: client.Connection, channel: str, data: str) -> None:
    """During an election a node may answer a publish with its Raft error (outcome
    unknown): an application retries, at-least-once, as this does."""
    deadline = time.monotonic() + 20
    while True:
        try:
            await conn.publish(channel, data)
            return
        except (client.ServerError, client.PublishAckTimeout):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture
async def cluster(tmp_path):
    made = Cluster(tmp_path / "cluster", 3)
    made.root.mkdir(parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(made.start)
        await asyncio.to_thread(made.leader)
        yield made
    finally:
        await asyncio.to_thread(made.close)


async def test_the_session_moves_with_the_connection_to_another_node(cluster):
    first = cluster.nodes[0]
    lost: list[client.StanError] = []
    conn = await client.connect(CLUSTER_ID, f"mover-{uuid.uuid4().hex[:6]}",
                                servers=cluster.urls(first), ping_interval=0.1, ping_max_out=100,
                                on_connection_lost=lambda c, e: lost.append(e),
                                nats_options={"dont_randomize": True, "reconnect_time_wait": 0.1})
    try:
        assert conn.nats_conn.connected_url.port == first.port
        got: list[client.Msg] = []
        await conn.subscribe("moving", got.append, durable_name="d")
        for i in (1, 2):
            await conn.publish("moving", f"before-{i}")
        await until(lambda: len(got) == 2, what="2 messages")
        await asyncio.sleep(0.2)

        await asyncio.to_thread(first.kill)
        await until(lambda: conn.nats_conn.is_connected and
                    conn.nats_conn.connected_url.port != first.port, what="the move")
        # After 3 more PINGs, none outstanding means the new node answered the last one.
        # (If the killed node was the leader, an election runs meanwhile: ~1-2 s.)
        await asyncio.sleep(0.3)
        await until(lambda: conn.pings_outstanding == 0 or lost, what="a PING answered")
        assert not lost, lost
        for i in (1, 2):
            await publish_retrying(conn, "moving", f"after-{i}")
        await until(lambda: {"after-1", "after-2"} <= {m.data.decode() for m in got},
                    what="messages published after the move")
        data = [m.data.decode() for m in got]
        assert data[:2] == ["before-1", "before-2"]
        after = [d for d in data[2:] if not d.startswith("before")]
        assert sorted(set(after)) == ["after-1", "after-2"]        # duplicates allowed
        assert after.index("after-1") < after.index("after-2")
        assert not lost and not conn.is_closed
    finally:
        if not conn.is_closed:
            await conn.close()
