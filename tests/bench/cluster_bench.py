"""`make bench`, cluster part: a 3-node Runnel cluster beside a 3-node JetStream R3.

    python -m tests.bench.cluster_bench [--runs R] [--failover-runs F] [--scale S]
                                        [--only throughput,latency,failover]

Three measurements, each on fresh clusters (3 processes on 127.0.0.1, empty data
directories), Runnel and JetStream alternating which goes first:
  acked publish     stan_gen's pipelined publisher (window W, 128-byte messages) through
                    one node: a follower (the proposal is forwarded to the leader) and
                    the leader; for JetStream a server that is not / is the stream leader
  latency           one publisher at a fixed moderate rate on a follower, one consumer
                    (acks every message) on the other follower: publish→deliver and
                    publish→ack percentiles
  failover          steady publishing (small window, short timeout, retry) on a
                    follower; kill -9 the leader (JetStream: the stream leader); the
                    longest time with no successful ack; then every acked message is
                    looked for in the channel / stream read back from the survivors
Runnel: `python -m broker -st file --clustered` (--cluster_sync on, its default).
JetStream: nats-server -js, routes between the three, stream BENCH file storage,
num_replicas 3, everything else at its defaults. Medians, ratios, aims printed.
Env: BENCH_RUNS, BENCH_SCALE. See tests/bench/CLUSTER.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from broker.server.server import VERSION as RUNNEL_VERSION
from tests.bench import entry as bench_entry
from tests.bench import harness

from .cluster_gen import parse_payload
from .cluster_procs import CHANNEL, ClusterGen, cluster, gens

KINDS = ("runnel", "jetstream")
CONTEXT = "runnel-nosync"  # acked publish (follower entry) and latency, for context
TITLES = {"runnel": "Runnel 3-node", "jetstream": "JetStream R3",
          CONTEXT: "Runnel sync off"}
PROTO = {"runnel": "stan", "jetstream": "js", CONTEXT: "stan"}
ENTRIES = ("follower", "leader")
ENTRY_TEXT = {"runnel": {"follower": "a follower", "leader": "the leader"},
              "jetstream": {"follower": "a non-leader server", "leader": "the stream leader"}}
MESSAGES = 200_000  # acked publish, per run: ~4 s of Runnel, ~1 s of JetStream
AIM_RATE = 0.5  # Runnel >= 0.5x JetStream R3, acked publish
AIM_OUTAGE_S = 2.0  # Runnel failover outage median <= 2 s
WARM_S = 2.0  # steady publishing before the kill
AFTER_S = 1.5  # steady publishing after the first ack that follows the kill
RESUME_MAX_S = 30.0  # give up waiting for acks after the kill
PERCENTILES = (50, 90, 99)


# --- samples ------------------------------------------------------------------------

@dataclass
class Rate:
    count: int
    seconds: float
    problem: str
    cpu: list  # [(node, role, share of a core)] for the timed part
    raft: str = ""  # Runnel: Raft entries committed and the leader's fsyncs in the run

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Latency:
    deliver_us: list
    ack_us: list
    problem: str
    cpu: list


@dataclass
class Failover:
    outage: float | None  # last ack before the kill -> first ack after it (s); inf: none
    to_first: float | None  # the kill -> the first ack after it (s); None: run void
    longest_other: float  # the longest gap between two acks before the kill (s)
    acked: int
    lost: int  # acked ids missing from a replica read back
    duplicates: int  # ids stored more than once (retries of a message that did commit)
    timeouts: int
    errors: dict
    note: str
    problem: str
    replicas_equal: bool | None = None
    extra: dict = field(default_factory=dict)


def cpu_shares(c, before: dict, seconds: float, leader) -> list:
    out = []
    for member in c.members:
        used = member.cpu() - before.get(member.name, 0.0)
        role = "L" if member is leader else "F"
        out.append((member.name, role, used / seconds if seconds > 0 else 0.0))
    return sorted(out, key=lambda x: x[1] != "L")


def raft_view(c) -> dict:
    """Runnel: node -> /streaming/clusterz (commit index, fsync count and seconds)."""
    if c.proto != "stan":
        return {}
    return {m.name: m.get("/streaming/clusterz") or {} for m in c.live()}


def raft_text(before: dict, after: dict, leader, count: int) -> str:
    a, b = before.get(leader.name), after.get(leader.name)
    if not a or not b:
        return ""
    entries = b["commit_index"] - a["commit_index"]
    fsyncs = b["fsyncs"] - a["fsyncs"]
    seconds = b["fsync_seconds"] - a["fsync_seconds"]
    text = f"  raft: {entries} entries ({count / max(entries, 1):,.0f} msgs each)"
    if fsyncs:
        text += f", leader fsyncs {fsyncs} x {seconds / fsyncs * 1000:.1f} ms"
    return text


def fmt_cpu(cpu: list) -> str:
    return " ".join(f"{role}{value:4.0%}" for _, role, value in cpu)


# --- the three measurements ---------------------------------------------------------

def throughput(kind: str, entry: str, count: int, window: int, log_dir: Path,
               data_root: Path) -> Rate:
    with cluster(kind, log_dir, data_root) as c, gens() as procs:
        leader = c.leader()
        target = leader if entry == "leader" else c.others(leader)[0]
        gen = ClusterGen("stan_gen", "pub", PROTO[kind], target.port, log_dir, str(count),
                         "--window", str(window), "--channel", CHANNEL)
        procs.append(gen)
        gen.wait_ready()
        raft0 = raft_view(c)
        before = {m.name: m.cpu() for m in c.members}
        gen.send("go")
        res = gen.result()
        seconds = res["t1"] - res["t0"]
        cpu = cpu_shares(c, before, seconds, leader)
        raft = raft_text(raft0, raft_view(c), leader, res["count"])
    return Rate(res["count"], seconds, res["problem"], cpu, raft)


def latency(kind: str, count: int, rate: float, log_dir: Path, data_root: Path) -> Latency:
    with cluster(kind, log_dir, data_root) as c, gens() as procs:
        leader = c.leader()
        pub_node, sub_node = c.others(leader)[:2]
        sub = ClusterGen("cluster_gen", "latsub", PROTO[kind], sub_node.port, log_dir,
                         "--count", str(count), "--channel", CHANNEL)
        procs.append(sub)
        pub = ClusterGen("cluster_gen", "paced", PROTO[kind], pub_node.port, log_dir,
                         "--count", str(count), "--rate", str(rate), "--channel", CHANNEL)
        procs.append(pub)
        sub.wait_ready()  # subscribed before anything is published
        pub.wait_ready()
        before = {m.name: m.cpu() for m in c.members}
        t0 = time.monotonic()
        pub.send("go")
        pres = pub.result(count / rate + 60)
        try:
            sres = sub.result(15.0)
        except TimeoutError:
            sub.send("stop")
            sres = sub.result(10.0)
        cpu = cpu_shares(c, before, time.monotonic() - t0, leader)
    problem = pres.get("problem") or sres.get("problem") or ""
    if sres.get("redelivered") or sres.get("other"):
        problem = problem or f"{sres['redelivered']} redelivered, {sres['other']} unexpected"
    return Latency(sres.get("deliver_us", []), pres.get("ack_us", []), problem, cpu)


def _wait_progress(gen: ClusterGen, done, timeout: float) -> bool:
    """Until ``done(acks, time of the last ack, send time of the last acked message)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = gen.poll_progress()
        if line.startswith("p "):
            _, acks, last, last_sent = line.split()
            if done(int(acks), float(last), float(last_sent)):
                return True
        time.sleep(0.02)
    return False


def failover(kind: str, window: int, timeout: float, log_dir: Path,
             data_root: Path) -> Failover:
    with cluster(kind, log_dir, data_root) as c, gens() as procs:
        leader = c.leader()
        entry = c.others(leader)[0]
        gen = ClusterGen("cluster_gen", "steady", PROTO[kind], entry.port, log_dir,
                         "--window", str(window), "--timeout", str(timeout),
                         "--channel", CHANNEL)
        procs.append(gen)
        gen.wait_ready()
        gen.send("go")
        started = time.monotonic()
        if not _wait_progress(gen, lambda acks, *_: acks >= 50
                              and time.monotonic() - started >= WARM_S, 30.0):
            raise RuntimeError(f"{TITLES[kind]}: no steady acks before the kill:\n"
                               f"{gen.log_tail()}")
        moved = ""
        at_kill = c.leader()  # leadership may have moved since the start (JetStream)
        if at_kill is entry:
            gen.send("stop")
            gen.result(30.0)
            return Failover(None, None, 0.0, 0, 0, 0, 0, {}, "",
                            f"the leadership moved to the publisher's node {entry.name}")
        if at_kill is not leader:
            moved = f", leader at the start {leader.name}"
            leader = at_kill
        note = f"publisher on {entry.name}, killed {leader.name}"
        if kind == "jetstream":
            meta = c.meta_leader()
            note += f" ({'also' if meta == leader.name else 'not'} the meta leader)"
        note += moved
        killed_at = time.monotonic()
        leader.kill()
        # resumed: a message sent after the kill is acked (acks of messages sent before
        # it, already on their way, may still arrive just after it)
        resumed = _wait_progress(gen, lambda *p: p[2] > killed_at, RESUME_MAX_S)
        if resumed:
            _wait_progress(gen, lambda *_: False, AFTER_S)  # steady publishing goes on
        gen.send("stop")
        res = gen.result(30.0)
        if res.get("problem"):
            problem = res["problem"]
        elif not resumed:
            problem = f"no ack within {RESUME_MAX_S:.0f} s of the kill"
        else:
            problem = ""
        times = res.get("ack_times", [])
        # outage: the longest gap between two successive acks that ends after the kill
        # (the run ends AFTER_S after the first ack of a message sent after the kill)
        gaps_after = [b - a for a, b in zip(times, times[1:]) if b > killed_at]
        gaps = [b - a for a, b in zip(times, times[1:]) if b <= killed_at]
        outage = max(gaps_after) if resumed and gaps_after else float("inf")
        sent_after = [t for t, s in zip(times, res.get("acked_sent", [])) if s > killed_at]
        to_first = sent_after[0] - killed_at if sent_after else float("inf")
        acked = res.get("acked", [])
        lost = duplicates = 0
        equal = None
        new_leader = ""
        if resumed:
            new_leader = c.leader().name
            contents = c.read_back()
            ids_per_node = {}
            for node, payloads in contents.items():
                ids = Counter()
                for data in payloads:
                    parsed = parse_payload(data)
                    if parsed is not None:
                        ids[parsed[1]] += 1
                ids_per_node[node] = ids
                lost = max(lost, sum(1 for i in acked if i not in ids))
                duplicates = max(duplicates, sum(n - 1 for n in ids.values() if n > 1))
            if len(contents) > 1:
                first = next(iter(contents.values()))
                equal = all(v == first for v in contents.values())
            note += f", new leader {new_leader}, read back from {'+'.join(contents)}"
            if lost:
                problem = problem or f"{lost} acknowledged messages missing"
            if equal is False:
                problem = problem or "the survivors' channel contents differ"
    return Failover(outage, to_first, max(gaps, default=0.0), len(acked), lost, duplicates,
                    res.get("timeouts", 0), res.get("errors", {}), note, problem, equal)


# --- printing -----------------------------------------------------------------------

def fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else (f"{value:.2f}" if value < 10 else f"{value:.1f}")


def fmt_s(value: float | None) -> str:
    if value == float("inf"):
        return f">{RESUME_MAX_S:.0f}"
    return "n/a" if value is None else f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b or b == float("inf") or a == float("inf") else f"{a / b:.2f}x"


def percentile(values: list, p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def lat_stats(us: list) -> dict:
    out = {f"p{p}": (percentile(us, p) or 0) / 1000 for p in PERCENTILES}
    out["max"] = max(us) / 1000 if us else None
    return out if us else {key: None for key in out}


def machine_info() -> list[str]:
    return harness.machine_info((f"Runnel {RUNNEL_VERSION} x3 (python -m broker -st file --clustered, "
                 f"--cluster_sync on); {{nats}} x3 -js, stream R3 file"))


def print_tables(args, rates: dict, lats: dict, fails: dict) -> None:
    width = 62
    print(f"Cluster: 3 nodes on one machine, 128-byte messages, {args.runs} runs "
          f"(failover {args.failover_runs}), medians")
    header = (f"{'':<{width}} {TITLES['runnel']:>14} {TITLES['jetstream']:>13} "
              f"{'Runnel/JS':>9}  {'context: ' + TITLES[CONTEXT]:>24}")
    print(header)
    print("-" * len(header))

    def row(label, runnel, js, fmt, show_ratio=True, context=None):
        print(f"{label:<{width}} {fmt(runnel):>14} {fmt(js):>13} "
              f"{ratio(runnel, js) if show_ratio else '':>9}  "
              f"{fmt(context) if context is not None else '':>24}")

    medians = {}
    if rates:
        for entry in ENTRIES:
            values = {kind: median([s.rate for s in rates.get((kind, entry), [])
                                    if not s.problem]) for kind in KINDS + (CONTEXT,)}
            medians[entry] = values
            row(f"acked publish W={args.window}, N={args.count:,}, entry on {entry} (msgs/s)",
                values["runnel"], values["jetstream"], fmt_rate,
                context=values[CONTEXT] if (CONTEXT, entry) in rates else None)
    if lats:
        per_kind = {}
        for kind in KINDS + (CONTEXT,):
            good = [s for s in lats.get(kind, []) if not s.problem]
            per_kind[kind] = {
                "deliver": [lat_stats(s.deliver_us) for s in good],
                "ack": [lat_stats(s.ack_us) for s in good]}
        for what, text in (("deliver", "publish→deliver"), ("ack", "publish→ack")):
            for key in [f"p{p}" for p in PERCENTILES] + ["max"]:
                if what == "ack" and key == "p90":
                    continue
                values = {kind: median([s[key] for s in per_kind[kind][what]])
                          for kind in KINDS + (CONTEXT,)}
                row(f"{text} {key} at {args.rate:,.0f} msgs/s (ms)", values["runnel"],
                    values["jetstream"], fmt_ms,
                    context=values[CONTEXT] if lats.get(CONTEXT) else None)
    if fails:
        def worst(values):
            values = [v for v in values if v is not None]
            return max(values) if values else None

        for label, pick in (("median", median), ("max", worst)):
            values = {kind: pick([s.outage for s in fails.get(kind, [])]) for kind in KINDS}
            row(f"failover: longest time without an ack, {label} (s)", values["runnel"],
                values["jetstream"], fmt_s)
        values = {kind: median([s.to_first for s in fails.get(kind, [])]) for kind in KINDS}
        row("failover: kill -9 → ack of a publish sent after it, median (s)", values["runnel"],
            values["jetstream"], fmt_s)
        values = {kind: sum(s.lost for s in fails.get(kind, [])) for kind in KINDS}
        row("failover: acknowledged messages missing after, all runs", values["runnel"],
            values["jetstream"], str, show_ratio=False)
        values = {kind: sum(s.acked for s in fails.get(kind, [])) for kind in KINDS}
        row("failover: acknowledged messages checked, all runs", values["runnel"],
            values["jetstream"], lambda v: f"{v:,}", show_ratio=False)
    for name, groups in (("acked publish", rates), ("latency", lats), ("failover", fails)):
        for key, samples in groups.items():
            failed = sum(bool(s.problem) for s in samples)
            if failed:
                print(f"! {name} {key}: {failed} of {len(samples)} runs failed "
                      f"(left out of the medians where they have no figure; see above)")
    print("Runnel/JS: Runnel's figure over JetStream's (rates: higher is better for "
          "Runnel; times: lower is).\nLatency rows: each run's percentile (or max), median "
          "over the runs. Failover: 'max' is\nthe worst run; missing/checked are totals.")
    if rates and medians.get("follower"):
        on, js = medians["follower"]["runnel"], medians["follower"]["jetstream"]
        if on and js:
            print(f"aim: 3-node acked publish >= {AIM_RATE}x JetStream R3 (entry on a "
                  f"follower, Runnel fsyncing, JetStream defaults): {on / js:.2f}x, "
                  f"{'met' if on >= AIM_RATE * js else 'NOT met'}")
    if fails:
        outage = median([s.outage for s in fails.get("runnel", [])])
        if outage is not None:
            verdict = "met" if outage <= AIM_OUTAGE_S else "NOT met"
            print(f"aim: Runnel failover outage median <= {AIM_OUTAGE_S:.0f} s: "
                  f"{fmt_s(outage)} s, {verdict}")


def print_rate(kind, entry, index, runs, s: Rate) -> None:
    problem = f"  FAILED: {s.problem}" if s.problem else ""
    print(f"  acked publish    run {index + 1}/{runs}  {TITLES[kind]:<13} entry "
          f"{entry:<8} {fmt_rate(s.rate):>9} msgs/s  {s.seconds:6.3f} s  cpu {fmt_cpu(s.cpu)}"
          f"{s.raft}{problem}", flush=True)


def print_latency(kind, index, runs, s: Latency) -> None:
    d, a = lat_stats(s.deliver_us), lat_stats(s.ack_us)
    problem = f"  FAILED: {s.problem}" if s.problem else ""
    print(f"  latency          run {index + 1}/{runs}  {TITLES[kind]:<13} deliver ms p50 "
          f"{fmt_ms(d['p50'])} p90 {fmt_ms(d['p90'])} p99 {fmt_ms(d['p99'])} max "
          f"{fmt_ms(d['max'])}; ack p50 {fmt_ms(a['p50'])} p99 {fmt_ms(a['p99'])}  "
          f"cpu {fmt_cpu(s.cpu)}{problem}", flush=True)


def print_failover(kind, index, runs, s: Failover) -> None:
    problem = f"  FAILED: {s.problem}" if s.problem else ""
    errors = ", ".join(f"{n}x {e!r}" for e, n in s.errors.items()) or "none"
    equal = "" if s.replicas_equal is None else (", survivors identical" if s.replicas_equal
                                                 else ", SURVIVORS DIFFER")
    print(f"  failover         run {index + 1}/{runs}  {TITLES[kind]:<13} outage "
          f"{fmt_s(s.outage)} s (kill→ack {fmt_s(s.to_first)} s; longest gap before the "
          f"kill {s.longest_other * 1000:.0f} ms); {s.acked:,} acked, {s.lost} missing, "
          f"{s.duplicates} stored twice{equal}; {s.timeouts} timeouts, errors: {errors}; "
          f"{s.note}{problem}", flush=True)


# --- the run ------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cluster_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)),
                        help="runs of acked publish and latency per cluster (env "
                             "BENCH_RUNS, default 3)")
    parser.add_argument("--failover-runs", type=int, default=5,
                        help="failover runs per cluster (default 5)")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1)),
                        help="multiply the message counts and the latency run's length")
    parser.add_argument("--window", type=int, default=8192,
                        help="acked publish: publishes in flight (default 8192)")
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="latency: publishes per second (default 1000)")
    parser.add_argument("--latency-seconds", type=float, default=5.0,
                        help="latency: length of a run (default 5 s)")
    parser.add_argument("--steady-window", type=int, default=8,
                        help="failover: publishes in flight (default 8)")
    parser.add_argument("--timeout", type=float, default=0.1,
                        help="failover: a publish without an ack after this long is "
                             "replaced by a new one (default 0.1 s)")
    parser.add_argument("--only", default="throughput,latency,failover",
                        help="comma-separated subset of throughput,latency,failover")
    args = parser.parse_args(argv)
    args.count = max(1000, int(MESSAGES * args.scale))
    args.lat_count = max(100, int(args.rate * args.latency_seconds * args.scale))
    args.parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = args.parts - {"throughput", "latency", "failover"}
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    print("\n".join(machine_info()) + "\n", flush=True)
    rates: dict = {}
    lats: dict = {}
    fails: dict = {}
    with tempfile.TemporaryDirectory(prefix="runnel-cluster-bench-") as tmp:
        log_dir = Path(tmp)
        data_root = log_dir / "data"
        if "throughput" in args.parts:
            for index in range(args.runs):
                order = KINDS if index % 2 == 0 else KINDS[::-1]
                for kind, entries in [(k, ENTRIES) for k in order] + [(CONTEXT, ENTRIES[:1])]:
                    for entry in entries:
                        sample = throughput(kind, entry, args.count, args.window, log_dir,
                                            data_root)
                        rates.setdefault((kind, entry), []).append(sample)
                        print_rate(kind, entry, index, args.runs, sample)
            print(flush=True)
        if "latency" in args.parts:
            for index in range(args.runs):
                order = KINDS if index % 2 == 0 else KINDS[::-1]
                for kind in order + (CONTEXT,):
                    sample = latency(kind, args.lat_count, args.rate, log_dir, data_root)
                    lats.setdefault(kind, []).append(sample)
                    print_latency(kind, index, args.runs, sample)
            print(flush=True)
        if "failover" in args.parts:
            for index in range(args.failover_runs):
                order = KINDS if index % 2 == 0 else KINDS[::-1]
                for kind in order:
                    sample = failover(kind, args.steady_window, args.timeout, log_dir,
                                      data_root)
                    fails.setdefault(kind, []).append(sample)
                    print_failover(kind, index, args.failover_runs, sample)
            print(flush=True)
    print_tables(args, rates, lats, fails)
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    bench_entry.run(main)
