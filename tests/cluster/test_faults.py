"""Bad input and faults of issue 6: nodes that must refuse to start, a node cut off
from the majority that must never acknowledge, and elections under a burst of
commands."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import nats
import pytest

from broker.protocol.stan import ConnectRequest, ConnectResponse
from tests.cluster.stanclient import FailoverStan
from tests.support.cluster import Node, check_acked
from tests.support.procs import REPO, free_port

pytestmark = pytest.mark.timeout(120)


def log(text: str) -> None:
    print(f"\n[cluster] {text}", flush=True)


def run_node(tmp_path, *flags: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
    """A clustered node that is expected to exit by itself."""
    argv = [sys.executable, "-m", "broker", "-a", "127.0.0.1", "-p", str(free_port()),
            "-st", "file", "-dir", str(tmp_path / "data"), "--clustered", *flags]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def peers(*members: tuple[str, int]) -> str:
    return ",".join(f"{name}@127.0.0.1:{port}" for name, port in members)


def test_duplicate_node_id_in_the_peer_list_is_refused(tmp_path):
    done = run_node(tmp_path, "--cluster_node_id", "n1", "--cluster_peers",
                    peers(("n1", free_port()), ("n1", free_port()), ("n3", free_port())))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot start: duplicate node ID 'n1' in --cluster_peers" in done.stdout + done.stderr


def test_peer_list_without_this_node_is_refused(tmp_path):
    done = run_node(tmp_path, "--cluster_node_id", "n4", "--cluster_peers",
                    peers(("n1", free_port()), ("n2", free_port()), ("n3", free_port())))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot start: --cluster_peers must list this node as n4@host:port" in (
        done.stdout + done.stderr)


def test_two_members_on_one_raft_address_is_refused_clearly(tmp_path):
    port = free_port()
    done = run_node(tmp_path, "--cluster_node_id", "n1", "--cluster_peers",
                    peers(("n1", port), ("n2", port), ("n3", free_port())))
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "cannot start:" in output and "Traceback" not in output, output[-2000:]


def test_second_process_with_a_running_node_id_is_refused(cluster, tmp_path):
    n1 = cluster["n1"]
    terms = {k: z["term"] for k, z in cluster.clusterz().items()}
    twin = Node("n1", free_port(), free_port(), n1.raft_port, tmp_path / "twin",
                tmp_path / "twin.log", peers=cluster.peers)
    twin.spawn()
    try:
        code = twin.proc.wait(15)
    finally:
        twin.kill()
    assert code == 1, twin.log_tail()
    assert "cannot start: cannot bind the raft port" in twin.log_text()
    leader = cluster.leader()
    assert {k: z["term"] for k, z in cluster.clusterz().items()} == terms, "the twin disturbed Raft"
    assert leader.alive()


@pytest.mark.parametrize("change", ["moved-peer", "extra-peer"])
def test_restart_with_a_disagreeing_peer_list_is_refused(cluster, change):
    n3 = cluster["n3"]
    n3.stop()
    if change == "moved-peer":  # n2 at another address than the one stored
        changed = cluster.peers.replace(cluster["n2"].raft_address, f"127.0.0.1:{free_port()}")
    else:  # a fourth member the others never heard of
        changed = f"{cluster.peers},n4@127.0.0.1:{free_port()}"
    argv = n3.argv()
    argv[argv.index("--cluster_peers") + 1] = changed
    n3.spawn(argv)
    try:
        code = n3.proc.wait(8)
    except subprocess.TimeoutExpired:
        z = n3.clusterz()
        pytest.fail(f"n3 runs with --cluster_peers {changed} (stored: {cluster.peers}): "
                    f"{z and (z['role'], z['term'], [p['address'] for p in z['peers']])}")
    assert code == 1 and "cannot start" in n3.log_tail()


@pytest.mark.parametrize("cut_off", ["leader", "follower"])
async def test_node_cut_off_from_the_majority_never_acknowledges(cluster, cut_off):
    """SIGSTOP two nodes; a client of the remaining one (the leader, or a follower)
    publishes: an error or a timeout, never a PubAck. Then SIGCONT: the cluster
    recovers and the same client publishes again."""
    leader = await asyncio.to_thread(cluster.leader)
    followers = [n for n in cluster.nodes if n is not leader]
    alone = leader if cut_off == "leader" else followers[0]
    others = [n for n in cluster.nodes if n is not alone]
    channel = "isolated"
    client = await FailoverStan.connect([alone.url], "lonely")
    before = await client.publish_retrying(channel, "before", count=20, timeout=5.0)

    for node in others:
        node.freeze()
    frozen_at = time.monotonic()
    try:
        # five at once, and one more sent past the leader's fallback (2 s without a
        # majority), when the lone node is a candidate
        async def late():
            await asyncio.sleep(2.0)
            return await client.publish_once(channel, b"cut-late", 2.0)
        outcomes = await asyncio.gather(late(), *[
            client.publish_once(channel, f"cut-{i}".encode(), 4.0) for i in range(5)])
    finally:
        for node in others:
            node.thaw()
    log(f"{cut_off} {alone.node_id} alone for {time.monotonic() - frozen_at:.1f}s: publish "
        f"outcomes {sorted({str(o) for o in outcomes})}; its view {alone.clusterz()}")
    assert None not in outcomes, "a PubAck from a node cut off from the majority"

    after = await client.publish_retrying(channel, "after", count=20, timeout=2.0,
                                          give_up_s=30)
    assert await client.close() is None
    contents = await asyncio.to_thread(cluster.check_consistent, [channel])
    check_acked(contents[channel], before.acked + after.acked, channel)


def test_no_election_during_a_burst_of_client_connects(cluster):
    """Up to two storms of 4000 clients connecting at once through one follower (a
    reconnect storm): the term must not change."""
    leader = cluster.leader()
    term = leader.clusterz()["term"]
    target = cluster.followers(leader)[0]

    async def storm(n: int, round_: int) -> dict:
        nc = await nats.connect(target.url)
        hb_inbox = nc.new_inbox()

        async def heartbeat(msg):
            if msg.reply:
                await nc.publish(msg.reply, b"")
        await nc.subscribe(hb_inbox, cb=heartbeat)
        outcomes: dict[str, int] = {}

        async def one(i: int):
            request = ConnectRequest(clientID=f"storm-{round_}-{i}", heartbeatInbox=hb_inbox,
                                     protocol=1, connID=uuid.uuid4().hex.encode(),
                                     pingInterval=5, pingMaxOut=3).SerializeToString()
            try:
                reply = await nc.request("_STAN.discover.test-cluster", request, timeout=30)
                outcome = ConnectResponse.FromString(reply.data).error or "ok"
            except Exception as exc:
                outcome = repr(exc)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        await asyncio.gather(*[one(i) for i in range(n)])
        await nc.close()
        return outcomes

    for round_ in range(2):
        started = time.monotonic()
        outcomes = asyncio.run(storm(4000, round_))
        took = time.monotonic() - started
        cluster.wait_settled(30)
        terms = {k: z["term"] for k, z in cluster.clusterz().items()}
        log(f"connect storm {round_ + 1}: {outcomes} in {took:.1f}s; terms {term} -> {terms}")
        assert outcomes == {"ok": 4000}
        assert set(terms.values()) == {term}, f"elections during the burst: term {term} -> {terms}"
