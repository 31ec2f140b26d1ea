"""Processes of the streaming bench: servers, fake servers and generator children.

Every process is started fresh by a ``with`` block that stops it on the way out, on
errors and Ctrl-C as well. Servers listen on free 127.0.0.1 ports; their data lives
in a directory of the bench's temporary directory, removed with the server.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import (REPO, ServerProcess, free_port, nats_server_process,
                                 runnel_process)

from . import stan_wire
from .harness import cpu_seconds

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServerKind:
    key: str
    title: str
    proto: str  # "stan" or "js"
    flags: tuple = ()
    js_sync: str | None = None  # JetStream sync_interval, None = its default


RUNNEL_SYNC = ServerKind("runnel-sync", "Runnel fsync on", "stan")
RUNNEL_NOSYNC = ServerKind("runnel-nosync", "Runnel fsync off", "stan", ("--file_sync=false",))
JETSTREAM = ServerKind("jetstream", "JetStream R1", "js")
JETSTREAM_ALWAYS = ServerKind("jetstream-always", "JetStream R1 sync=always", "js",
                              js_sync="always")


def _server(kind: ServerKind, log_dir: Path, data_dir: Path) -> ServerProcess:
    if kind.proto == "stan":
        return runnel_process(log_dir, "-st", "file", "--dir", str(data_dir), *kind.flags,
                              host=HOST, name=kind.key)
    if kind.js_sync is None:
        return nats_server_process(log_dir, "-js", "-sd", str(data_dir), host=HOST)
    conf = data_dir.parent / f"{data_dir.name}.conf"
    conf.write_text(f'jetstream {{ store_dir: "{data_dir}", sync_interval: {kind.js_sync} }}\n')
    return nats_server_process(log_dir, "-c", str(conf), host=HOST)


@contextlib.contextmanager
def server(kind: ServerKind, log_dir: Path, data_root: Path, channel: str):
    """A fresh server with an empty store; for JetStream, with the stream created."""
    data_dir = data_root / f"{kind.key}-{time.monotonic_ns()}"
    data_dir.mkdir(parents=True)
    proc = _server(kind, log_dir, data_dir)
    try:
        proc.start()
        if kind.proto == "js":
            link = stan_wire.Link(HOST, proc.port, name="bench-setup")
            try:
                stan_wire.js_create_stream(link, channel.upper(), channel)
            finally:
                link.close()
        yield proc
    finally:
        proc.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def fake(mode: str, proto: str, count: int, log_dir: Path):
    port = free_port(HOST)
    argv = [sys.executable, "-m", "tests.bench.stan_fake", mode, proto, HOST, str(port),
            str(count)]
    proc = ServerProcess(argv, HOST, port, log_path=log_dir / f"stan-fake-{mode}-{proto}.log")
    try:
        proc.start(timeout=60.0)
        yield proc
    finally:
        proc.stop()


class Gen:
    """A ``stan_gen`` process: "ready [t]", maybe "go", then one JSON line."""

    def __init__(self, role: str, proto: str, port: int, count: int, log_dir: Path,
                 *extra: str):
        self.name = f"stan_gen {role} {proto}"
        self._log_path = log_dir / f"stan-gen-{role}-{proto}.log"
        self._log = open(self._log_path, "ab")
        argv = [sys.executable, "-m", "tests.bench.stan_gen", role, proto, HOST, str(port),
                str(count), *extra]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, cwd=REPO,
                                     process_group=0)  # Ctrl-C reaches the bench only
        self._buf = b""

    def line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no answer within {timeout:.0f}s")
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 65536)
                if not data:
                    raise RuntimeError(f"{self.name} exited with {self.proc.wait()}:\n"
                                       f"{self.log_tail()}")
                self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self._log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self.line(timeout).startswith("ready"):
            raise RuntimeError(f"{self.name}: unexpected handshake")

    def go(self) -> None:
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 120.0) -> dict:
        return json.loads(self.line(timeout))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._log):
            with contextlib.suppress(OSError):
                stream.close()


@contextlib.contextmanager
def gens():
    """Collects Gen processes and kills whatever is still running on the way out."""
    started: list[Gen] = []
    try:
        yield started
    finally:
        for gen in started:
            gen.close()


def server_cpu(proc: ServerProcess) -> float:
    return cpu_seconds(proc.proc.pid)
