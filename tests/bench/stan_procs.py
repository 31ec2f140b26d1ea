"""Processes of the streaming bench: servers, fake servers and generator children.

Every process is started fresh by a ``with`` block that stops it on the way out, on
errors and Ctrl-C as well. Servers listen on free 127.0.0.1 ports; their data lives
in a directory of the bench's temporary directory, removed with the server.
"""
from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import (ServerProcess, free_port, nats_server_process, runnel_process)

from . import stan_wire
from .harness import ChildProcess, children, cpu_seconds

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


class Gen(ChildProcess):
    """A ``stan_gen`` process: "ready [t]", maybe "go", then one JSON line."""

    def __init__(self, role: str, proto: str, port: int, count: int, log_dir: Path,
                 *extra: str):
        super().__init__(f"stan_gen {role} {proto}",
                         [sys.executable, "-m", "tests.bench.stan_gen", role, proto, HOST,
                          str(port), str(count), *extra],
                         log_dir / f"stan-gen-{role}-{proto}.log")


gens = children  # collects Gen processes, kills what still runs on the way out


def server_cpu(proc: ServerProcess) -> float:
    return cpu_seconds(proc.proc.pid)
