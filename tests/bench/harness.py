"""Processes for the bench: the two servers, fake servers, and load generator children.

Every process started here is stopped by the ``with`` block or ``close`` that owns it,
on errors and Ctrl-C as well.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support.procs import (REPO, VENV_BIN, ServerProcess, free_port, nats_server_process,
                                 runnel_process)

HOST = "127.0.0.1"
_TICKS = os.sysconf("SC_CLK_TCK")


def machine_info(servers: str) -> list[str]:
    """The header every bench prints: when, on what, how loaded; ``servers`` says what
    ran (``{nats}`` is replaced by nats-server's version line)."""
    nats_version = subprocess.run([str(VENV_BIN / "nats-server"), "--version"],
                                  capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [f"date       {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
            f"machine    {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
            f"load avg   {load} (1, 5, 15 min, at start)",
            f"python     {platform.python_version()} ({sys.executable})",
            f"servers    {servers.format(nats=nats_version)}"]


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


class ChildProcess:
    """A load generator process on the ``child`` stdio handshake: "ready [t]", maybe
    "go" (or other lines the child reads), progress lines, then one JSON result line."""

    def __init__(self, name: str, argv: list[str], log_path: Path):
        self.name = name
        self._log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, cwd=REPO,
                                     process_group=0)  # Ctrl-C reaches only the bench
        self._buf = b""

    def try_line(self, timeout: float) -> str | None:
        """The next line, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                return None
            data = os.read(fd, 1 << 20)
            if not data:
                raise RuntimeError(f"{self.name} exited with {self.proc.wait()}:\n"
                                   f"{self.log_tail()}")
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def line(self, timeout: float) -> str:
        line = self.try_line(timeout)
        if line is None:
            raise TimeoutError(f"{self.name}: no answer within {timeout:.0f}s")
        return line

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self._log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60.0) -> None:
        line = self.line(timeout)
        if not line.startswith("ready"):
            raise RuntimeError(f"{self.name}: no ready ({line!r}):\n{self.log_tail()}")

    def send(self, text: str) -> None:
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def go(self) -> None:
        self.send("go")

    def result(self, timeout: float = 120.0) -> dict:
        """The JSON result line (progress lines before it are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.0, deadline - time.monotonic()))
            if line.startswith("{"):
                return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._log):
            with contextlib.suppress(OSError):
                stream.close()


class Child(ChildProcess):
    """A core load generator (rawgen, pygen, fakeserver roles)."""

    def __init__(self, module: str, role: str, port: int, count: int, log_dir: Path):
        super().__init__(f"{module} {role}",
                         [sys.executable, "-m", f"tests.bench.{module}", role, HOST, str(port),
                          str(count)],
                         log_dir / f"{module}-{role}.log")


@contextlib.contextmanager
def children():
    """Collects child processes and kills whatever is still running on the way out."""
    started: list[ChildProcess] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.close()
