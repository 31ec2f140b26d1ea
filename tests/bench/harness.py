"""Processes for the bench: the two servers, fake servers, and load generator children.

Every process started here is stopped by the ``with`` block or ``close`` that owns it,
on errors and Ctrl-C as well.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support.procs import (REPO, ServerProcess, free_port, nats_server_process,
                                 runnel_process)

HOST = "127.0.0.1"
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@contextlib.contextmanager
def brokers(log_dir: Path):
    """A fresh Runnel and a fresh nats-server, both stopped on the way out."""
    servers = {"runnel": runnel_process(log_dir, host=HOST),
               "nats-server": nats_server_process(log_dir, host=HOST)}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@contextlib.contextmanager
def fake_server(log_dir: Path, mode: str, count: int = 0):
    port = free_port(HOST)
    argv = [sys.executable, "-m", "tests.bench.fakeserver", mode, HOST, str(port), str(count)]
    server = ServerProcess(argv, HOST, port, log_path=log_dir / f"fake-{mode}.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Child:
    """A load generator process speaking the ``child`` stdio handshake."""

    def __init__(self, module: str, role: str, port: int, count: int, log_dir: Path):
        self.name = f"{module} {role}"
        self._log = open(log_dir / f"{module}-{role}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"tests.bench.{module}", role, HOST, str(port), str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=REPO,
            process_group=0)  # Ctrl-C reaches only the bench, which then kills this child
        self._buf = b""

    def line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no answer within {timeout}s")
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
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not self.line(timeout).startswith("ready"):
            raise RuntimeError(f"{self.name}: unexpected handshake")

    def go(self) -> None:
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 90.0) -> dict:
        return json.loads(self.line(timeout))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        self._log.close()


@contextlib.contextmanager
def children():
    """Collects Child processes and kills whatever is still running on the way out."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.close()
