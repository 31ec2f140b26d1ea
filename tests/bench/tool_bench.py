"""`make bench`, last part: `runnel bench` (the user's tool) against a fresh node: its
table of throughput and latency percentiles, and its chart in build/bench.png."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.procs import REPO, runnel_process
from tests.support.stan import wait_stan_ready


def main() -> int:
    plot = REPO / "build" / "bench.png"
    plot.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="runnel-tool-bench-") as tmp:
        node = runnel_process(Path(tmp), "-st", "file", "-dir", str(Path(tmp) / "data"))
        node.start()
        try:
            asyncio.run(wait_stan_ready(node.url))
            command = [sys.executable, "-m", "broker", "bench", "-s", node.url, "-np", "2",
                       "-ns", "2", "-n", "50000", "-a", "--quiet", "--plot", str(plot)]
            print("$ runnel bench " + " ".join(command[4:]), flush=True)
            return subprocess.run(command, timeout=300).returncode
        finally:
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
