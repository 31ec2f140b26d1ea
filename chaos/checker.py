"""The checker: one pass over a recorded history gives every figure and a verdict.

    result = check(history.load("run/history.jsonl"))
    result.valid, result.figures["lost"], result.samples["lost_middle"], result.failures

A run is valid when nothing acknowledged was lost, nothing unexpected was read, no
definite failure was read, no value sits at two sequences, no sequence holds two
values, no channel has a gap, order and MaxInflight hold and the replicas converged.
``recovered`` (an unknown outcome that did commit) is reported but allowed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import check_channels as cc
from .check_values import check_values, collect_publishes, collect_reads

#: Figures that must be zero for a run to be valid.
MUST_BE_ZERO = ("lost", "unexpected", "failed_read", "duplicates", "conflicts", "gaps",
                "order", "realtime_order", "inflight_violations", "divergence")


@dataclass
class Result:
    figures: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [name for name in MUST_BE_ZERO if self.figures.get(name, 0)]

    @property
    def valid(self) -> bool:
        return not self.failures and not self.notes

    def as_dict(self) -> dict:
        return {"valid": self.valid, "failures": self.failures, "figures": self.figures,
                "samples": self.samples, "notes": self.notes}


def check(events: list[dict], *, require_reads: bool = True) -> Result:
    """Every check over ``events`` (a loaded history). ``require_reads``: a history in
    which acknowledged values exist but nothing was read is not valid (the final read
    did not happen, so nothing was checked)."""
    result = Result()
    pubs = collect_publishes(events)
    reads = collect_reads(events)
    figures, samples = check_values(pubs, reads)
    result.figures.update(figures)
    result.samples.update(samples)
    _sequence_checks(events, pubs, result)
    _delivery_checks(events, result)
    if require_reads and figures["acknowledged"] and not figures["read"]:
        result.notes.append("acknowledged publishes but no delivery at all: nothing checked")
    return result


def _sequence_checks(events: list[dict], pubs, result: Result) -> None:
    seqs = cc.value_seqs(events)
    f, s = result.figures, result.samples
    f["duplicates"], s["duplicates"] = cc.check_duplicates(seqs)
    f["conflicts"], s["conflicts"] = cc.check_conflicts(events)
    f["gaps"], s["gaps"] = cc.check_gaps(events)
    f["order"], s["order"] = cc.check_order(pubs, seqs, per_writer=True)
    f["realtime_order"], s["realtime_order"] = cc.check_order(pubs, seqs, per_writer=False)


def _delivery_checks(events: list[dict], result: Result) -> None:
    f, s = result.figures, result.samples
    f["inflight_violations"], f["max_outstanding"], s["inflight"] = cc.check_inflight(events)
    f["max_inflight"] = max((e.get("max_inflight") or 0 for e in events
                             if e["type"] == "sub" and e.get("kind") != "final"), default=0)
    f["divergence"], f["dumps"], s["divergence"] = cc.check_convergence(events)
    f["deliveries"] = sum(1 for e in events if e["type"] == "deliver")
    f["redeliveries"] = sum(1 for e in events if e["type"] == "deliver" and e.get("redelivered"))
    f["faults"] = sum(1 for e in events if e["type"] == "nemesis" and e.get("phase") == "start")


def summary_line(result: Result) -> str:
    f = result.figures
    verdict = "VALID" if result.valid else "INVALID (" + ", ".join(result.failures + result.notes) + ")"
    return (f"{verdict}: attempted {f.get('attempted', 0)}, acknowledged {f.get('acknowledged', 0)}, "
            f"read {f.get('read', 0)}, lost {f.get('lost', 0)} "
            f"(prefix {f.get('lost_prefix', 0)}, middle {f.get('lost_middle', 0)}, "
            f"postfix {f.get('lost_postfix', 0)}), unexpected {f.get('unexpected', 0)}, "
            f"recovered {f.get('recovered', 0)}, divergence {f.get('divergence', 0)}")
