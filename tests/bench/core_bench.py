"""`make bench`: core NATS throughput of Runnel beside nats-server, 128-byte payloads.

    python -m tests.bench.core_bench [--runs R] [--scale F] [--generator raw|nats-py]

Two load generators (rawgen: pre-encoded frames over a plain socket; pygen: nats-py)
each drive both servers in two scenarios, publish-only and publish→subscribe. Every
server runs in its own process, fresh for each scenario, and every generator role
in its own process. Runs alternate between the servers; the table gives medians
and the ratio Runnel / nats-server. Each generator's ceiling, against a fake server
that does no broker work, is measured too. Env: BENCH_RUNS, BENCH_SCALE.
See tests/bench/README.md for the method.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from broker.server.server import VERSION as RUNNEL_VERSION

from . import entry, harness, measure, startup

GENERATORS = {"raw": "rawgen", "nats-py": "pygen"}
SCENARIOS = {"publish-only": measure.publish_only, "pub→sub": measure.publish_subscribe}
SERVERS = ("runnel", "nats-server")
# Messages per run: about 1-1.5 s of Runnel's time each on a 2-core machine. The raw
# ceilings get more, as they run at ~10M msgs/s.
MESSAGES = {("raw", "publish-only"): 1_000_000, ("raw", "pub→sub"): 600_000,
            ("nats-py", "publish-only"): 1_000_000, ("nats-py", "pub→sub"): 300_000}
CEILING_MESSAGES = {("raw", "publisher"): 3_000_000, ("raw", "subscriber"): 3_000_000,
                    ("nats-py", "publisher"): 1_000_000, ("nats-py", "subscriber"): 300_000}
GENERATOR_BOUND = 0.8  # a median at or above this share of the generator's ceiling


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="core_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 5)),
                        help="runs per server and scenario (env BENCH_RUNS, default 5)")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1)),
                        help="multiply every message count (env BENCH_SCALE, default 1)")
    parser.add_argument("--generator", choices=sorted(GENERATORS), action="append",
                        help="only this load generator (repeatable; default: both)")
    return parser.parse_args(argv)


def fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def print_sample(label: str, index: int, runs: int, server: str, sample: measure.Sample) -> None:
    server_cpu = "" if sample.server_cpu is None else f"  server cpu {sample.server_cpu:4.0%}"
    missing = "" if sample.complete else f"  INCOMPLETE ({sample.count:,} received)"
    print(f"  {label:<22} run {index + 1}/{runs}  {server:<11} {fmt_rate(sample.rate):>11} msgs/s"
          f"  {sample.seconds:6.3f} s{server_cpu}  generator cpu {sample.generator_cpu:4.0%}"
          f"{missing}", flush=True)


def machine_info() -> list[str]:
    return harness.machine_info(f"{{nats}}; Runnel {RUNNEL_VERSION} (python -m broker, uvloop)")


def bench_brokers(generator: str, scenario: str, runs: int, count: int,
                  log_dir: Path) -> dict[str, list[measure.Sample]]:
    """R runs per server on fresh servers, alternating which goes first."""
    samples: dict[str, list[measure.Sample]] = {name: [] for name in SERVERS}
    label = f"{generator} {scenario}"
    with harness.brokers(log_dir) as servers:
        for index in range(runs):
            order = SERVERS if index % 2 == 0 else SERVERS[::-1]
            for name in order:
                server = servers[name]
                sample = SCENARIOS[scenario](GENERATORS[generator], server.port, count, log_dir,
                                             server.proc.pid)
                samples[name].append(sample)
                print_sample(label, index, runs, name, sample)
    print(f"  {label:<22} median      runnel {fmt_rate(measure.median_rate(samples['runnel']))} "
          f"msgs/s, nats-server {fmt_rate(measure.median_rate(samples['nats-server']))} msgs/s\n",
          flush=True)
    return samples


def bench_ceilings(generator: str, runs: int, counts: dict, log_dir: Path) -> dict:
    """The generator alone: its publisher into a sink, its subscriber fed by a source."""
    module = GENERATORS[generator]
    medians = {}
    for role, mode in (("publisher", "sink"), ("subscriber", "source")):
        count = counts[(generator, role)]
        label = f"{generator} {role} ceiling"
        samples = []
        with harness.fake_server(log_dir, mode, count) as fake:
            for index in range(runs):
                if role == "publisher":
                    sample = measure.publish_only(module, fake.port, count, log_dir)
                else:
                    sample = measure.subscribe_only(module, fake.port, count, log_dir)
                samples.append(sample)
                print_sample(label, index, runs, f"fake {mode}", sample)
        medians[role] = measure.median_rate(samples)
        print(f"  {label:<22} median      {fmt_rate(medians[role])} msgs/s\n", flush=True)
    return medians


def ratio(runnel: float | None, nats: float | None) -> str:
    return "n/a" if not runnel or not nats else f"{runnel / nats:.2f}x"


def flagged(rate: float | None, ceiling: float | None) -> str:
    """The rate, with a * when it is close enough to the generator's ceiling to be bound by it."""
    bound = rate and ceiling and rate >= GENERATOR_BOUND * ceiling
    return fmt_rate(rate) + ("*" if bound else " ")


def print_table(results: dict, ceilings: dict, runs: int) -> None:
    print(f"Core NATS throughput, 128-byte payloads, median of {runs} runs (msgs/s)")
    header = (f"{'scenario':<14} {'generator':<9} {'Runnel':>12} {'nats-server':>13} "
              f"{'ratio':>6}   {'generator ceiling':>17}")
    print(header)
    print("-" * len(header))
    for (generator, scenario), samples in results.items():
        medians = {name: measure.median_rate(samples[name]) for name in SERVERS}
        cap = ceilings[generator]
        ceiling = cap["publisher"] if scenario == "publish-only" else min(
            (v for v in cap.values() if v), default=None)
        print(f"{scenario:<14} {generator:<9} {flagged(medians['runnel'], ceiling):>12} "
              f"{flagged(medians['nats-server'], ceiling):>13} "
              f"{ratio(medians['runnel'], medians['nats-server']):>6}   {fmt_rate(ceiling):>17}")
    for (generator, scenario), samples in results.items():
        for name in SERVERS:
            missed = sum(not sample.complete for sample in samples[name])
            if missed:
                print(f"! {scenario} {generator}: {missed} of {runs} {name} runs lost messages "
                      f"(left out of the median; see the run lines above)")
    print(f"ratio = Runnel / nats-server. generator ceiling = the same generator against a fake\n"
          f"server that does no broker work (pub→sub: the lower of its publisher and subscriber\n"
          f"ceilings). * = at least {GENERATOR_BOUND:.0%} of that ceiling: the load generator, not "
          f"the server,\nis what holds this figure back.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    generators = args.generator or list(GENERATORS)
    counts = {key: max(1000, int(n * args.scale)) for key, n in MESSAGES.items()}
    ceiling_counts = {key: max(1000, int(n * args.scale)) for key, n in CEILING_MESSAGES.items()}
    started = time.monotonic()
    print("\n".join(machine_info()) + "\n", flush=True)
    results, ceilings = {}, {}
    with tempfile.TemporaryDirectory(prefix="runnel-bench-") as tmp:
        log_dir = Path(tmp)
        for generator in generators:
            ceilings[generator] = bench_ceilings(generator, args.runs, ceiling_counts, log_dir)
            for scenario in SCENARIOS:
                results[(generator, scenario)] = bench_brokers(
                    generator, scenario, args.runs, counts[(generator, scenario)], log_dir)
    print("messages per run: " + ", ".join(
        f"{g} {s} {counts[(g, s)]:,}" for g, s in results) + "\n")
    print_table(results, ceilings, args.runs)
    print()
    startup.report()
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    entry.run(main)
