"""One timed run of one scenario, and the median of several.

A run's rate is messages / seconds, where the clock starts when the publisher
starts writing and stops when the last message is where the scenario wants it:
read by the server (publish-only: the publisher's closing PING got its PONG) or
received by the subscriber (publish→subscribe). Start and end are taken in
different processes from CLOCK_MONOTONIC, which is machine-wide on Linux.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from .harness import Child, children, cpu_seconds


@dataclass
class Sample:
    count: int
    seconds: float
    complete: bool  # every message arrived, counted exactly
    generator_cpu: float  # CPU seconds of the generator processes / wall seconds
    server_cpu: float | None = None  # the same for the server, when there is one

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def _server_cpu(pid: int | None) -> float:
    return cpu_seconds(pid) if pid else 0.0


def publish_only(module: str, port: int, count: int, log_dir: Path,
                 server_pid: int | None = None) -> Sample:
    with children() as procs:
        pub = Child(module, "pub", port, count, log_dir)
        procs.append(pub)
        pub.wait_ready()
        cpu0 = _server_cpu(server_pid)
        pub.go()
        res = pub.result()
        cpu1 = _server_cpu(server_pid)
    seconds = res["t1"] - res["t0"]
    return Sample(count, seconds, True, res["cpu"] / seconds,
                  (cpu1 - cpu0) / seconds if server_pid else None)


def publish_subscribe(module: str, port: int, count: int, log_dir: Path,
                      server_pid: int | None = None) -> Sample:
    with children() as procs:
        sub = Child(module, "sub", port, count, log_dir)
        procs.append(sub)
        pub = Child(module, "pub", port, count, log_dir)
        procs.append(pub)
        sub.wait_ready()  # subscribed and flushed before anything is published
        pub.wait_ready()
        cpu0 = _server_cpu(server_pid)
        pub.go()
        pres, sres = pub.result(), sub.result()
        cpu1 = _server_cpu(server_pid)
    seconds = sres["t_last"] - pres["t0"]
    return Sample(sres["count"], seconds, sres["exact"], (pres["cpu"] + sres["cpu"]) / seconds,
                  (cpu1 - cpu0) / seconds if server_pid else None)


def subscribe_only(module: str, port: int, count: int, log_dir: Path) -> Sample:
    """A subscriber fed by the fake source: from its handshake to its last message."""
    with children() as procs:
        sub = Child(module, "sub", port, count, log_dir)
        procs.append(sub)
        sub.wait_ready()
        res = sub.result()
    seconds = res["t_last"] - res["t_ready"]
    return Sample(res["count"], seconds, res["exact"], res["cpu"] / seconds)


def median_rate(samples: list[Sample]) -> float | None:
    rates = [s.rate for s in samples if s.complete]
    return statistics.median(rates) if rates else None
