"""`make bench`, streaming part: STAN on Runnel beside JetStream on nats-server.

    python -m tests.bench.stan_bench [--runs R] [--scale F] [--window W] [--no-js-always]

Two scenarios, 128-byte messages on one channel / stream:
  acked publish     one publisher keeps W publishes unacknowledged (pipelined) and
                    stops the clock at the N-th ack (STAN PubAck / JetStream ack)
  publish→consume   the same publisher, and a consumer subscribed before it starts
                    that acks every message; the clock stops when the consumer has N
against three servers, each started fresh with an empty store for every run:
Runnel file store with fsync on (its default) and off (--file_sync=false), and
nats-server with JetStream, a file stream with one replica at its defaults. The
same generator (stan_gen: raw sockets, pre-encoded frames, one process per role)
drives all of them. Runs alternate between the servers; the table gives medians
and the ratios Runnel / JetStream. The generator's ceiling, against fake servers
that do no broker work (stan_fake), is measured in the same run. For context,
JetStream with sync_interval=always (an fsync per write) does the acked publish
with fewer messages (--no-js-always skips it). Env: BENCH_RUNS, BENCH_SCALE.
See tests/bench/STREAMING.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from broker.server.server import VERSION as RUNNEL_VERSION

from . import entry, harness, stan_procs
from .stan_procs import JETSTREAM, JETSTREAM_ALWAYS, RUNNEL_NOSYNC, RUNNEL_SYNC, Gen

CHANNEL = "bench"  # the STAN channel; for JetStream the subject, with stream BENCH
SERVERS = (RUNNEL_SYNC, RUNNEL_NOSYNC, JETSTREAM)
SCENARIOS = ("acked publish", "publish→consume")
# Messages per run: about 3 s of Runnel, about 1 s of JetStream.
MESSAGES = {"acked publish": 400_000, "publish→consume": 250_000}
JS_ALWAYS_DIVISOR = 40  # JetStream sync=always does ~5k msgs/s: N/40 messages
CEILING_MESSAGES = {"send": 1_000_000, "count": 1_000_000, "loop": 1_000_000,
                    "consume": 400_000}
CEILING_RUNS = 3
GENERATOR_BOUND = 0.5  # a median at half of the generator's ceiling or more is flagged
AIM = 0.5  # Runnel fsync on, acked publish, >= AIM x JetStream R1 at its defaults


@dataclass
class Sample:
    count: int
    seconds: float
    problem: str  # empty when every message was acked / consumed, exactly once
    generator_cpu: float  # CPU seconds of the generator processes / wall seconds
    server_cpu: float | None = None  # the same for the server
    publisher_rate: float | None = None  # publish→consume: the publisher's ack rate

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def median_rate(samples: list[Sample]) -> float | None:
    rates = [s.rate for s in samples if not s.problem]
    return statistics.median(rates) if rates else None


def _pub_args(window: int) -> tuple[str, ...]:
    return ("--window", str(window), "--channel", CHANNEL)


def acked_publish(kind, count: int, window: int, log_dir: Path, data_root: Path) -> Sample:
    with stan_procs.server(kind, log_dir, data_root, CHANNEL) as srv, \
            stan_procs.gens() as procs:
        pub = Gen("pub", kind.proto, srv.port, count, log_dir, *_pub_args(window))
        procs.append(pub)
        pub.wait_ready()
        cpu0 = stan_procs.server_cpu(srv)
        pub.go()
        res = pub.result()
        cpu1 = stan_procs.server_cpu(srv)
    seconds = res["t1"] - res["t0"]
    return Sample(res["count"], seconds, res["problem"], res["cpu"] / seconds,
                  (cpu1 - cpu0) / seconds)


def publish_consume(kind, count: int, window: int, log_dir: Path, data_root: Path) -> Sample:
    with stan_procs.server(kind, log_dir, data_root, CHANNEL) as srv, \
            stan_procs.gens() as procs:
        sub = Gen("sub", kind.proto, srv.port, count, log_dir, "--channel", CHANNEL)
        procs.append(sub)
        pub = Gen("pub", kind.proto, srv.port, count, log_dir, *_pub_args(window))
        procs.append(pub)
        sub.wait_ready()  # subscribed (consumer created) before anything is published
        pub.wait_ready()
        cpu0 = stan_procs.server_cpu(srv)
        pub.go()
        pres = pub.result()
        sres = sub.result()
        cpu1 = stan_procs.server_cpu(srv)
    seconds = sres["t_last"] - pres["t0"]
    problem = pres["problem"] or sres["problem"]
    if sres["redelivered"] or sres["other"]:
        problem = problem or f"{sres['redelivered']} redelivered, {sres['other']} unexpected"
    return Sample(sres["count"], seconds, problem, (pres["cpu"] + sres["cpu"]) / seconds,
                  (cpu1 - cpu0) / seconds,
                  publisher_rate=pres["count"] / (pres["t1"] - pres["t0"]))


SCENARIO_RUNS = {"acked publish": acked_publish, "publish→consume": publish_consume}

# --- the generator's ceiling --------------------------------------------------------

CEILINGS = {  # what: (fake mode, generator role, description)
    "send": ("sink", "send", "publisher, sending half: frames into a discarding socket"),
    "count": ("acks", "count", "publisher, ack-counting half: recorded acks fed in"),
    "loop": ("responder", "pub", "publisher, whole loop: a fake acks every frame"),
    "consume": ("source", "sub", "consumer: recorded deliveries, parse + ack each"),
}


def ceiling_run(what: str, proto: str, count: int, window: int, log_dir: Path) -> Sample:
    mode, role, _ = CEILINGS[what]
    with stan_procs.fake(mode, proto, count, log_dir) as fake, stan_procs.gens() as procs:
        gen = Gen(role, proto, fake.port, count, log_dir, "--fake", *_pub_args(window))
        procs.append(gen)
        gen.wait_ready()
        gen.go()
        res = gen.result()
    start, end = res.get("t0", res.get("t_ready")), res.get("t1", res.get("t_last"))
    seconds = end - start
    return Sample(res["count"], seconds, res["problem"], res["cpu"] / seconds)


# --- printing -----------------------------------------------------------------------

def fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def print_sample(label: str, index: int, runs: int, who: str, sample: Sample) -> None:
    server_cpu = "" if sample.server_cpu is None else f"  server cpu {sample.server_cpu:4.0%}"
    publisher = ("" if sample.publisher_rate is None
                 else f"  (publisher acked {fmt_rate(sample.publisher_rate)}/s)")
    problem = f"  FAILED: {sample.problem}" if sample.problem else ""
    print(f"  {label:<16} run {index + 1}/{runs}  {who:<25} {fmt_rate(sample.rate):>11} msgs/s"
          f"  {sample.seconds:6.3f} s{server_cpu}  generator cpu {sample.generator_cpu:4.0%}"
          f"{publisher}{problem}", flush=True)


def machine_info() -> list[str]:
    return harness.machine_info(f"{{nats}} -js; Runnel {RUNNEL_VERSION} (python -m broker -st file)")


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def headroom(cap: float | None, *rates: float | None) -> str:
    fastest = max((r for r in rates if r), default=None)
    return "n/a" if not cap or not fastest else f"{cap / fastest:.1f}x"


def flagged(rate: float | None, ceiling: float | None) -> str:
    bound = rate and ceiling and rate >= GENERATOR_BOUND * ceiling
    return fmt_rate(rate) + ("*" if bound else " ")


def print_tables(results: dict, always: list[Sample] | None, ceilings: dict, args,
                 counts: dict) -> None:
    medians = {key: median_rate(samples) for key, samples in results.items()}
    ceil = {key: median_rate(samples) for key, samples in ceilings.items()}

    def lowest(*keys):
        values = [ceil.get(key) for key in keys]
        return None if None in values else min(values)

    scenario_ceiling = {
        "acked publish": lowest(("loop", "stan"), ("loop", "js")),
        "publish→consume": lowest(("loop", "stan"), ("loop", "js"), ("consume", "stan"),
                                  ("consume", "js"))}
    print(f"Streaming throughput, 128-byte messages, window {args.window}, "
          f"median of {args.runs} runs (msgs/s)")
    header = (f"{'scenario':<16} {'N':>8} {RUNNEL_SYNC.title:>16} {RUNNEL_NOSYNC.title:>17} "
              f"{JETSTREAM.title:>13} {'on/JS':>6} {'off/JS':>6}  {'gen ceiling':>11} "
              f"{'headroom':>8}")
    print(header)
    print("-" * len(header))
    for scenario in SCENARIOS:
        on, off, js = (medians[(scenario, kind.key)] for kind in SERVERS)
        cap = scenario_ceiling[scenario]
        print(f"{scenario:<16} {counts[scenario]:>8,} {flagged(on, cap):>16} "
              f"{flagged(off, cap):>17} {flagged(js, cap):>13} {ratio(on, js):>6} "
              f"{ratio(off, js):>6}  {fmt_rate(cap):>11} {headroom(cap, on, off, js):>8}")
    if always is not None:
        value = median_rate(always)
        on = medians[("acked publish", RUNNEL_SYNC.key)]
        print(f"context: {JETSTREAM_ALWAYS.title} (an fsync per write), acked publish, "
              f"N={counts['acked publish'] // JS_ALWAYS_DIVISOR:,}: {fmt_rate(value)} msgs/s; "
              f"Runnel fsync on / it = {ratio(on, value)}")
    for (scenario, key), samples in results.items():
        failed = sum(bool(s.problem) for s in samples)
        if failed:
            print(f"! {scenario} {key}: {failed} of {len(samples)} runs failed "
                  f"(left out of the median; see the run lines above)")
    on = medians[("acked publish", RUNNEL_SYNC.key)]
    js = medians[("acked publish", JETSTREAM.key)]
    if on and js:
        verdict = "met" if on >= AIM * js else "NOT met"
        print(f"aim: Runnel fsync on, acked publish >= {AIM}x JetStream R1 at its defaults: "
              f"{on / js:.2f}x, {verdict}")
    print(f"on/JS, off/JS = Runnel fsync on / off over JetStream R1 (file stream, defaults:\n"
          f"sync_interval 2 min, i.e. no fsync before the ack). gen ceiling = the lowest "
          f"generator\nceiling that applies (below); headroom = gen ceiling / the fastest "
          f"server's median;\n* = at least {GENERATOR_BOUND:.0%} of the ceiling (none should be).")
    print()
    print(f"Generator ceiling: the same generator against fake servers that do no broker "
          f"work,\nmedian of {CEILING_RUNS} runs (msgs/s)")
    header = f"{'':<58} {'STAN':>11} {'JetStream':>11}"
    print(header)
    print("-" * len(header))
    for what, (_, _, text) in CEILINGS.items():
        print(f"{text:<58} {fmt_rate(ceil.get((what, 'stan'))):>11} "
              f"{fmt_rate(ceil.get((what, 'js'))):>11}")


# --- the run ------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stan_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 5)),
                        help="runs per server and scenario (env BENCH_RUNS, default 5)")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1)),
                        help="multiply every message count (env BENCH_SCALE, default 1)")
    parser.add_argument("--window", type=int, default=8192,
                        help="publishes in flight, unacknowledged (default 8192)")
    parser.add_argument("--no-js-always", action="store_true",
                        help="skip the JetStream sync=always context figure")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    counts = {key: max(1000, int(n * args.scale)) for key, n in MESSAGES.items()}
    ceiling_counts = {key: max(1000, int(n * args.scale)) for key, n in CEILING_MESSAGES.items()}
    started = time.monotonic()
    print("\n".join(machine_info()) + "\n", flush=True)
    results: dict = {}
    ceilings: dict = {}
    always = None
    with tempfile.TemporaryDirectory(prefix="runnel-stan-bench-") as tmp:
        log_dir = Path(tmp)
        data_root = log_dir / "data"
        for what in CEILINGS:
            for proto in ("stan", "js"):
                label = f"ceiling {what}"
                samples = ceilings[(what, proto)] = []
                for index in range(CEILING_RUNS):
                    sample = ceiling_run(what, proto, ceiling_counts[what], args.window,
                                         log_dir)
                    samples.append(sample)
                    print_sample(label, index, CEILING_RUNS, f"{proto} fake", sample)
        print(flush=True)
        for scenario in SCENARIOS:
            for kind in SERVERS:
                results[(scenario, kind.key)] = []
            for index in range(args.runs):
                shift = index % len(SERVERS)
                for kind in SERVERS[shift:] + SERVERS[:shift]:
                    sample = SCENARIO_RUNS[scenario](kind, counts[scenario], args.window,
                                                     log_dir, data_root)
                    results[(scenario, kind.key)].append(sample)
                    print_sample(scenario, index, args.runs, kind.title, sample)
            print(flush=True)
        if not args.no_js_always:
            always = []
            count = max(1000, counts["acked publish"] // JS_ALWAYS_DIVISOR)
            runs = min(args.runs, CEILING_RUNS)
            for index in range(runs):
                sample = acked_publish(JETSTREAM_ALWAYS, count, args.window, log_dir,
                                       data_root)
                always.append(sample)
                print_sample("acked publish", index, runs, JETSTREAM_ALWAYS.title, sample)
            print(flush=True)
    print_tables(results, always, ceilings, args, counts)
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    entry.run(main)
