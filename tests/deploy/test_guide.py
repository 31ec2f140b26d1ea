"""The operator's guide (deploy/README.md), run as written against the compose file's three
services as local processes (tests/deploy/engine.py): bring up, clients, health, a node
killed under publish/subscribe traffic and replaced, restart everything, backup and
restore, upgrade one node at a time.

The tests share one cluster, in file order; each leaves three nodes up with a leader and
uses its own channel, so each can also run alone.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import nats
import pytest

from tests.deploy import guide
from tests.deploy.engine import LocalCompose, Service
from tests.support.stan import Stan, eventually

GUIDE = guide.tested()
COMPOSE = "docker compose -f deploy/docker-compose.yml"
DEADLINE_S = 30.0

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    engine = LocalCompose(tmp_path_factory.mktemp("compose"))
    try:
        engine.up_results = engine.run_block(GUIDE["up"])
        yield engine
    finally:
        engine.kill_all()


# -- observing the nodes --

def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return {"_status": exc.code}
    except OSError:
        return None


def leader(engine: LocalCompose, timeout: float = DEADLINE_S) -> Service:
    """The leader that every running node agrees on."""
    deadline = time.monotonic() + timeout
    while True:
        running = [s for s in engine.services.values() if s.running()]
        views = {s.name: get_json(f"{engine.monitor_url(s)}/streaming/serverz") or {}
                 for s in running}
        leaders = {view.get("leader") for view in views.values()}
        if len(leaders) == 1:
            name = leaders.pop()
            if name in views and views[name].get("role") == "Leader":
                return engine.services[name]
        if time.monotonic() > deadline:
            raise AssertionError(f"no agreed leader after {timeout}s: {views}")
        time.sleep(0.05)


def stored(engine: LocalCompose, service: Service, channel: str) -> int:
    view = get_json(f"{engine.monitor_url(service)}/streaming/channelsz?channel={channel}")
    return (view or {}).get("msgs", 0)


def wait_stored(engine: LocalCompose, channel: str, count: int, services=None) -> None:
    services = services or [s for s in engine.services.values() if s.running()]
    deadline = time.monotonic() + DEADLINE_S
    while True:
        counts = {s.name: stored(engine, s, channel) for s in services}
        if all(c == count for c in counts.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{channel}: expected {count} messages everywhere: {counts}")
        time.sleep(0.05)


def client_urls(engine: LocalCompose) -> dict[str, str]:
    """Service name -> the URL a client on the operator's machine uses (guide, section 2)."""
    [line] = GUIDE["clients"]
    urls = {}
    for url in line.split(","):
        address = engine.host_view(url).removeprefix("nats://").rsplit(":", 1)[0]
        [service] = [s for s in engine.services.values() if s.address == address]
        urls[service.name] = engine.host_view(url)
    assert sorted(urls) == sorted(engine.services), urls
    return urls


async def publish(url: str, client_id: str, channel: str, payloads: list[bytes]) -> None:
    client = await Stan.connect(url, client_id)
    try:
        for payload in payloads:
            await client.publish(channel, payload)
    finally:
        await client.close()


async def receive_all(url: str, client_id: str, channel: str, count: int) -> list[bytes]:
    """A new subscriber from the first message: exactly ``count`` messages, in order."""
    client = await Stan.connect(url, client_id)
    try:
        sub = await client.subscribe(channel)
        await eventually(lambda: len(sub.msgs) >= count, DEADLINE_S, f"{count} on {channel}")
        await asyncio.sleep(0.3)  # nothing more arrives
        assert [m.sequence for m in sub.msgs] == list(range(1, count + 1))
        return [m.data for m in sub.msgs]
    finally:
        await client.close()


def swap(a: str, b: str) -> dict[str, str]:
    return {} if a == b else {a: b, b: a}


# -- the guide --

def test_up_checks_each_node_then_starts_three_healthy_nodes(cluster):
    checks = cluster.up_results[:3]
    assert [r.out for r in checks] == ["configuration OK\n"] * 3
    assert all(s.running() for s in cluster.services.values())
    assert cluster.up_results[-1].out == "runnel-probe ready: ok\n"
    leader(cluster)


def test_health_and_metrics(cluster):
    healthz, serverz, ready, status, metrics = cluster.run_block(GUIDE["health"])
    assert healthz.out == '{"status":"ok"}'
    view = json.loads(serverz.out)
    assert view["state"] == "CLUSTERED" and view["node_id"] == "n1"
    assert view["role"] in ("Leader", "Follower") and view["leader"] in cluster.services
    assert ready.out == "runnel-probe ready: ok\n"
    assert status.out.startswith(f"cluster: 3 nodes, 3 answered, leader {view['leader']}\n")
    assert "# TYPE runnel_streaming_messages_in_total counter" in metrics.out


async def test_clients_keep_working_when_the_leader_is_killed_and_it_is_replaced(cluster):
    urls = client_urls(cluster)
    lost = leader(cluster)
    sub_node, pub_node = [s for s in cluster.services.values() if s is not lost]
    channel = "deploy.failover"
    subscriber = await Stan.connect(urls[sub_node.name], "deploy-sub")
    publisher = await Stan.connect(urls[pub_node.name], "deploy-pub")
    try:
        sub = await subscriber.subscribe(channel)
        for i in range(10):
            await publisher.publish(channel, b"before %d" % i)
        await eventually(lambda: len(sub.msgs) == 10, DEADLINE_S, "10 messages")

        cluster.sh(f"{COMPOSE} kill {lost.name}")           # the failure
        assert not lost.running()
        assert leader(cluster) is not lost
        for i in range(10):
            await publisher.publish(channel, b"after %d" % i)
        await eventually(lambda: len(sub.msgs) == 20, DEADLINE_S, "20 messages")
        assert [m.sequence for m in sub.msgs] == list(range(1, 21))
        assert [m.data for m in sub.msgs][9:11] == [b"before 9", b"after 0"]

        # its disk is lost too: the guide's replacement, with the lost node as "n3"
        cluster.run_block(GUIDE["replace"], rename=swap("n3", lost.name))
        assert lost.running()
        wait_stored(cluster, channel, 20)
        data = await receive_all(urls[lost.name], "deploy-check", channel, 20)
        assert data == [m.data for m in sub.msgs]
    finally:
        await publisher.close()
        await subscriber.close()


async def test_plain_nats_crosses_nodes_over_the_routes(cluster):
    urls = client_urls(cluster)
    subscriber = await nats.connect(urls["n1"], allow_reconnect=False)
    publisher = await nats.connect(urls["n3"], allow_reconnect=False)
    try:
        got = []

        async def received(msg):
            got.append(msg.data)
        await subscriber.subscribe("deploy.plain", cb=received)
        await subscriber.flush()
        deadline = time.monotonic() + DEADLINE_S
        while not got and time.monotonic() < deadline:   # until the interest has crossed
            await publisher.publish("deploy.plain", b"hello")
            await publisher.flush()
            await asyncio.sleep(0.1)
        assert got and set(got) == {b"hello"}
    finally:
        await publisher.close()
        await subscriber.close()


async def test_restart_everything(cluster):
    channel = "deploy.restart"
    url = client_urls(cluster)["n1"]
    await publish(url, "deploy-restart", channel, [b"%d" % i for i in range(5)])
    wait_stored(cluster, channel, 5)

    down, up, ready = cluster.run_block(GUIDE["restart"])
    assert down.out == "n1:143 n2:143 n3:143"   # SIGTERM: a graceful stop, status 143
    assert all(s.running() for s in cluster.services.values())
    wait_stored(cluster, channel, 5)
    for name, url in client_urls(cluster).items():
        assert await receive_all(url, f"deploy-restart-{name}", channel, 5) == \
            [b"%d" % i for i in range(5)]


async def test_backup_a_follower_then_restore_every_node(cluster):
    channel = "deploy.backup"
    follower = next(s for s in cluster.services.values() if s is not leader(cluster))
    rename = swap("n2", follower.name)
    urls = client_urls(cluster)
    await publish(urls["n1"], "deploy-backup", channel, [b"kept %d" % i for i in range(5)])
    wait_stored(cluster, channel, 5)

    cluster.run_block(GUIDE["backup"], rename=rename)
    assert (cluster.cwd / "backup" / f"runnel-{follower.name}.tgz").stat().st_size > 0
    assert all(s.running() for s in cluster.services.values())
    await publish(urls["n1"], "deploy-backup", channel, [b"lost %d" % i for i in range(5)])
    wait_stored(cluster, channel, 10)

    cluster.run_block(GUIDE["restore"], rename=rename)
    wait_stored(cluster, channel, 5)
    for name, url in urls.items():
        assert await receive_all(url, f"deploy-restore-{name}", channel, 5) == \
            [b"kept %d" % i for i in range(5)]
    await publish(urls["n3"], "deploy-backup", channel, [b"new"])
    wait_stored(cluster, channel, 6)


async def test_upgrade_one_node_at_a_time(cluster):
    channel = "deploy.upgrade"
    urls = client_urls(cluster)
    cluster.run_block(GUIDE["upgrade-image"])
    first_leader = leader(cluster)
    order = [s for s in cluster.services.values() if s is not first_leader] + [first_leader]
    for step, node in enumerate(order, 1):
        before = len(node.exit_codes)
        cluster.run_block(GUIDE["upgrade-node"], rename=swap("n3", node.name))
        assert node.exit_codes[before:] == [143]          # replaced with a graceful stop
        assert all(s.running() for s in cluster.services.values())
        await publish(urls[node.name], f"deploy-upgrade-{step}", channel, [b"%d" % step])
        wait_stored(cluster, channel, step)
    assert await receive_all(urls[first_leader.name], "deploy-upgrade", channel, 3) == \
        [b"1", b"2", b"3"]
