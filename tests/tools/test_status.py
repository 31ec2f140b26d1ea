"""`runnel status`: a summary of real nodes from their monitoring endpoints.

A minimal STAN client (nats-py and the protobufs of broker.protocol.stan, as in
tests/monitor/test_streaming_endpoints.py) makes known traffic on a real FILE-store
node; the tool must then name the channels with their counts and the pending
subscriptions. A node that is down, or that never answers, is one clear line and
exit status 1. Every wait polls an observable condition with a deadline.
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time

import pytest

from broker.tools import status
from tests.support.procs import REPO, free_port, nats_server_process

pytestmark = pytest.mark.timeout(120)

from tests.support.stan import Stan, eventually, wait_stan_ready


def run_status(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """`python -m broker status ARGS` in a child process, bounded."""
    return subprocess.run([sys.executable, "-m", "broker", "status", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def section(out: str, title: str) -> list[list[str]]:
    """The rows (split on whitespace, header excluded) of the table under ``title (N)``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\s*{title} \(\d+\)$", line))
    rows = []
    for line in lines[start + 2:]:  # skip the title and the column headers
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def closed_port() -> int:
    """A loopback port nobody listens on."""
    return free_port()


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def node(runnel_factory, tmp_path):
    return runnel_factory("-st", "file", "-dir", str(tmp_path / "d"))


@pytest.fixture
async def traffic(node):
    """alpha publishes foo x3 and bar x2, and holds a sub on foo with max_inflight 2 (2
    pending, stalled); bravo's durable ``dur`` on bar got both and acked them (0 pending);
    charlie is in queue group ``grp`` on foo (3 pending)."""
    await wait_stan_ready(node.url)
    clients = []
    try:
        alpha = await Stan.connect(node.url, "alpha")
        bravo = await Stan.connect(node.url, "bravo")
        charlie = await Stan.connect(node.url, "charlie")
        clients += [alpha, bravo, charlie]
        for data in (b"a" * 10, b"b" * 20, b"c" * 30):
            await alpha.publish("foo", data)
        for data in (b"x" * 5, b"y" * 7):
            await alpha.publish("bar", data)
        stalled = await alpha.subscribe("foo", max_inflight=2)
        dur = await bravo.subscribe("bar", durable="dur")
        grp = await charlie.subscribe("foo", queue="grp")
        await eventually(lambda: [len(s.msgs) for s in (stalled, dur, grp)] == [2, 2, 3],
                         what="the deliveries")
        for seq in (1, 2):
            await bravo.ack(dur, seq)

        def acked():
            data = status.fetch_json(node.http_url, "/streaming/channelsz", 2.0,
                                     channel="bar", subs=1)
            return [s["pending_count"] for s in data.get("subscriptions", [])] == [0]
        await eventually(acked, what="bravo's acks to apply")
        yield node
    finally:
        for client in clients:
            if not client.nc.is_closed:
                try:
                    await asyncio.wait_for(client.nc.close(), 5)
                except Exception:
                    pass


# -- tests -------------------------------------------------------------------------------

async def test_status_names_channels_subscriptions_and_clients(traffic):
    result = await asyncio.to_thread(run_status, "-s", traffic.http_url)
    out = result.stdout
    assert result.returncode == 0, (out, result.stderr)
    assert "Traceback" not in result.stderr
    assert out.startswith(f"== {traffic.http_url}: reachable\n")
    assert re.search(r"server_id \w{22}  cluster_id test-cluster  state STANDALONE", out)
    assert re.search(r"uptime \d+s  store FILE", out)
    assert "clients 3  channels 2  subscriptions 3  total_msgs 5" in out
    assert "role" not in out and "leader" not in out  # standalone: no cluster line

    # NAME MSGS BYTES FIRST LAST SUBS
    channels = {row[0]: row for row in section(out, "channels")}
    assert set(channels) == {"bar", "foo"}
    assert [channels["foo"][i] for i in (1, 3, 4, 5)] == ["3", "1", "3", "2"]
    assert [channels["bar"][i] for i in (1, 3, 4, 5)] == ["2", "1", "2", "1"]
    assert int(channels["foo"][2]) > 60 and int(channels["bar"][2]) > 12

    subs = section(out, "subscriptions")
    assert len(subs) == 3
    # CLIENT CHANNEL DURABLE/QUEUE... INBOX PENDING INFLIGHT STALLED LAST-SENT
    by_client = {row[0]: row for row in subs}
    alpha = by_client["alpha"]
    assert alpha[1:3] == ["foo", "-"] and alpha[3].startswith("_INBOX.")
    assert alpha[4:] == ["2", "2", "yes", "2"]
    bravo = by_client["bravo"]
    assert bravo[1:4] == ["bar", "durable", "dur"] and bravo[5:] == ["0", "1024", "no", "2"]
    charlie = by_client["charlie"]
    assert charlie[1:4] == ["foo", "queue", "grp"] and charlie[5:] == ["3", "1024", "no", "3"]

    clients = section(out, "clients")
    assert clients == [["alpha", "1", "foo"], ["bravo", "1", "bar"], ["charlie", "1", "foo"]]


async def test_status_json(traffic, capsys):
    code = await asyncio.to_thread(status.main, ["-s", traffic.http_url, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["leaders"] == []
    [node] = data["nodes"]
    assert (node["ok"], node["reachable"], node["error"]) == (True, True, None)
    assert node["url"] == traffic.http_url
    assert node["serverz"]["state"] == "STANDALONE" and node["storez"]["type"] == "FILE"
    assert node["clusterz"] is None  # not served yet: tolerated
    channels = {c["name"]: c for c in node["channels"]}
    assert {name: (c["msgs"], c["first_seq"], c["last_seq"], c["subs_count"])
            for name, c in channels.items()} == {"foo": (3, 1, 3, 2), "bar": (2, 1, 2, 1)}
    pending = {(s["client_id"], name): (s["pending_count"], s["is_stalled"])
               for name, c in channels.items() for s in c["subscriptions"]}
    assert pending == {("alpha", "foo"): (2, True), ("charlie", "foo"): (3, False),
                       ("bravo", "bar"): (0, False)}
    assert [(c["id"], c["subs_count"]) for c in node["clients"]] == [
        ("alpha", 1), ("bravo", 1), ("charlie", 1)]


async def test_fresh_node_and_host_port_url(node):
    await wait_stan_ready(node.url)
    result = await asyncio.to_thread(run_status, "-s", f"{node.host}:{node.http_port}/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"== {node.http_url}: reachable\n")
    assert "channels (0)" in result.stdout and "subscriptions (0)" in result.stdout
    assert "clients (0)" in result.stdout


async def test_down_node_is_a_clear_line_and_exit_1(node):
    await wait_stan_ready(node.url)
    down = f"http://127.0.0.1:{closed_port()}"
    result = await asyncio.to_thread(run_status, "-s", node.http_url, "-s", down)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout.startswith("cluster: 2 nodes, 1 answered\n")
    assert f"== {node.http_url}: reachable" in result.stdout
    assert f"== {down}: UNREACHABLE (connection refused)\n" in result.stdout

    result = await asyncio.to_thread(run_status, "-s", down)
    assert result.returncode == 1
    assert result.stdout == f"== {down}: UNREACHABLE (connection refused)\n"

    result = await asyncio.to_thread(run_status, "-s", down, "--json")
    assert result.returncode == 1
    [entry] = json.loads(result.stdout)["nodes"]
    assert (entry["ok"], entry["reachable"], entry["error"]) == (
        False, False, "connection refused")
    assert result.stderr == f"runnel status: {down}: connection refused\n"


def test_silent_node_times_out(capsys):
    """A port that accepts connections and never answers: bounded by --timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshakes; nobody ever replies
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        code = status.main(["-s", url, "-t", "0.3"])
        elapsed = time.monotonic() - started
    assert code == 1 and elapsed < 5
    assert capsys.readouterr().out == f"== {url}: UNREACHABLE (timed out)\n"


def test_core_nats_server_is_not_a_streaming_server(tmp_path):
    """Up but without /streaming: an ERROR line (not UNREACHABLE) and exit 1."""
    http_port = free_port()
    server = nats_server_process(tmp_path, "-m", str(http_port))
    server.http_port = http_port  # so that start() waits for the monitoring port too
    server.start()
    try:
        result = run_status("-s", server.http_url)
    finally:
        server.kill()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout == (f"== {server.http_url}: ERROR (HTTP 404 on /streaming/serverz: "
                             f"404 page not found (not a streaming server?))\n")


def test_bad_flags(capsys):
    assert status.main(["--bogus"]) == 2
    assert "usage: runnel status" in capsys.readouterr().err
    assert status.main(["-t", "0"]) == 2
    assert "timeout must be positive" in capsys.readouterr().err


def test_clustered_keys_are_shown_when_present():
    """serverz's role/node_id (§6.2) and a future /streaming/clusterz, from fixed data."""
    def node(url, node_id, role, clusterz=None):
        return {"url": url, "ok": True, "error": None,
                "serverz": {"server_id": "S" + node_id, "cluster_id": "c", "state": "CLUSTERED",
                            "role": role, "node_id": node_id, "uptime": "1m2s",
                            "clients": 0, "channels": 0},
                "storez": {"type": "RAFT_FILE"}, "clusterz": clusterz,
                "channels": [], "clients": []}
    nodes = [node("http://a", "a", "Follower",
                  {"term": 4, "commit_index": 17, "applied_index": 16,
                   "peers": [{"id": "b", "address": "x"}, "c"]}),
             node("http://b", "b", "Leader"),
             {"url": "http://c", "ok": False, "error": "connection refused"}]
    data = {"nodes": nodes, "leaders": status.leaders(nodes)}
    assert data["leaders"] == ["b"]
    out = status.render(data)
    assert out.startswith("cluster: 3 nodes, 2 answered, leader b\n")
    assert "  node_id a  role Follower  leader b\n" in out
    assert "  raft: term 4  commit_index 17  applied_index 16\n" in out
    assert "  peers: b (address x), c\n" in out
    assert "  node_id b  role Leader  leader b\n" in out
    assert "store RAFT_FILE" in out
    assert "== http://c: UNREACHABLE (connection refused)\n" in out
