"""Scenarios 5-6 (issue 6 item 7): the cluster's data survives restarts.

5. full-cluster restart: all three nodes SIGKILLed at once while publishers are
   busy on every node, then restarted: every acknowledged message is there;
6. wiped-node rejoin: a follower is stopped, the others go on past a Raft snapshot
   (log compaction), the follower's data directory is deleted, and it rejoins and
   catches up from the snapshot.

After each: no acknowledged message missing, per-channel order kept, replicas
identical (monitoring views, STAN reads on every node, then the LMDB stores).
"""
from __future__ import annotations

import asyncio
import time

import pytest

from broker.protocol.stan import SubscriptionResponse, UnsubscribeRequest
from tests.cluster.stanclient import FailoverStan, PubResult
from tests.support.cluster import check_acked

#: RaftConfig.snapshot_entries_min: a node snapshots (and compacts its log) once
#: its log holds more entries than this. No flag lowers it yet.
SNAPSHOT_ENTRIES_MIN = 20000

pytestmark = pytest.mark.timeout(180)


def log(text: str) -> None:
    print(f"\n[cluster] {text}", flush=True)


async def test_full_cluster_restart_keeps_every_acked_message(cluster):
    channels = ["ledger-a", "ledger-b"]
    clients = [await FailoverStan.connect([node.url], f"writer-{node.node_id}")
               for node in cluster.nodes]
    stop = asyncio.Event()
    runs = []  # (channel, prefix, result): 2 sequential publishers per client
    for client in clients:
        for k, channel in enumerate(channels):
            runs.append((channel, f"{client.client_id}-{k}", PubResult()))
    tasks = [asyncio.ensure_future(clients[i // 2].publish_retrying(
        channel, prefix, stop=stop, timeout=2.0, result=result))
        for i, (channel, prefix, result) in enumerate(runs)]
    deadline = time.monotonic() + 20
    while min(len(r.acked) for _, _, r in runs) < 60:
        assert time.monotonic() < deadline, "publishers too slow before the crash"
        await asyncio.sleep(0.02)
    cluster.kill_all()  # all three at once, mid-stream
    crashed_at = time.monotonic()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    acked_at_crash = {prefix: [d for d, t in zip(r.acked, r.ack_times) if t <= crashed_at]
                      for _, prefix, r in runs}
    for client in clients:
        await client.abandon()
    log(f"full crash with {sum(map(len, acked_at_crash.values()))} acked messages")

    await asyncio.to_thread(cluster.start)
    restarted = time.monotonic()
    leader = await asyncio.to_thread(cluster.leader)
    log(f"all restarted; leader {leader.node_id} agreed {time.monotonic() - restarted:.2f}s "
        f"after the nodes answered")
    contents = await asyncio.to_thread(cluster.check_consistent, channels)
    for channel, prefix, _ in runs:
        check_acked(contents[channel], acked_at_crash[prefix], f"{channel} from {prefix}")


async def pad_log(client: FailoverStan, entries: int, concurrency: int = 200) -> int:
    """Append about ``entries`` Raft entries cheaply: each UnsubscribeRequest for an
    unknown subscription is a command of its own, rejected by apply (the log is
    what a snapshot compacts, whatever the entries are). Returns how many were
    answered (an election may drop a few)."""
    request = UnsubscribeRequest(clientID=client.client_id, subject="padding",
                                 inbox="no-such-ack-inbox").SerializeToString()
    outcomes: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one():
        async with gate:
            try:
                reply = await client.nc.request(client.r.unsubRequests, request, timeout=15)
                outcome = SubscriptionResponse.FromString(reply.data).error
            except Exception as exc:
                outcome = repr(exc)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    await asyncio.gather(*[one() for _ in range(entries)])

    return sum(v for k, v in outcomes.items() if k.startswith("stan: "))


async def test_wiped_follower_rejoins_from_a_snapshot(cluster):
    channel = "history"
    leader = await asyncio.to_thread(cluster.leader)
    victim, survivor = [n for n in cluster.nodes if n is not leader]
    writer = await FailoverStan.connect([survivor.url], "historian")
    before = await writer.publish_retrying(channel, "before", count=300, timeout=5.0)
    await asyncio.to_thread(cluster.wait_settled)
    victim.stop()

    padders = [await FailoverStan.connect([node.url], f"padder-{node.node_id}")
               for node in (leader, survivor)]
    started = time.monotonic()
    answered = 0
    while True:
        z = leader.clusterz()
        if z and z["snapshot_index"] > 0 and z["log_first_index"] > 1:
            break
        assert time.monotonic() - started < 90, f"no snapshot after {answered} entries: {z}"
        counts = await asyncio.gather(*[pad_log(p, SNAPSHOT_ENTRIES_MIN // 5)
                                        for p in padders])
        answered += sum(counts)
    during = await writer.publish_retrying(channel, "during", count=300, timeout=5.0)
    zs = await asyncio.to_thread(cluster.clusterz)
    log(f"snapshot after {answered} padding entries in {time.monotonic() - started:.1f}s: "
        + ", ".join(f"{k} snapshot_index={z['snapshot_index']} log_first={z['log_first_index']} "
                    f"log_last={z['log_last_index']}" for k, z in zs.items()))
    for p in padders:
        assert await p.close() is None

    victim.wipe()
    rejoin = time.monotonic()
    await asyncio.to_thread(cluster.restart, victim)
    await asyncio.to_thread(cluster.wait_settled, 60)
    z = victim.clusterz()
    log(f"wiped {victim.node_id} caught up in {time.monotonic() - rejoin:.2f}s: "
        f"applied={z['applied_index']} snapshot_index={z['snapshot_index']} "
        f"log_first={z['log_first_index']}")
    assert z["snapshot_index"] > 0, f"{victim.node_id} did not install a snapshot: {z}"
    after = await writer.publish_retrying(channel, "after", count=50, timeout=5.0)
    assert await writer.close() is None

    contents = await asyncio.to_thread(cluster.check_consistent, [channel])
    check_acked(contents[channel], before.acked + during.acked + after.acked, channel)
