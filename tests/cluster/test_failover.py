"""Scenarios 2-4 (issue 6 item 7): nodes killed with SIGKILL while clients work.

2. kill -9 the leader mid-stream: publishers retrying timed-out publishes keep
   going; the longest time without a PubAck is measured and printed;
3. kill -9 the node a subscriber is connected to: node-nats-streaming reconnects
   to another node, pings, and delivery resumes without re-subscribing;
4. a durable queue group with members on all three nodes while one node is killed.

After each: no acknowledged message missing, per-channel order kept, replicas
identical (monitoring views, STAN reads on every node, then the LMDB stores).
"""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.cluster.stanclient import FailoverStan, PubResult
from tests.support.cluster import check_acked

#: A publish without PubAck for this long is retried (with a new guid).
PUB_TIMEOUT = 0.5

pytestmark = pytest.mark.timeout(120)


def log(text: str) -> None:
    print(f"\n[cluster] {text}", flush=True)


async def wait_acks(result: PubResult, n: int, since: float, timeout: float, what: str,
                    cluster=None, client: FailoverStan | None = None):
    deadline = time.monotonic() + timeout
    while sum(1 for t in result.ack_times if t > since) < n:
        if time.monotonic() > deadline:
            details = ""
            if client is not None:
                details += (f"\nclient on {client.server}: NATS events {client.events}; "
                            f"ping errors {client.ping_errors[-3:]}")
            if cluster is not None:
                views = await asyncio.to_thread(cluster.clusterz)
                details += f"\nclusterz {views}\n{cluster.logs_tail(4000)}"
            raise AssertionError(f"{what}: {sum(1 for t in result.ack_times if t > since)} "
                                 f"PubAcks (wanted {n}) within {timeout}s; {result.timeouts} "
                                 f"timeouts, errors {result.errors[-5:]}{details}")
        await asyncio.sleep(0.02)


def outage(result: PubResult, killed_at: float) -> tuple[float, float]:
    """The longest time without a PubAck from the last ack before the kill on, and
    when it began relative to the kill (the publisher retries after PUB_TIMEOUT, so
    the gap is at least that once a publish was lost in the failover)."""
    before = [t for t in result.ack_times if t <= killed_at]
    gap, began = result.longest_gap(since=before[-1] if before else killed_at)
    return gap, began - killed_at


def _gap_before(result: PubResult, killed_at: float) -> float:
    times = [t for t in result.ack_times if t <= killed_at]
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


async def test_kill_leader_mid_stream(cluster, subs):
    channel = "stream"
    leader = await asyncio.to_thread(cluster.leader)
    f1, f2 = [n for n in cluster.nodes if n is not leader]
    reader = subs(cluster.urls(f2), "reader", channel, start="first")
    await asyncio.to_thread(reader.wait_event, "ready")

    on_follower = await FailoverStan.connect(cluster.urls(f1), "pub-follower")
    on_leader = await FailoverStan.connect(cluster.urls(leader), "pub-leader")
    stop = asyncio.Event()
    results = {"follower": PubResult(), "leader": PubResult()}
    tasks = [asyncio.ensure_future(client.publish_retrying(channel, prefix, stop=stop,
                                                           timeout=PUB_TIMEOUT,
                                                           result=results[prefix]))
             for client, prefix in ((on_follower, "follower"), (on_leader, "leader"))]
    try:
        for name, result in results.items():
            await wait_acks(result, 100, 0, 20, f"publisher on the {name} before the kill")
        killed_at = time.monotonic()
        leader.kill()
        for name, result in results.items():
            await wait_acks(result, 100, killed_at, 30, f"publisher on the {name}",
                            cluster, on_follower if name == "follower" else on_leader)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        task.result()
    new_leader = await asyncio.to_thread(cluster.leader)
    assert new_leader is not leader

    for name, result in results.items():
        gap, began = outage(result, killed_at)
        log(f"leader {leader.node_id} killed; publisher on the {name}: longest gap without "
            f"PubAck {gap:.3f}s (from {began:+.3f}s after the kill; before the kill "
            f"{_gap_before(result, killed_at):.3f}s); "
            f"{len(result.acked)} acked, {result.timeouts} timeouts, {len(result.errors)} errors "
            f"{sorted({e for _, e in result.errors})[:3]}")
    log(f"new leader {new_leader.node_id}; publisher that was on the leader now on "
        f"{on_leader.server}; NATS events {on_leader.events}")
    assert await on_follower.close() is None
    assert await on_leader.close() is None

    acked = results["follower"].acked + results["leader"].acked
    expected = {a.decode() for a in acked}
    await asyncio.to_thread(reader.wait_until, lambda s: expected <= s.datas, 20,
                            "every acked message at the reader on the surviving follower")
    reader.stop()

    await asyncio.to_thread(cluster.restart, leader)
    contents = await asyncio.to_thread(cluster.check_consistent, [channel])
    for name, result in results.items():
        check_acked(contents[channel], result.acked, f"publisher on the {name}")


async def test_kill_the_node_a_subscriber_is_connected_to(cluster, subs):
    channel = "feed"
    leader = await asyncio.to_thread(cluster.leader)
    home, other = [n for n in cluster.nodes if n is not leader]
    sub = subs(cluster.urls(home), "follower-sub", channel, start="first", ack_wait=3,
               max_inflight=50, ping_interval=1000)
    await asyncio.to_thread(sub.wait_event, "ready")
    assert sub.of("ready")[0]["server"] == f"127.0.0.1:{home.port}", sub.describe()

    publisher = await FailoverStan.connect(cluster.urls(other), "feeder")
    stop = asyncio.Event()
    result = PubResult()
    task = asyncio.ensure_future(publisher.publish_retrying(channel, "f", stop=stop,
                                                            timeout=PUB_TIMEOUT, result=result))
    try:
        await wait_acks(result, 100, 0, 20, "publisher before the kill")
        await asyncio.to_thread(sub.wait_until, lambda s: len(s.msgs) >= 50, 10,
                                "deliveries before the kill")
        killed_at = time.monotonic()
        home.kill()
        await wait_acks(result, 200, killed_at, 30, "publisher after the kill", cluster,
                        publisher)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
    task.result()
    assert await publisher.close() is None

    expected = {a.decode() for a in result.acked}
    await asyncio.to_thread(sub.wait_until, lambda s: expected <= s.datas, 30,
                            "every acked message after the subscriber's node died")
    events = list(sub.events)
    at = next((i for i, e in enumerate(events) if e["event"] == "reconnect"), None)
    assert at is not None, sub.describe()
    after = [e for e in events[at:] if e["event"] == "msg"]
    resumed = after[0]["t"] - killed_at if after else float("inf")
    moved_to = {m["server"] for m in after}
    log(f"subscriber's node {home.node_id} killed; reconnected to {moved_to}; first delivery "
        f"{resumed:.3f}s after the kill; {len(sub.msgs)} deliveries, "
        f"{sum(m['redelivered'] for m in sub.msgs)} redelivered; events "
        f"{[e['event'] for e in sub.events if e['event'] not in ('msg',)]}")
    assert len(sub.of("ready")) == 1, "the application subscribed once"
    assert not sub.of("error") and not sub.of("connection-lost"), sub.describe()
    assert sub.of("reconnect"), sub.describe()
    assert f"127.0.0.1:{home.port}" not in moved_to
    seqs = [m["seq"] for m in sub.msgs if not m["redelivered"]]
    assert seqs == sorted(seqs), "first deliveries out of sequence order"

    sub.stop()
    await asyncio.to_thread(cluster.restart, home)
    contents = await asyncio.to_thread(cluster.check_consistent, [channel])
    check_acked(contents[channel], result.acked, "publisher")


async def test_durable_queue_group_across_nodes_while_one_dies(cluster, subs):
    channel = "jobs"
    leader = await asyncio.to_thread(cluster.leader)
    f1, f2 = [n for n in cluster.nodes if n is not leader]
    members = {node.node_id: subs(cluster.urls(node), f"worker-{node.node_id}", channel,
                                  queue="workers", durable="dur", start="first", ack_wait=3,
                                  max_inflight=20)
               for node in (leader, f1, f2)}
    for member in members.values():
        await asyncio.to_thread(member.wait_event, "ready")

    publisher = await FailoverStan.connect(cluster.urls(f1), "job-source")
    stop = asyncio.Event()
    result = PubResult()
    task = asyncio.ensure_future(publisher.publish_retrying(channel, "j", stop=stop,
                                                            timeout=PUB_TIMEOUT, result=result))

    def everyone_got_some(_):
        return all(len(m.msgs) >= 10 for m in members.values())
    try:
        await wait_acks(result, 150, 0, 20, "publisher before the kill")
        await asyncio.to_thread(members[f1.node_id].wait_until, everyone_got_some, 15,
                                "deliveries to every member before the kill")
        killed_at = time.monotonic()
        leader.kill()
        await wait_acks(result, 150, killed_at, 30, "publisher after the kill", cluster,
                        publisher)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
    task.result()
    assert await publisher.close() is None

    expected = {a.decode() for a in result.acked}

    def group_got_all(_):
        return expected <= set().union(*(m.datas for m in members.values()))
    await asyncio.to_thread(members[f1.node_id].wait_until, group_got_all, 30,
                            "every acked message delivered to the group")
    first_before = [m["seq"] for member in members.values() for m in member.msgs
                    if m["t"] < killed_at and not m["redelivered"]]
    counts = {node_id: len(m.msgs) for node_id, m in members.items()}
    log(f"queue member node {leader.node_id} killed; deliveries per member {counts}; "
        f"redelivered {sum(m['redelivered'] for x in members.values() for m in x.msgs)}; "
        f"member of {leader.node_id} events "
        f"{[e['event'] for e in members[leader.node_id].events if e['event'] != 'msg']}")
    assert len(first_before) == len(set(first_before)), "a message went to two members"
    for member in members.values():
        assert len(member.of("ready")) == 1 and not member.of("error"), member.describe()

    for member in members.values():
        member.stop()
    await asyncio.to_thread(cluster.restart, leader)
    contents = await asyncio.to_thread(cluster.check_consistent, [channel])
    check_acked(contents[channel], result.acked, "publisher")


async def test_max_inflight_holds_when_the_subscription_moves(cluster, subs):
    """A subscriber holding MaxInflight unacked messages loses its node: the node that
    takes it over redelivers at most those, sends nothing new until they are acked,
    and takes the acks on the ack inbox it now serves."""
    channel = "inflight"
    leader = await asyncio.to_thread(cluster.leader)
    home, other = [n for n in cluster.nodes if n is not leader]
    sub = subs(cluster.urls(home), "holder", channel, start="first", ack="none",
               max_inflight=10, ack_wait=2)
    await asyncio.to_thread(sub.wait_event, "ready")
    publisher = await FailoverStan.connect([other.url], "filler")
    filled = await publisher.publish_retrying(channel, "x", count=40, timeout=5.0)

    def distinct(s):
        return {m["seq"] for m in s.msgs}
    await asyncio.to_thread(sub.wait_until, lambda s: len(distinct(s)) >= 10, 10, "10 in flight")
    home.kill()
    # after the takeover the 10 come again (ack wait 2 s), and only those
    await asyncio.to_thread(sub.wait_until, lambda s: any(
        m["redelivered"] and m["server"] != f"127.0.0.1:{home.port}" for m in s.msgs), 20,
        "a redelivery from the node that took the subscription over")
    await asyncio.sleep(1.0)
    assert distinct(sub) == set(range(1, 11)), f"MaxInflight 10 broken: {sorted(distinct(sub))}"

    for batch in range(2, 5):
        sub.send("ack")
        await asyncio.to_thread(sub.wait_until, lambda s: len(distinct(s)) >= 10 * batch, 15,
                                f"the next 10 after acking ({batch})")
        await asyncio.sleep(0.3)
        assert distinct(sub) == set(range(1, 10 * batch + 1)), sorted(distinct(sub))
    sub.send("ack")
    log(f"MaxInflight across the move of {home.node_id}'s subscriber: "
        f"{len(sub.msgs)} deliveries, {sum(m['redelivered'] for m in sub.msgs)} redelivered")
    assert await publisher.close() is None
    sub.stop()
    await asyncio.to_thread(cluster.restart, home)
    contents = await asyncio.to_thread(cluster.check_consistent, [channel])
    check_acked(contents[channel], filled.acked, "filler")
