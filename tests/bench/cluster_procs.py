"""Processes of the cluster bench: 3-node clusters and generator children.

`runnel_cluster` and `jetstream_cluster` are ``with`` blocks that start three fresh
nodes on free 127.0.0.1 ports with empty data directories and, on the way out (errors
and Ctrl-C included), kill every node still running and remove the directories.

Both kinds offer the same small interface to the bench: ``members`` (with ``port``,
``name``, ``kill()``, ``alive()``, ``cpu()``), ``leader()`` (Runnel: the Raft leader
every node agrees on; JetStream: the stream leader from ``$JS.API.STREAM.INFO``),
``settle()`` and ``read_back()`` (every payload of the channel / stream, per node that
serves it).
"""
from __future__ import annotations

import contextlib
import json
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from broker.protocol.nats.events import Msg, Ping
from broker.protocol.stan import Ack, MsgProto
from tests.support.procs import REPO, VENV_BIN, free_port, port_open, wait_for

from . import stan_wire
from .harness import ChildProcess, children, cpu_seconds
from .stan_wire import DELIVER_SID, PONG

HOST = "127.0.0.1"
CHANNEL = "bench"
STREAM = CHANNEL.upper()
START_S = 30.0
#: Runnel cluster variants: the bench's subject (fsync on, the default) and a context
#: figure without fsync.
RUNNEL_FLAGS = {"runnel": (), "runnel-nosync": ("--cluster_sync=false",)}


@dataclass
class Member:
    name: str
    port: int
    argv: list[str]
    log_path: Path
    http_port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def spawn(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=REPO, process_group=0)  # Ctrl-C: the bench only

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def reap(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def cpu(self) -> float:
        try:
            return cpu_seconds(self.proc.pid)
        except (OSError, AttributeError):
            return 0.0

    def get(self, path: str, timeout: float = 1.0) -> dict | None:
        if not self.alive() or not self.http_port:
            return None
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.http_port}{path}",
                                        timeout=timeout) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class _Cluster:
    title = ""
    proto = ""

    def __init__(self, root: Path):
        self.root = root
        self.members: list[Member] = []

    def live(self) -> list[Member]:
        return [m for m in self.members if m.alive()]

    def others(self, *exclude: Member) -> list[Member]:
        return [m for m in self.live() if m not in exclude]

    def _wait_listening(self) -> None:
        for member in self.members:
            wait_for(lambda m=member: not m.alive() or port_open(HOST, m.port), START_S,
                     what=f"{member.name} to listen on {member.port}")
            if not member.alive():
                raise RuntimeError(f"{self.title} {member.name} exited with "
                                   f"{member.proc.returncode}:\n{member.log_tail()}")

    def close(self) -> None:
        for member in self.members:
            member.terminate()
        for member in self.members:
            member.reap()


class RunnelCluster(_Cluster):
    """Three ``python -m broker --clustered`` nodes, file store, --cluster_sync default
    (on): every node is listed in --cluster_peers with its Raft port."""

    title = "Runnel 3-node"
    proto = "stan"

    def __init__(self, root: Path, log_dir: Path, extra: tuple = ()):
        super().__init__(root)
        ports = [(free_port(HOST), free_port(HOST), free_port(HOST)) for _ in range(3)]
        peers = ",".join(f"n{i + 1}@{HOST}:{raft}" for i, (_, _, raft) in enumerate(ports))
        for i, (port, http, _) in enumerate(ports):
            name = f"n{i + 1}"
            argv = [sys.executable, "-m", "broker", "-a", HOST, "-p", str(port), "-m", str(http),
                    "-st", "file", "-dir", str(root / name), "--clustered",
                    "--cluster_node_id", name, "--cluster_peers", peers, *extra]
            self.members.append(Member(name, port, argv, log_dir / f"runnel-{name}.log", http))

    def start(self) -> None:
        for member in self.members:
            member.spawn()
        self._wait_listening()
        self.leader()

    def by_name(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def leader(self, timeout: float = START_S) -> Member:
        """The leader every live node names, itself in role Leader."""
        def agreed():
            views = {m.name: m.get("/streaming/serverz") for m in self.live()}
            if any(v is None for v in views.values()):
                return None
            leaders = {v.get("leader") for v in views.values()}
            if len(leaders) != 1 or not (name := leaders.pop()):
                return None
            if name not in views or views[name].get("role") != "Leader":
                return None
            return self.by_name(name)
        return wait_for(agreed, timeout, 0.05, what="a Runnel leader all nodes agree on")

    def settle(self, timeout: float = START_S) -> None:
        """Until the live nodes have applied the same index, equal to the commit index,
        twice in a row."""
        previous = [None]

        def settled():
            views = [m.get("/streaming/clusterz") for m in self.live()]
            if any(v is None for v in views):
                return False
            keys = {(v["leader"], v["commit_index"], v["applied_index"]) for v in views}
            if len(keys) != 1:
                previous[0] = None
                return False
            leader, commit, applied = keys.pop()
            if not leader or commit != applied:
                previous[0] = None
                return False
            if previous[0] == applied:
                return True
            previous[0] = applied
            return False
        wait_for(settled, timeout, 0.05, what="the Runnel nodes to apply every entry")

    def read_back(self, timeout: float = START_S) -> dict[str, list[bytes]]:
        """Every payload of the channel, read through STAN on each live node."""
        self.settle(timeout)
        out = {}
        for member in self.live():
            z = member.get(f"/streaming/channelsz?channel={CHANNEL}") or {}
            out[member.name] = read_stan_channel(member.port, z.get("last_seq", 0), timeout)
        return out


def read_stan_channel(port: int, last_seq: int, timeout: float) -> list[bytes]:
    """Messages 1..last_seq of the channel, from a plain subscription (First), acked."""
    if not last_seq:
        return []
    link = stan_wire.Link(HOST, port, timeout, name="bench-readback")
    try:
        inbox = f"_INBOX.{stan_wire.nuid()}"
        link.sub(inbox, DELIVER_SID)
        link.flush()
        client_id = f"bench-readback-{stan_wire.nuid(8)}"
        response, _ = stan_wire.stan_connect(link, client_id)
        ack_inbox = stan_wire.stan_subscribe(link, response, client_id, CHANNEL, inbox)
        ack_head = b"PUB %s " % ack_inbox.encode()
        got: dict[int, bytes] = {}
        pending = [m for m in link.msgs if m.sid == DELIVER_SID]
        deadline = time.monotonic() + timeout
        sock = link.sock
        while True:
            out = []
            for msg in pending:
                proto = MsgProto.FromString(msg.payload)
                got.setdefault(proto.sequence, bytes(proto.data))
                body = Ack(subject=CHANNEL, sequence=proto.sequence).SerializeToString()
                out.append(b"%s%d\r\n%s\r\n" % (ack_head, len(body), body))
            if out:
                sock.sendall(b"".join(out))
            if len(got) >= last_seq:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"read back {len(got)} of {last_seq} messages on {port}")
            pending = []
            if select.select([sock], [], [], 0.5)[0]:
                data = sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("the server closed the read-back connection")
                for event in link.parser.feed(data):
                    if isinstance(event, Ping):
                        sock.sendall(PONG)
                    elif isinstance(event, Msg) and event.sid == DELIVER_SID:
                        pending.append(event)
        return [got[seq] for seq in sorted(got)]
    finally:
        link.close()


class JetStreamCluster(_Cluster):
    """Three nats-server processes with JetStream and routes between them (one NATS
    cluster), every JetStream setting at its default; stream BENCH (subject bench),
    file storage, 3 replicas, every other stream setting at its default."""

    title = "JetStream R3"
    proto = "js"

    def __init__(self, root: Path, log_dir: Path):
        super().__init__(root)
        ports = [(free_port(HOST), free_port(HOST), free_port(HOST)) for _ in range(3)]
        routes = ", ".join(f"nats://{HOST}:{route}" for _, route, _ in ports)
        for i, (port, route, http) in enumerate(ports):
            name = f"s{i + 1}"
            conf = root / f"{name}.conf"
            conf.write_text(f'server_name: {name}\nlisten: "{HOST}:{port}"\n'
                            f'http: "{HOST}:{http}"\n'
                            f'jetstream {{ store_dir: "{root / name}" }}\n'
                            f'cluster {{ name: bench, listen: "{HOST}:{route}", '
                            f'routes: [{routes}] }}\n')
            argv = [str(VENV_BIN / "nats-server"), "-c", str(conf)]
            self.members.append(Member(name, port, argv, log_dir / f"nats-{name}.log", http))

    def start(self) -> None:
        for member in self.members:
            member.spawn()
        self._wait_listening()
        config = {"name": STREAM, "subjects": [CHANNEL], "storage": "file", "num_replicas": 3}
        self.request(f"$JS.API.STREAM.CREATE.{STREAM}", config)

        def current():
            info = self.request(f"$JS.API.STREAM.INFO.{STREAM}", {}, timeout=5.0)
            cluster = info.get("cluster", {})
            replicas = cluster.get("replicas", [])
            return (cluster.get("leader") and len(replicas) == 2
                    and all(r.get("current") for r in replicas))
        wait_for(current, START_S, 0.1, what="the stream's replicas to be current")

    def request(self, subject: str, body: dict, timeout: float = START_S,
                via: Member | None = None) -> dict:
        """A JetStream API request, retried while the cluster answers nothing or a
        temporary error (meta leader or stream leader not elected yet)."""
        deadline = time.monotonic() + timeout
        last = None
        for member in ([via] if via else []) + self.live():
            try:
                link = stan_wire.Link(HOST, member.port, 5.0, name="bench-setup")
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no live nats-server")
        try:
            while True:
                msg = link.request(subject, json.dumps(body).encode(), timeout=1.0)
                if msg is not None and not msg.headers:
                    answer = json.loads(msg.payload)
                    if "error" not in answer:
                        return answer
                    last = answer["error"]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{subject}: no good answer within {timeout:.0f} s "
                                       f"(last: {last})")
                time.sleep(0.1)
        finally:
            link.close()

    def leader(self, timeout: float = START_S) -> Member:
        name = self.request(f"$JS.API.STREAM.INFO.{STREAM}", {}, timeout)["cluster"]["leader"]
        return next(m for m in self.members if m.name == name)

    def meta_leader(self) -> str:
        """The JetStream meta leader's name (monitoring /jsz), '' when unknown."""
        for member in self.live():
            jsz = member.get("/jsz")
            if jsz and jsz.get("meta_cluster", {}).get("leader"):
                return jsz["meta_cluster"]["leader"]
        return ""

    def settle(self, timeout: float = START_S) -> None:
        def current():
            info = self.request(f"$JS.API.STREAM.INFO.{STREAM}", {}, timeout)
            live = {m.name for m in self.live()}
            replicas = [r for r in info.get("cluster", {}).get("replicas", [])
                        if r.get("name") in live]
            return info.get("cluster", {}).get("leader") and all(r.get("current")
                                                                  for r in replicas)
        wait_for(current, timeout, 0.1, what="the stream's live replicas to be current")

    def read_back(self, timeout: float = START_S) -> dict[str, list[bytes]]:
        """Every payload of the stream, from an ephemeral push consumer (ack none)."""
        self.settle(timeout)
        member = self.live()[0]
        state = self.request(f"$JS.API.STREAM.INFO.{STREAM}", {}, timeout, via=member)["state"]
        total = state["messages"]
        link = stan_wire.Link(HOST, member.port, timeout, name="bench-readback")
        try:
            inbox = f"_INBOX.{stan_wire.nuid()}"
            link.sub(inbox, DELIVER_SID)
            link.flush()
            config = {"deliver_subject": inbox, "deliver_policy": "all", "ack_policy": "none"}
            stan_wire.js_request(link, f"$JS.API.CONSUMER.CREATE.{STREAM}",
                                 {"stream_name": STREAM, "config": config})
            deadline = time.monotonic() + timeout
            while sum(1 for m in link.msgs if m.sid == DELIVER_SID) < total:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"read back {len(link.msgs)} of {total} messages")
                try:
                    link._pump(deadline)
                except TimeoutError:
                    pass
            return {member.name: [bytes(m.payload) for m in link.msgs
                                  if m.sid == DELIVER_SID and m.headers is None]}
        finally:
            link.close()


@contextlib.contextmanager
def cluster(kind: str, log_dir: Path, data_root: Path):
    """A fresh, started 3-node cluster of ``kind`` ("runnel", "runnel-nosync",
    "jetstream")."""
    root = data_root / f"{kind}-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    if kind == "jetstream":
        made = JetStreamCluster(root, log_dir)
    else:
        made = RunnelCluster(root, log_dir, RUNNEL_FLAGS[kind])
    try:
        made.start()
        yield made
    finally:
        made.close()
        shutil.rmtree(root, ignore_errors=True)


class ClusterGen(ChildProcess):
    """A ``cluster_gen`` or ``stan_gen`` process on the ``child`` stdio handshake, whose
    stdout may carry progress lines ("p ...") before its one JSON result line."""

    def __init__(self, module: str, role: str, proto: str, port: int, log_dir: Path,
                 *extra: str):
        super().__init__(f"{module} {role} {proto}",
                         [sys.executable, "-m", f"tests.bench.{module}", role, proto, HOST,
                          str(port), *extra],
                         log_dir / f"{module}-{role}-{proto}.log")
        self.progress = ""

    def poll_progress(self) -> str:
        """Consume the progress lines available now; the latest one."""
        while True:
            line = self.try_line(0.0)
            if line is None:
                return self.progress
            if line.startswith("{"):
                self._buf = line.encode() + b"\n" + self._buf
                return self.progress
            self.progress = line


gens = children  # collects generator processes, kills what still runs on the way out
