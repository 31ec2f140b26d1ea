"""What happened to each published value: attempted, acknowledged, read, lost
(prefix / middle / postfix per writer and channel), unexpected, recovered.

Definitions (after jepsen-io/nats ``queue.clj``):

* attempted: invoked; acknowledged: its outcome is ``ok``; read: delivered at least once
  to any subscriber (the workload's and the final readers').
* lost: acknowledged, never read. Per stream (channel, writer), a lost value older than
  every read value of that stream is *prefix*, newer than every read value *postfix*,
  between two read values *middle* (the worst: a hole in a log that went on). A stream
  with nothing read puts all its lost values in postfix.
* unexpected: read on a channel where it was never invoked.
* recovered: read, although its outcome was ``unknown`` (allowed: the publish may have
  committed). ``failed_read``: read although its outcome was a definite ``fail``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .history import counter_of, writer_of

SAMPLES_MAX = 20


@dataclass
class Publishes:
    """Per (channel, value): the outcome and the times, from invoke/ok/fail/unknown."""

    outcome: dict[tuple[str, str], str] = field(default_factory=dict)
    invoke_t: dict[tuple[str, str], float] = field(default_factory=dict)
    done_t: dict[tuple[str, str], float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def collect_publishes(events: list[dict]) -> Publishes:
    pubs = Publishes()
    for e in events:
        kind = e["type"]
        if kind == "invoke":
            key = (e["channel"], e["value"])
            pubs.outcome[key] = "invoked"
            pubs.invoke_t[key] = e["t"]
        elif kind in ("ok", "fail", "unknown"):
            key = (e["channel"], e["value"])
            pubs.outcome[key] = kind
            pubs.done_t[key] = e["t"]
            if kind != "ok":
                text = re.sub(r"guid \S+", "guid *", str(e.get("error", kind)))[:80]
                pubs.errors[text] = pubs.errors.get(text, 0) + 1
    return pubs


def collect_reads(events: list[dict]) -> set[tuple[str, str]]:
    return {(e["channel"], e["value"]) for e in events if e["type"] == "deliver"}


def check_values(pubs: Publishes, reads: set[tuple[str, str]]) -> tuple[dict, dict]:
    """Figures and samples about values; see the module docstring."""
    outcomes = pubs.outcome
    acked = {k for k, o in outcomes.items() if o == "ok"}
    lost = acked - reads
    split = split_lost(lost, reads)
    unexpected = sorted(k for k in reads if k not in outcomes)
    recovered = sorted(k for k in reads if outcomes.get(k) in ("unknown", "invoked"))
    failed_read = sorted(k for k in reads if outcomes.get(k) == "fail")
    figures = {
        "attempted": len(outcomes),
        "acknowledged": len(acked),
        "failed": sum(1 for o in outcomes.values() if o == "fail"),
        "unknown": sum(1 for o in outcomes.values() if o in ("unknown", "invoked")),
        "read": len(reads),
        "lost": len(lost),
        "lost_prefix": len(split["prefix"]),
        "lost_middle": len(split["middle"]),
        "lost_postfix": len(split["postfix"]),
        "unexpected": len(unexpected),
        "recovered": len(recovered),
        "failed_read": len(failed_read),
    }
    samples = {
        "lost_prefix": _sample(split["prefix"]), "lost_middle": _sample(split["middle"]),
        "lost_postfix": _sample(split["postfix"]), "unexpected": _sample(unexpected),
        "recovered": _sample(recovered), "failed_read": _sample(failed_read),
        "publish_errors": dict(sorted(pubs.errors.items(), key=lambda kv: -kv[1])[:10]),
    }
    return figures, samples


def split_lost(lost: set, reads: set) -> dict[str, list]:
    """Split lost values per stream (channel, writer) into prefix, middle, postfix."""
    bounds: dict[tuple[str, str], tuple[int, int]] = {}
    for channel, value in reads:
        stream, n = (channel, writer_of(value)), counter_of(value)
        low, high = bounds.get(stream, (n, n))
        bounds[stream] = (min(low, n), max(high, n))
    out: dict[str, list] = {"prefix": [], "middle": [], "postfix": []}
    for channel, value in sorted(lost, key=lambda k: (k[0], writer_of(k[1]), counter_of(k[1]))):
        stream, n = (channel, writer_of(value)), counter_of(value)
        if stream not in bounds or n > bounds[stream][1]:
            out["postfix"].append((channel, value))
        elif n < bounds[stream][0]:
            out["prefix"].append((channel, value))
        else:
            out["middle"].append((channel, value))
    return out


def _sample(items: list) -> list:
    return [list(item) if isinstance(item, tuple) else item for item in items[:SAMPLES_MAX]]
