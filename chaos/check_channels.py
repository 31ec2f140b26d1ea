"""Checks on sequences: duplicates, conflicts, gaps, order, MaxInflight, convergence.

* duplicates: one value stored at two (or more) sequences of a channel (a publish
  applied twice), seen in deliveries or in a node's dump.
* conflicts: one (channel, seq) delivered with two different values (two subscribers,
  maybe on two nodes, saw different logs).
* gaps: sequences missing between 1 and the highest sequence delivered on a channel
  (the workload sets no limits, so every channel keeps every message from seq 1, and
  the final readers read every channel from the first message).
* order: if publish A was acknowledged before publish B was invoked, on the same
  channel, then seq(A) < seq(B). ``order`` counts violations between values of one
  writer (Jepsen's per-writer order), ``realtime_order`` across all writers.
* inflight: per subscriber, the delivered-but-unacknowledged sequences (as the client
  sees them: a delivery adds its seq, an ack removes it, a redelivery of a seq already
  acked is not added) never exceed MaxInflight. The server's own count can only be
  higher (acks in flight), never lower.
* divergence: after healing, every node's dump of every channel is identical; counts the
  (channel, seq) positions where two dumps differ (a missing message counts).
"""
from __future__ import annotations

import bisect

from .check_values import SAMPLES_MAX, Publishes
from .history import writer_of


def value_seqs(events: list[dict]) -> dict[tuple[str, str], set[int]]:
    """(channel, value) -> every seq it was delivered at or dumped at."""
    seqs: dict[tuple[str, str], set[int]] = {}
    for e in events:
        if e["type"] == "deliver":
            seqs.setdefault((e["channel"], e["value"]), set()).add(e["seq"])
        elif e["type"] == "dump":
            for channel, rows in e["channels"].items():
                for seq, value in rows:
                    seqs.setdefault((channel, value), set()).add(seq)
    return seqs


def check_duplicates(seqs: dict) -> tuple[int, list]:
    dups = sorted([*key, sorted(s)] for key, s in seqs.items() if len(s) > 1)
    return len(dups), dups[:SAMPLES_MAX]


def check_conflicts(events: list[dict]) -> tuple[int, list]:
    at: dict[tuple[str, int], set[str]] = {}
    for e in events:
        if e["type"] == "deliver":
            at.setdefault((e["channel"], e["seq"]), set()).add(e["value"])
    bad = sorted([ch, seq, sorted(vals)] for (ch, seq), vals in at.items() if len(vals) > 1)
    return len(bad), bad[:SAMPLES_MAX]


def check_gaps(events: list[dict]) -> tuple[int, list]:
    seen: dict[str, set[int]] = {}
    for e in events:
        if e["type"] == "deliver":
            seen.setdefault(e["channel"], set()).add(e["seq"])
    missing_total, samples = 0, []
    for channel in sorted(seen):
        have = seen[channel]
        missing = [s for s in range(1, max(have) + 1) if s not in have]
        missing_total += len(missing)
        if missing:
            samples.append([channel, _ranges(missing)])
    return missing_total, samples[:SAMPLES_MAX]


def _ranges(numbers: list[int]) -> str:
    out, start, prev = [], numbers[0], numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(out[:20]) + (",..." if len(out) > 20 else "")


def check_order(pubs: Publishes, seqs: dict, per_writer: bool) -> tuple[int, list]:
    """Violations of "acknowledged before invoked => lower seq" (see module doc)."""
    streams: dict[tuple, list] = {}
    for key, outcome in pubs.outcome.items():
        if key not in seqs or key not in pubs.invoke_t:
            continue
        channel, value = key
        stream = (channel, writer_of(value)) if per_writer else (channel,)
        streams.setdefault(stream, []).append(key)
    count, samples = 0, []
    for keys in streams.values():
        c, s = _order_in_stream(keys, pubs, seqs)
        count += c
        samples += s
    return count, samples[:SAMPLES_MAX]


def _order_in_stream(keys: list, pubs: Publishes, seqs: dict) -> tuple[int, list]:
    done = sorted((pubs.done_t[k], min(seqs[k]), k[1]) for k in keys
                  if pubs.outcome[k] == "ok" and k in pubs.done_t)
    done_times = [d[0] for d in done]
    prefix_max: list[tuple[int, str]] = []  # running max (seq, value) over done[:i+1]
    for _, seq, value in done:
        prefix_max.append(max(prefix_max[-1], (seq, value)) if prefix_max else (seq, value))
    count, samples = 0, []
    for key in keys:
        i = bisect.bisect_left(done_times, pubs.invoke_t[key])  # acked strictly before
        if i == 0:
            continue
        top_seq, top_value = prefix_max[i - 1]
        seq = min(seqs[key])
        if seq <= top_seq:
            count += 1
            samples.append({"channel": key[0], "earlier": top_value, "earlier_seq": top_seq,
                            "later": key[1], "later_seq": seq})
    return count, samples


def check_inflight(events: list[dict]) -> tuple[int, int, list]:
    """(violations, highest outstanding seen outside the final readers, samples).
    A new ``sub`` event of a subscriber resets its view: what the old subscription held
    unacked is redelivered (to it, or to another queue member) and counted again then.
    A redelivery of a seq this subscription already acked is not counted: the ack may
    have reached the server after it sent the redelivery, so the server may rightly
    count that seq as acked (seen after a partition healed)."""
    limit: dict[str, int] = {}
    pending: dict[str, set[int]] = {}
    acked: dict[str, set[int]] = {}
    final: set[str] = set()
    violations, highest, samples = 0, 0, []
    for e in events:
        kind = e["type"]
        if kind == "sub":  # a new subscription: the client's view starts again
            limit[e["subscriber"]] = e.get("max_inflight") or 0
            pending[e["subscriber"]], acked[e["subscriber"]] = set(), set()
            if e.get("kind") == "final":
                final.add(e["subscriber"])
        elif kind == "deliver":
            who = e["subscriber"]
            outstanding = pending.setdefault(who, set())
            if e["seq"] in acked.get(who, ()):
                continue  # a redelivery that crossed our ack: the server may count it acked
            outstanding.add(e["seq"])
            if who not in final:
                highest = max(highest, len(outstanding))
            bound = limit.get(who, 0)
            if bound and len(outstanding) > bound:
                violations += 1
                if len(samples) < SAMPLES_MAX:
                    samples.append({"subscriber": who, "t": e["t"], "seq": e["seq"],
                                    "outstanding": len(outstanding), "max_inflight": bound})
        elif kind == "ack":
            pending.get(e["subscriber"], set()).discard(e["seq"])
            acked.setdefault(e["subscriber"], set()).add(e["seq"])
    return violations, highest, samples


def check_convergence(events: list[dict]) -> tuple[int, int, list]:
    """(differing positions, number of dumps, samples)."""
    dumps = {e["node"]: e["channels"] for e in events if e["type"] == "dump"}
    if len(dumps) < 2:
        return 0, len(dumps), []
    nodes = sorted(dumps)
    tables = {n: {ch: dict((s, v) for s, v in rows) for ch, rows in dumps[n].items()}
              for n in nodes}
    channels = sorted(set().union(*(t.keys() for t in tables.values())))
    differing, samples = 0, []
    for channel in channels:
        positions = sorted(set().union(*(t.get(channel, {}).keys() for t in tables.values())))
        for seq in positions:
            vals = {n: tables[n].get(channel, {}).get(seq) for n in nodes}
            if len(set(vals.values())) > 1:
                differing += 1
                if len(samples) < SAMPLES_MAX:
                    samples.append({"channel": channel, "seq": seq, "values": vals})
    return differing, len(dumps), samples
