"""A multi-process Runnel cluster for tests: real ``python -m broker`` nodes.

Each node is a process of its own on 127.0.0.1 with distinct free ports (client,
monitoring, Raft), so cluster tests can run beside other tests. The harness starts,
stops (SIGTERM), kills (SIGKILL), freezes (SIGSTOP/SIGCONT), restarts and wipes
nodes, finds the leader, and waits on the monitoring endpoints with deadlines:
every wait polls an observable condition; nothing sleeps blindly.

Replica comparison, three ways:

* ``views()``: ``/streaming/channelsz?subs=1`` and ``/streaming/clientsz?subs=1`` of
  every live node once their applied indexes are equal (read from each node's store);
* ``stan_contents()``: every message of every channel read by a STAN subscriber with
  StartPosition First on each node (``tests.support.stan`` client);
* ``store_contents()``: each stopped node's LMDB store opened with
  ``storage.LmdbStore``: every channel, message, subscription and client record.

``check_consistent()`` runs the three in turn (and leaves every node killed). A node
that exits without the harness asking (another process signalled it) fails the next
wait with that reason and the line of its log that says so.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import REPO, free_port, port_open, wait_for

HOST = "127.0.0.1"
CLUSTER_ID = "test-cluster"
#: Default deadline of the cluster waits (an election takes ~1-2 s here).
WAIT = 20.0


class ClusterError(AssertionError):
    """A wait on the cluster timed out, or replicas differ."""


def _http_json(url: str, timeout: float = 1.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


@dataclass
class Node:
    """One member: its ID, ports, data directory, log file and process."""

    node_id: str
    port: int
    http_port: int
    raft_port: int
    data_dir: Path
    log_path: Path
    peers: str = ""
    extra_flags: tuple = ()
    proc: subprocess.Popen | None = None
    starts: int = 0
    frozen: bool = False
    #: False while the harness means it to run: an exit then is unexpected.
    down_on_purpose: bool = True

    host = HOST

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def raft_address(self) -> str:
        return f"{self.host}:{self.raft_port}"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "broker", "-a", self.host, "-p", str(self.port),
                "-m", str(self.http_port), "-st", "file", "-dir", str(self.data_dir),
                "--clustered", "--cluster_node_id", self.node_id,
                "--cluster_peers", self.peers, *self.extra_flags]

    # -- process --

    def spawn(self, argv: list[str] | None = None) -> "Node":
        """Start the process (not waiting for anything)."""
        assert not self.alive(), f"{self.node_id} is already running"
        self.starts += 1
        with open(self.log_path, "ab") as out:
            out.write(f"\n===== start #{self.starts} of {self.node_id} "
                      f"at {time.strftime('%H:%M:%S')} =====\n".encode())
            self.proc = subprocess.Popen(argv or self.argv(), stdout=out,
                                         stderr=subprocess.STDOUT, cwd=REPO)
        self.frozen = False
        self.down_on_purpose = False
        return self

    def unexpected_exit(self) -> str | None:
        """Why the process ended although the harness did not end it, or None."""
        if self.down_on_purpose or self.proc is None or self.proc.poll() is None:
            return None
        signalled = [line for line in self.log_text().splitlines()[-200:]
                     if "signal received" in line]
        return (f"{self.node_id} (pid {self.proc.pid}) exited with {self.proc.returncode} "
                f"without the harness asking"
                + (f"; its log says {signalled[-1]!r}: another process signalled it"
                   if signalled else f"; log tail:\n{self.log_tail(1500)}"))

    def wait_listening(self, timeout: float = WAIT) -> "Node":
        wait_for(lambda: not self.alive() or (port_open(self.host, self.port)
                                              and port_open(self.host, self.http_port)),
                 timeout, what=f"{self.node_id} to listen on {self.port}/{self.http_port}")
        if not self.alive():
            raise ClusterError(f"{self.node_id} exited with {self.proc.returncode}:\n"
                               f"{self.log_tail()}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self) -> int | None:
        """SIGKILL (kill -9), and reap it."""
        self.down_on_purpose = True
        if self.proc is None:
            return None
        if self.frozen:
            self.signal(signal.SIGCONT)
            self.frozen = False
        self.signal(signal.SIGKILL)
        return self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
        self.down_on_purpose = True
        if self.proc is None:
            return None
        if self.frozen:
            self.signal(signal.SIGCONT)
            self.frozen = False
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise ClusterError(f"{self.node_id} ignored SIGTERM for {timeout}s:\n{self.log_tail()}")

    def freeze(self) -> None:
        self.signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)
        self.frozen = False

    def wipe(self) -> None:
        assert not self.alive(), "wipe a stopped node only"
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    # -- monitoring --

    def get(self, path: str, timeout: float = 1.0) -> dict | None:
        """GET a monitoring endpoint; None when the node does not answer."""
        if not self.alive() or self.frozen:
            return None
        return _http_json(self.http_url + path, timeout)

    def clusterz(self) -> dict | None:
        return self.get("/streaming/clusterz")

    def serverz(self) -> dict | None:
        return self.get("/streaming/serverz")


def strip_header(data: dict) -> dict:
    """A monitoring document without what differs between nodes by nature."""
    return {k: v for k, v in data.items() if k not in ("server_id", "now")}


class Cluster:
    """``size`` nodes n1..nN on 127.0.0.1 with free ports, data under ``root``."""

    def __init__(self, root: Path, size: int = 3, extra_flags: tuple = ()):
        self.root = Path(root)
        self.nodes: list[Node] = []
        for i in range(1, size + 1):
            node_id = f"n{i}"
            self.nodes.append(Node(node_id, 0, 0, 0, self.root / node_id,
                                   self.root / f"{node_id}.log", extra_flags=tuple(extra_flags)))
        self._assign_ports()

    def _assign_ports(self) -> None:
        ports: set[int] = set()
        while len(ports) < 3 * len(self.nodes):
            ports.add(free_port(HOST))
        ports_left = sorted(ports)
        for node in self.nodes:
            node.port, node.http_port, node.raft_port = (ports_left.pop() for _ in range(3))
        self.peers = ",".join(f"{n.node_id}@{n.raft_address}" for n in self.nodes)
        for node in self.nodes:
            node.peers = self.peers

    def __getitem__(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.alive() and not n.frozen]

    def urls(self, first: Node | None = None) -> list[str]:
        """Every node's client URL, ``first`` first."""
        ordered = ([first] if first else []) + [n for n in self.nodes if n is not first]
        return [n.url for n in ordered]

    # -- life cycle --

    def start(self, *nodes: Node, timeout: float = WAIT) -> "Cluster":
        """Start the given nodes (default: every node) together, wait until each
        listens and its STAN service answers. The first start of the whole cluster
        picks new free ports if one was taken meanwhile (other tests run beside)."""
        first = not nodes and all(n.starts == 0 for n in self.nodes)
        nodes = nodes or tuple(self.nodes)
        for attempt in range(3):
            for node in nodes:
                node.spawn()
            try:
                for node in nodes:
                    node.wait_listening(timeout)
                break
            except ClusterError as exc:
                if not (first and attempt < 2 and ("in use" in str(exc)
                                                   or "cannot bind" in str(exc))):
                    raise
                self.kill_all()
                for node in self.nodes:
                    node.wipe()
                self._assign_ports()
        for node in nodes:
            wait_stan_ready(node, timeout)
        return self

    def restart(self, node: Node, timeout: float = WAIT) -> Node:
        self.start(node, timeout=timeout)
        return node

    def kill_all(self) -> None:
        """SIGKILL every node at once (a full-cluster crash)."""
        for node in self.nodes:
            node.down_on_purpose = True
        for node in self.nodes:
            if node.frozen:
                node.signal(signal.SIGCONT)
            node.signal(signal.SIGKILL)
        for node in self.nodes:
            if node.proc is not None:
                node.proc.wait(10)
                node.frozen = False

    def stop_all(self) -> None:
        for node in self.nodes:
            node.down_on_purpose = True
            node.signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """End every process this harness started (the fixture's teardown)."""
        self.kill_all()

    def unexpected_exits(self) -> list[str]:
        return [why for n in self.nodes if (why := n.unexpected_exit())]

    def check_running(self) -> None:
        """Raise if a node the harness means to run has exited."""
        exits = self.unexpected_exits()
        if exits:
            raise ClusterError("\n".join(exits))

    # -- Raft state --

    def clusterz(self) -> dict[str, dict]:
        return {n.node_id: z for n in self.live if (z := n.clusterz()) is not None}

    def leader(self, timeout: float = WAIT, among: list[Node] | None = None) -> Node:
        """The leader every live node (or ``among``) agrees on, in one term."""
        nodes = among or self.live
        seen = {}

        def agreed():
            self.check_running()
            states = {n.node_id: n.clusterz() for n in nodes}
            seen.clear()
            seen.update(states)
            if any(z is None for z in states.values()):
                return None
            leaders = {z["leader"] for z in states.values()}
            terms = {z["term"] for z in states.values()}
            if len(leaders) != 1 or len(terms) != 1 or "" in leaders:
                return None
            name = leaders.pop()
            node = self[name]
            if node not in nodes or states[name]["role"] != "Leader":
                return None
            return node

        try:
            return wait_for(agreed, timeout, interval=0.05, what="a leader all nodes agree on")
        except TimeoutError:
            raise ClusterError(f"no agreed leader within {timeout}s: "
                               f"{ {k: _raft_summary(v) for k, v in seen.items()} }\n"
                               + self.logs_tail()) from None

    def followers(self, leader: Node | None = None) -> list[Node]:
        leader = leader or self.leader()
        return [n for n in self.live if n is not leader]

    def wait_settled(self, timeout: float = WAIT, nodes: list[Node] | None = None) -> int:
        """Until every live node (or ``nodes``) agrees on the leader and term and has
        applied the same index, equal to its commit index, twice in a row 50 ms apart.
        Returns that index."""
        nodes = nodes or self.live
        last: dict = {}
        previous: list = [None]

        def settled():
            self.check_running()
            states = {n.node_id: n.clusterz() for n in nodes}
            last.clear()
            last.update(states)
            if any(z is None for z in states.values()):
                previous[0] = None
                return None
            key = {(z["leader"], z["term"], z["applied_index"], z["commit_index"])
                   for z in states.values()}
            if len(key) != 1:
                previous[0] = None
                return None
            leader, term, applied, commit = next(iter(key))
            if not leader or applied != commit:
                previous[0] = None
                return None
            if previous[0] == (term, applied):
                return applied or -1
            previous[0] = (term, applied)
            return None

        try:
            index = wait_for(settled, timeout, interval=0.05, what="applied indexes to converge")
        except TimeoutError:
            raise ClusterError(f"not settled within {timeout}s: "
                               f"{ {k: _raft_summary(v) for k, v in last.items()} }\n"
                               + self.logs_tail()) from None
        return max(index, 0)

    def wait_applied(self, node: Node, index: int, timeout: float = WAIT) -> None:
        def reached():
            z = node.clusterz()
            return z is not None and z["applied_index"] >= index
        try:
            wait_for(reached, timeout, interval=0.05, what=f"{node.node_id} to apply {index}")
        except TimeoutError:
            raise ClusterError(f"{node.node_id} did not apply index {index} within {timeout}s: "
                               f"{_raft_summary(node.clusterz())}\n{node.log_tail()}") from None

    # -- replica comparison --

    def views(self, timeout: float = WAIT) -> dict[str, dict]:
        """Settle, then ``channelsz?subs=1`` and ``clientsz?subs=1`` of every live
        node; raises ClusterError unless they are identical. Returns node -> view."""
        for _ in range(3):
            index = self.wait_settled(timeout)
            got = {}
            for node in self.live:
                channels = node.get("/streaming/channelsz?subs=1&limit=100000")
                clients = node.get("/streaming/clientsz?subs=1&limit=100000")
                if channels is None or clients is None:
                    raise ClusterError(f"{node.node_id} did not answer its monitoring port")
                got[node.node_id] = {"channels": strip_header(channels),
                                     "clients": strip_header(clients)}
            # an entry may have been applied between the settle check and the reads
            if self.wait_settled(timeout) != index:
                continue
            first = next(iter(got.values()))
            differing = {k: v for k, v in got.items() if v != first}
            if differing:
                raise ClusterError("replicas differ at applied index "
                                   f"{index}:\n{json.dumps(got, indent=1, sort_keys=True)}")
            return got
        raise ClusterError("the cluster kept applying entries while its views were read")

    def stan_contents(self, channels: list[str], nodes: list[Node] | None = None,
                      timeout: float = WAIT) -> dict[str, dict[str, list]]:
        """node -> channel -> [(seq, data, timestamp)] read by a STAN subscriber with
        StartPosition First on each node (up to the last sequence its channelsz
        reports); raises ClusterError unless identical."""
        nodes = nodes or self.live
        got = {}
        for node in nodes:
            last = {}
            for channel in channels:
                z = node.get(f"/streaming/channelsz?channel={channel}")
                last[channel] = z["last_seq"] if z else 0
            got[node.node_id] = asyncio.run(read_channels(node.url, last, timeout))
        first_id, first = next(iter(got.items()))
        for node_id, contents in got.items():
            if contents != first:
                raise ClusterError(f"messages differ between {first_id} and {node_id}: "
                                   + _first_difference(first, contents))
        return got

    def store_contents(self, nodes: list[Node] | None = None) -> dict[str, dict]:
        """node -> the full contents of its LMDB store (nodes must be stopped);
        raises ClusterError unless identical."""
        nodes = nodes or self.nodes
        assert not any(n.alive() for n in nodes), "stop the nodes before reading their stores"
        got = {n.node_id: read_store(n.data_dir) for n in nodes}
        first_id, first = next(iter(got.items()))
        for node_id, contents in got.items():
            if contents != first:
                raise ClusterError(f"stores differ between {first_id} and {node_id}: "
                                   + _first_difference(first, contents))
        return got

    def check_consistent(self, channels: list[str]) -> dict[str, list]:
        """The end-of-scenario check: settle; identical monitoring views; identical
        message-by-message contents through STAN on every node; then kill every node
        and compare the stores. Returns channel -> [(seq, data, timestamp)]."""
        self.views()
        contents = self.stan_contents(channels)
        self.wait_settled()
        self.kill_all()
        stores = self.store_contents()
        store = next(iter(stores.values()))
        for channel in channels:
            from_store = store["messages"].get(channel, [])
            from_stan = next(iter(contents.values()))[channel]
            if from_store != from_stan:
                raise ClusterError(f"channel {channel}: the store and STAN disagree: "
                                   + _first_difference(from_store, from_stan))
        return next(iter(contents.values()))

    def logs_tail(self, chars: int = 1500) -> str:
        exits = self.unexpected_exits()
        logs = "\n".join(f"--- {n.node_id} log ---\n{n.log_tail(chars)}" for n in self.nodes)
        return ("\n".join(exits) + "\n" if exits else "") + logs


def _raft_summary(z: dict | None) -> str:
    if z is None:
        return "down"
    return (f"{z['role']} leader={z['leader']} term={z['term']} commit={z['commit_index']} "
            f"applied={z['applied_index']}")


def _first_difference(a, b, path: str = "") -> str:
    if type(a) is not type(b):
        return f"at {path or '/'}: {a!r:.200} != {b!r:.200}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"at {path}/{key}: present on one side only"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}/{key}")
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"at {path}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"at {path or '/'}: {a!r:.300} != {b!r:.300}"


# -- STAN reads --

def wait_stan_ready(node: Node, timeout: float = WAIT) -> Node:
    from tests.support.stan import wait_stan_ready as ready
    try:
        asyncio.run(ready(node.url, timeout))
    except (AssertionError, OSError) as exc:
        raise ClusterError(f"{node.node_id}: STAN not ready: {exc}\n{node.log_tail()}") from None
    return node


async def read_channels(url: str, last: dict[str, int],
                        timeout: float = WAIT) -> dict[str, list]:
    """Every message of each channel up to ``last[channel]``, read with StartPosition
    First by a new client on ``url``: channel -> [(seq, data, timestamp)]."""
    import uuid

    from broker.protocol.stan import First
    from tests.support.stan import Stan, eventually

    client = await Stan.connect(url, f"reader-{uuid.uuid4().hex[:8]}")
    out: dict[str, list] = {}
    try:
        for channel, last_seq in last.items():
            if not last_seq:
                out[channel] = []
                continue
            sub = await client.subscribe(channel, start=First, max_inflight=100000)
            await eventually(lambda: sub.msgs and sub.msgs[-1].sequence >= last_seq, timeout,
                             what=f"{channel} up to seq {last_seq} on {url}")
            await client.close_sub(sub)
            seen = {}
            for m in sub.msgs:  # a redelivery would repeat a sequence: keep the first
                seen.setdefault(m.sequence, (m.sequence, bytes(m.data), m.timestamp))
            out[channel] = [seen[s] for s in sorted(seen)]
    finally:
        await client.close()
    return out


# -- store reads --

def read_store(data_dir: Path) -> dict:
    """Everything in a stopped node's LMDB store, decoded enough to compare and
    to check messages: {"last_applied", "meta", "channels", "messages", "subs",
    "clients"}; messages are channel -> [(seq, data, timestamp)]."""
    from broker.protocol.stan import MsgProto
    from broker.state import records
    from storage import LmdbStore

    path = Path(data_dir) / "store"
    if not path.is_dir():
        raise ClusterError(f"no store at {path}")
    store = LmdbStore(str(path), sync=False)
    try:
        with store.read() as txn:
            out = {"last_applied": txn.get_last_applied_index(),
                   "meta": {k: txn.get_meta(k) for k in (records.META_NEXT_SUB_ID,
                                                         records.META_ASSIGN_COUNTER,
                                                         records.META_CLUSTER_ID)},
                   "channels": {}, "messages": {}, "subs": {},
                   "clients": dict(txn.list_clients())}
            for channel in txn.list_channels():
                out["channels"][channel.name] = (channel.channel_id, channel.record,
                                                 channel.stats)
                msgs, seq = [], channel.stats.first_seq
                while seq and seq <= channel.stats.last_seq:
                    batch = txn.read_messages(channel.channel_id, seq, 4096)
                    if not batch:
                        break
                    for s, record in batch:
                        m = MsgProto.FromString(record)
                        msgs.append((s, bytes(m.data), m.timestamp))
                    seq = batch[-1][0] + 1
                out["messages"][channel.name] = msgs
                out["subs"][channel.name] = txn.list_subscriptions(channel.channel_id)
    finally:
        store.close()
    return out


# -- what the scenarios check --

def check_acked(contents: list, acked: list[bytes], what: str = "") -> None:
    """No acknowledged payload missing from a channel's [(seq, data, ts)], and the
    payloads keep the order they were acknowledged in (duplicates from retried
    publishes are allowed; the first copy of each must be in order)."""
    datas = [data for _, data, _ in contents]
    seqs = [seq for seq, _, _ in contents]
    assert seqs == sorted(set(seqs)), f"{what}: sequences not strictly increasing"
    if seqs:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{what}: a sequence gap"
    present = set(datas)
    missing = [a for a in acked if a not in present]
    assert not missing, (f"{what}: {len(missing)} acknowledged messages missing, e.g. "
                         f"{missing[:10]} (channel holds {len(datas)})")
    first_pos = {}
    for pos, data in enumerate(datas):
        first_pos.setdefault(data, pos)
    positions = [first_pos[a] for a in acked]
    disorder = [(acked[i], acked[i + 1]) for i in range(len(acked) - 1)
                if positions[i] >= positions[i + 1]]
    assert not disorder, f"{what}: acknowledged messages out of order, e.g. {disorder[:5]}"
