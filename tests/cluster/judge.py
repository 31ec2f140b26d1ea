"""A node-nats-streaming process of the cluster scenarios (js/failover_sub.js): its
JSON events read from stdout in a thread, commands written to stdin, waits with
deadlines."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.procs import REPO

NODE = shutil.which("node") or "node"
SCRIPTS = Path(__file__).resolve().parent / "js"
NODE_MODULES = REPO / "tests" / "js" / "node_modules" / "node-nats-streaming"


def _flags(options: dict) -> list[str]:
    argv = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        argv += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return argv


class NodeSub:
    """``failover_sub.js`` running: a subscriber given every node of the cluster."""

    def __init__(self, servers: list[str], client: str, channel: str, **options):
        if not NODE_MODULES.is_dir():
            pytest.fail("node-nats-streaming is not installed: run `make judges`", pytrace=False)
        self.name = client
        self.argv = [NODE, str(SCRIPTS / "failover_sub.js"), "--servers", ",".join(servers),
                     "--client", client, "--channel", channel, *_flags(options)]
        self.events: list[dict] = []
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(self.argv, cwd=REPO, text=True, bufsize=1,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                if line.startswith("{"):
                    try:
                        event = json.loads(line)
                        event["t"] = time.monotonic()
                        self.events.append(event)
                    except ValueError:
                        pass
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def of(self, event: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e.get("event") == event]

    @property
    def msgs(self) -> list[dict]:
        return self.of("msg")

    @property
    def datas(self) -> set[str]:
        return {m["data"] for m in self.msgs}

    def describe(self, lines: int = 40) -> str:
        with self._cond:
            out = "\n    ".join(self.lines[-lines:])
        return f"{self.name} (exit {self.proc.poll()}):\n    {out}"

    def wait_until(self, condition, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = condition(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._thread.is_alive()):
                    break
                self._cond.wait(min(left, 0.05))
        value = condition(self)
        if value:
            return value
        raise AssertionError(f"waiting {timeout}s for {what}: {self.describe()}")

    def wait_event(self, event: str, timeout: float = 15.0) -> dict:
        return self.wait_until(lambda s: (s.of(event) or [None])[0], timeout, f"event {event}")

    def send(self, command: str) -> None:
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """Close its connection (the STAN session too) and wait for it to exit."""
        self.send("stop")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
