"""deploy/probe.py (`runnel-probe` in the image): live = /healthz answers 200; ready = live
and, when clustered, a leader is known (tests/deploy/test_guide.py runs it on a cluster)."""
from __future__ import annotations

import subprocess
import sys

from tests.deploy.layout import DEPLOY
from tests.support.procs import free_port


def probe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEPLOY / "probe.py"), *args], env=env,
                          capture_output=True, text=True, timeout=30)


def test_a_standalone_node_is_live_and_ready(runnel):
    for check in ("live", "ready"):
        proc = probe(check, runnel.http_url)
        assert (proc.returncode, proc.stdout) == (0, f"runnel-probe {check}: ok\n")
    proc = probe("ready", env={"RUNNEL_MONITOR_URL": runnel.http_url, "PATH": ""})
    assert proc.returncode == 0


def test_no_answer_fails_after_the_wait():
    url = f"http://127.0.0.1:{free_port()}"
    proc = probe("live", url, "--wait", "0.3")
    assert proc.returncode == 1 and proc.stderr.startswith(f"runnel-probe live: {url}/healthz")


def test_usage():
    for args in ([], ["maybe"], ["live", "--wait"], ["live", "a", "b"]):
        proc = probe(*args)
        assert proc.returncode == 2 and "runnel-probe live" in proc.stderr
