"""Runnel node processes for a chaos run: start, kill -9, pause, resume, restart.

A node is ``python -m broker ... --clustered`` with its own client, monitoring and Raft
ports, its own data directory and log file (appended across restarts, each start
marked). ``wrap`` prefixes the command (``ip netns exec <ns>`` for partitions).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER_ID = "test-cluster"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class NodeSpec:
    node_id: str
    host: str
    port: int
    http_port: int
    raft_port: int
    data_dir: str
    log_path: str
    wrap: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def peer(self) -> str:
        return f"{self.node_id}@{self.host}:{self.raft_port}"


class Node:
    """One broker process; ``flags`` are appended to every start, ``env`` added."""

    def __init__(self, spec: NodeSpec, peers: list[str], flags: list[str], env: dict) -> None:
        self.spec = spec
        self.peers = peers
        self.flags = flags
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0

    @property
    def node_id(self) -> str:
        return self.spec.node_id

    def argv(self) -> list[str]:
        s = self.spec
        return [*s.wrap, sys.executable, "-m", "broker", "-a", s.host, "-p", str(s.port),
                "-m", str(s.http_port), "-st", "file", "-dir", s.data_dir, "--clustered",
                "--cluster_node_id", s.node_id, "--cluster_peers", ",".join(self.peers),
                *self.flags]

    def start(self) -> None:
        assert not self.alive(), f"{self.node_id} is already running"
        os.makedirs(self.spec.data_dir, exist_ok=True)
        self.starts += 1
        with open(self.spec.log_path, "ab") as log:
            log.write(f"\n=== chaos: start #{self.starts} of {self.node_id} at "
                      f"{time.strftime('%H:%M:%S')} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=REPO, env={**os.environ, **self.env},
                                         start_new_session=True)
        self.paused = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """kill -9 and reap."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)
        self.paused = False

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM (after SIGCONT if paused), then SIGKILL after ``timeout_s``."""
        if not self.alive():
            return self.returncode()
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout_s)

    def get_json(self, path: str, timeout_s: float = 1.0) -> dict | None:
        """GET the monitoring endpoint; None if the node does not answer."""
        if not self.alive() or self.paused:
            return None
        url = f"http://{self.spec.host}:{self.spec.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def clusterz(self) -> dict | None:
        return self.get_json("/streaming/clusterz")

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.spec.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""
