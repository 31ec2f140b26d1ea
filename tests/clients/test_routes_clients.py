"""Routes between real node processes (``python -m broker --cluster ... --routes ...``),
judged by nats-py: a client learns every node from INFO connect_urls, fails over to
another node when its own stops and keeps receiving what the others publish; a
restarted peer is linked again; a STAN request is answered by one node only.

Interest crosses nodes asynchronously, so a test first proves the path with probe
messages (publish until one arrives, bounded) before it counts anything.
"""
from __future__ import annotations

import asyncio
import uuid

import pytest

from broker.protocol.stan import ConnectRequest, ConnectResponse
from tests.support.clients import NatsPool, barrier, sync
from tests.support.procs import free_port, runnel_process

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def pool():
    pool = NatsPool()
    yield pool
    await pool.close_all()


@pytest.fixture
def mesh(tmp_path):
    """Three nodes; every one lists every route URL (its own included)."""
    route_ports = [free_port() for _ in range(3)]
    routes = ",".join(f"nats://127.0.0.1:{port}" for port in route_ports)
    nodes = [runnel_process(tmp_path, "--cluster", f"nats://127.0.0.1:{port}", "--routes", routes,
                            name=f"node{i}") for i, port in enumerate(route_ports)]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.kill()


async def path_open(pub_nc, sub, subject: str, timeout: float = 10.0) -> None:
    """Publish probes on ``subject`` until ``sub`` gets one; drain the probes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await pub_nc.publish(subject, b"probe")
        await sync(pub_nc)
        try:
            msg = await sub.next_msg(timeout=0.1)
        except Exception:
            if loop.time() > deadline:
                raise AssertionError(f"no route for {subject} within {timeout}s")
            continue
        assert msg.data == b"probe"
        break
    await asyncio.sleep(0.1)
    while sub.pending_msgs:
        assert (await sub.next_msg(timeout=1)).data == b"probe"


async def test_client_learns_the_cluster_and_fails_over_to_another_node(mesh, pool):
    a, b, c = mesh
    events_nc = await pool.connect(a.url, allow_reconnect=True, max_reconnect_attempts=50,
                                   reconnect_time_wait=0.1)
    urls = {f"127.0.0.1:{node.port}" for node in (b, c)}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while {u.netloc for u in events_nc.discovered_servers} != urls:
        assert loop.time() < deadline, f"discovered {events_nc.discovered_servers}"
        await asyncio.sleep(0.05)

    sub = await events_nc.subscribe("news")
    await barrier(events_nc)
    pub_b = await pool.connect(b.url)
    pub_c = await pool.connect(c.url)
    await path_open(pub_b, sub, "news")
    await path_open(pub_c, sub, "news")
    for i in range(20):
        await pub_b.publish("news", b"b-%d" % i)
        await pub_c.publish("news", b"c-%d" % i)
    await barrier(pub_b, pub_c)
    got = sorted([(await sub.next_msg(timeout=5)).data for _ in range(40)])
    assert got == sorted([b"b-%d" % i for i in range(20)] + [b"c-%d" % i for i in range(20)])

    a.stop()
    events = pool.events_of(events_nc)
    await asyncio.wait_for(events.reconnected.wait(), 15)
    assert events_nc.connected_url.netloc in urls
    await path_open(pub_b, sub, "news")
    await path_open(pub_c, sub, "news")
    for i in range(20):
        await pub_b.publish("news", b"after-b-%d" % i)
        await pub_c.publish("news", b"after-c-%d" % i)
    await barrier(pub_b, pub_c)
    got = sorted([(await sub.next_msg(timeout=5)).data for _ in range(40)])
    assert got == sorted([b"after-b-%d" % i for i in range(20)] +
                         [b"after-c-%d" % i for i in range(20)])
    await asyncio.sleep(0.2)
    assert sub.pending_msgs == 0


async def test_route_comes_back_after_a_peer_process_restart(tmp_path, pool):
    ports = [free_port(), free_port()]
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in ports)
    a, b = [runnel_process(tmp_path, "--cluster", f"nats://127.0.0.1:{p}", "--routes", routes,
                           name=f"peer{i}").start() for i, p in enumerate(ports)]
    try:
        sub_nc = await pool.connect(a.url)
        sub = await sub_nc.subscribe("restart.x")
        await barrier(sub_nc)
        pub = await pool.connect(b.url)
        await path_open(pub, sub, "restart.x")
        await pool.close_all()
        pool.conns.clear()

        b.kill()
        b.start()  # same ports: A's solicitor and B's own route find each other again
        sub_nc = await pool.connect(a.url)
        sub = await sub_nc.subscribe("restart.x")
        await barrier(sub_nc)
        pub = await pool.connect(b.url)
        await path_open(pub, sub, "restart.x")
        await pub.publish("restart.x", b"hello again", headers={"K": "v"})
        await sync(pub)
        msg = await sub.next_msg(timeout=5)
        assert (msg.data, msg.headers) == (b"hello again", {"K": "v"})
    finally:
        a.kill()
        b.kill()


async def test_stan_connect_request_is_answered_once_in_a_cluster(mesh, pool):
    a, b, c = mesh
    # wildcard subscribers on the other nodes pull everything across the routes
    watchers = []
    for node in (b, c):
        nc = await pool.connect(node.url)
        watchers.append(await nc.subscribe(">"))
    requester = await pool.connect(a.url)
    inbox_prefix = f"_INBOX.{uuid.uuid4().hex}"
    inbox = await requester.subscribe(inbox_prefix + ".*")
    await barrier(*pool.conns)
    await path_open(requester, watchers[0], "probe.b")
    await path_open(requester, watchers[1], "probe.c")

    request = ConnectRequest(clientID="routes-once", heartbeatInbox=f"_INBOX.{uuid.uuid4().hex}",
                             protocol=1, connID=b"conn-1", pingInterval=5, pingMaxOut=3)
    await requester.publish("_STAN.discover.test-cluster", request.SerializeToString(),
                            reply=inbox_prefix + ".1")
    await sync(requester)
    reply = await inbox.next_msg(timeout=10)
    response = ConnectResponse.FromString(reply.data)
    assert response.error == "" and response.pubPrefix
    await asyncio.sleep(0.5)  # a second node would have answered by now
    assert inbox.pending_msgs == 0
    for watcher in watchers:  # the request crossed (plain NATS), its answer did not
        seen = []
        while watcher.pending_msgs:
            seen.append((await watcher.next_msg(timeout=1)).subject)
        assert "_STAN.discover.test-cluster" in seen
        assert inbox_prefix + ".1" not in seen
