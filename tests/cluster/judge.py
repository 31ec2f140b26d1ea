"""A node-nats-streaming process of the cluster scenarios (js/failover_sub.js): its
JSON events read from stdout in a thread, commands written to stdin, waits with
deadlines."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.stan.conftest import WAIT, Judge
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


class NodeSub(Judge):
    """``failover_sub.js`` running: a subscriber given every node of the cluster. A
    judge of tests/stan whose waits do not stop at error events (connection errors are
    part of a failover)."""

    def __init__(self, servers: list[str], client: str, channel: str, **options):
        if not NODE_MODULES.is_dir():
            pytest.fail("node-nats-streaming is not installed: run `make judges`", pytrace=False)
        super().__init__(client, [NODE, str(SCRIPTS / "failover_sub.js"), "--servers",
                                  ",".join(servers), "--client", client, "--channel", channel,
                                  *_flags(options)])

    def _event(self, event: dict) -> dict:
        event["t"] = time.monotonic()  # when it arrived (failover timing)
        return event

    @property
    def datas(self) -> set[str]:
        return {m["data"] for m in self.msgs}

    def wait_until(self, condition, timeout: float = WAIT, what: str = "condition",
                   fail_on_error: bool = False):
        return super().wait_until(condition, timeout, what, fail_on_error)

    def stop(self, timeout: float = 10.0) -> None:
        """Close its connection (the STAN session too) and wait for it to exit."""
        self.send("stop")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
