"""`runnel bench` as a subprocess (`python -m broker bench ...`) against a real FILE-store
node: the table and its numbers, `--json`, `--plot` (a PNG that is opened and decoded),
the progress line on a terminal, Ctrl-C mid-run, bad usage and a node that is down.

Counts are small: the point is that the numbers add up (deliveries = PubAcks x
subscribers, p50 <= p90 <= p99 <= max), not how large they are.
"""
from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from tests.support.procs import REPO, free_port
from tests.support.stan import wait_stan_ready

pytestmark = pytest.mark.timeout(60)

PERCENTILE_COLUMNS = ["p50 ms", "p90 ms", "p99 ms", "max ms"]


@pytest.fixture
def node(runnel_factory, tmp_path):
    started = runnel_factory("-st", "file", "-dir", str(tmp_path / "data"))
    asyncio.run(wait_stan_ready(started.url))
    return started


def bench(*args: str, timeout: float = 40) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "broker", "bench", *args], cwd=REPO,
                          text=True, capture_output=True, timeout=timeout)


def rows(out: str) -> dict[str, list[str]]:
    """The table's rows by label (``publish``, ``  pub #1``...), cells as printed."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if all(c in line for c in PERCENTILE_COLUMNS))
    table = {}
    for line in lines[header + 1:]:
        if not line.strip():
            break
        match = re.match(r"(\s*[a-z+]+(?: #\d+)?)\s+(.*)$", line)
        table[match.group(1).strip()] = match.group(2).split()
    return table


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def check_latencies(values: list[float]) -> None:
    assert all(v > 0 for v in values), values
    assert values == sorted(values), f"p50 <= p90 <= p99 <= max: {values}"
    assert values[-1] < 30_000, values        # ms: nothing near a PubAck timeout


def test_table_sync_publishers_and_subscribers(node):
    done = bench("-s", node.url, "-n", "200", "-np", "2", "-ns", "2", "--channel", "t-sync")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "\r" not in done.stderr, "no progress line when stdout is not a terminal"
    out = done.stdout
    assert "2 publisher(s) (sync), 2 subscriber(s)" in out
    assert "one Python process" in out
    table = rows(out)
    # columns: msgs errors seconds msgs/s MB/s p50 p90 p99 max (deliver: no errors column)
    publish, deliver = table["publish"], table["deliver"]
    assert number(publish[0]) == 200 and publish[1] == "0"
    assert number(deliver[0]) == 200 * 2
    assert number(table["pub #1"][0]) + number(table["pub #2"][0]) == 200
    assert number(table["sub #1"][0]) == number(table["sub #2"][0]) == 200
    assert number(table["pub+deliver"][0]) == 600
    for row, first in ((publish, 2), (deliver, 1)):
        seconds, rate = number(row[first]), number(row[first + 1])
        assert seconds > 0 and rate > 0
        # seconds is printed to the millisecond
        assert rate == pytest.approx(number(row[0]) / seconds, rel=0.01 + 0.001 / seconds, abs=1)
        check_latencies([number(cell) for cell in row[first + 3:first + 7]])
    assert "delivered 400 of 400 expected" in out


def test_json_and_plot_async(node, tmp_path):
    import matplotlib.image

    png = tmp_path / "bench.png"
    done = bench("-s", node.url, "-n", "300", "-ns", "3", "-a", "-mpa", "16", "-ms", "64",
                 "--channel", "t-async", "--json", "--plot", str(png))
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    assert res["complete"] is True and res["interrupted"] is False
    assert res["config"]["async"] is True and res["config"]["window"] == 16
    assert res["publish"]["msgs"] == 300 and res["publish"]["errors"] == 0
    assert res["deliver"]["msgs"] == res["deliver"]["expected"] == 300 * 3
    assert [c["msgs"] for c in res["deliver"]["per_client"]] == [300, 300, 300]
    for part in ("publish", "deliver"):
        latency = res[part]["latency_ms"]
        check_latencies([latency[key] for key in ("p50", "p90", "p99", "max")])
        assert res[part]["msgs_per_s"] > 0
        assert res[part]["bytes_per_s"] == pytest.approx(res[part]["msgs_per_s"] * 64)
    assert res["plot"] == str(png)

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    image = matplotlib.image.imread(str(png))
    assert image.shape[:2] == (450, 1200)
    assert image.var() > 0, "the picture is blank"
    # both charts drew something: each half has colours other than white and black
    for half in (image[:, :600, :3], image[:, 600:, :3]):
        coloured = (half.max(axis=2) - half.min(axis=2)) > 0.2
        assert coloured.sum() > 500


def test_progress_line_then_ctrl_c(node):
    """On a terminal: the progress line is rewritten with carriage returns; SIGINT in the
    middle prints the partial table and exits 130 without a traceback."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "broker", "bench", "-s", node.url,
                             "-n", "1000000", "-ns", "1", "--channel", "t-int"],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    output = bytearray()

    def read_until(condition, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:          # the child closed the terminal
                    return
                if not chunk:
                    return
                output.extend(chunk)

    try:
        read_until(lambda: output.count(b"\r[") >= 3 and re.search(rb"acked [1-9]", output),
                   timeout=20)
        assert output.count(b"\r[") >= 3, bytes(output)
        proc.send_signal(signal.SIGINT)
        read_until(lambda: False, timeout=15)      # until the child closes the terminal
        assert proc.wait(timeout=15) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = output.decode(errors="replace")
    assert "Traceback" not in text
    assert "interrupted: partial results" in text
    table = rows(text[text.index("runnel bench:"):].replace("\r\n", "\n"))
    published = number(table["publish"][0])
    assert 0 < published < 1_000_000
    assert number(table["deliver"][0]) >= published - 1


def test_bad_usage_and_node_down(tmp_path):
    done = bench("-np", "0")
    assert done.returncode == 2 and "-np must be at least 1" in done.stderr
    done = bench("--plot", "out.jpg")
    assert done.returncode == 2 and ".png" in done.stderr
    started = time.monotonic()
    done = bench("-s", f"nats://127.0.0.1:{free_port()}", "-n", "10")
    assert done.returncode == 1
    assert "cannot reach" in done.stderr and "test-cluster" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 15
