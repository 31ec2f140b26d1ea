"""chaos/REPORT.md: one section per run, with every checker figure."""
from __future__ import annotations

import json
import os
import platform
import time

from .checker import MUST_BE_ZERO
from .history import load

FIGURES = ("attempted", "acknowledged", "failed", "unknown", "read", "lost", "lost_prefix",
           "lost_middle", "lost_postfix", "unexpected", "recovered", "failed_read",
           "duplicates", "conflicts", "gaps", "order", "realtime_order",
           "inflight_violations", "max_outstanding", "max_inflight", "divergence", "dumps",
           "deliveries", "redeliveries")


def verdict(outcome) -> str:
    valid = outcome.result.valid
    if outcome.expect_valid:
        return "PASS (valid)" if valid else "FAIL (invalid: " + _why(outcome) + ")"
    return ("PASS (caught: " + _why(outcome) + ")") if not valid else "FAIL (not caught)"


def _why(outcome) -> str:
    return ", ".join(outcome.result.failures + outcome.result.notes) or "-"


def history_notes(run_dir: str, limit: int = 8) -> list[str]:
    path = os.path.join(run_dir, "history.jsonl")
    if not os.path.exists(path):
        return []
    notes = [e["text"] for e in load(path) if e["type"] == "note"]
    return [n[:300] for n in notes[:limit]] + ([f"... {len(notes) - limit} more"]
                                               if len(notes) > limit else [])


def section(outcome, scenario_summary: str) -> str:
    f = outcome.result.figures
    faults = ", ".join(f"{k} x{v}" for k, v in sorted(outcome.faults.items())) or "none"
    lines = [f"## {outcome.scenario} (seed {outcome.seed}) — {verdict(outcome)}", "",
             f"{scenario_summary}", "",
             f"* replay: `python -m chaos --scenario {outcome.scenario} --seed {outcome.seed} "
             f"--duration {outcome.duration_s:g}`",
             f"* faults injected: {faults}",
             f"* publishes attempted {f.get('attempted', 0)}, acknowledged "
             f"{f.get('acknowledged', 0)}; wall time {outcome.wall_s} s",
             f"* run directory: `{os.path.relpath(outcome.run_dir)}`", "",
             "| figure | value |", "|---|---|"]
    for name in FIGURES:
        mark = " **≠ 0**" if name in MUST_BE_ZERO and f.get(name, 0) else ""
        lines.append(f"| {name} | {f.get(name, 0)}{mark} |")
    samples = {k: v for k, v in outcome.result.samples.items() if v and k != "publish_errors"}
    if samples:
        lines += ["", "Samples (at most 20 each):", "```"]
        lines += [f"{k}: {json.dumps(v, default=str)[:1500]}" for k, v in samples.items()]
        lines += ["```"]
    errors = outcome.result.samples.get("publish_errors")
    if errors:
        lines += ["", "Publish errors (unknown or failed outcomes): " +
                  "; ".join(f"`{k}` x{v}" for k, v in errors.items())]
    notes = history_notes(outcome.run_dir)
    if notes:
        lines += ["", "Notes from the run:"] + [f"* {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_report(path: str, outcomes: list, summaries: dict, skipped: dict) -> None:
    ok = all(o.as_expected for o in outcomes)
    head = [
        "# Runnel chaos report", "",
        f"Written by `make chaos` (`python -m chaos --all`) on {time.strftime('%Y-%m-%d %H:%M')} "
        f"({platform.node()}, {os.cpu_count()} cores). See chaos/DESIGN.md for what each "
        "figure means. A scenario marked MUST FAIL runs a deliberately broken "
        "configuration: it passes when the checker reports it invalid. Server problems "
        "found, with their evidence: chaos/FINDINGS.md.", "",
        f"**Overall: {'every scenario as expected' if ok else 'SOME SCENARIOS NOT AS EXPECTED'}**",
        "", "| scenario | seed | s | faults | attempted | acked | lost | unexpected | "
        "divergence | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        f = o.result.figures
        head.append(f"| {o.scenario} | {o.seed} | {o.duration_s:g} | {sum(o.faults.values())} | "
                    f"{f.get('attempted', 0)} | {f.get('acknowledged', 0)} | {f.get('lost', 0)} | "
                    f"{f.get('unexpected', 0)} | {f.get('divergence', 0)} | {verdict(o)} |")
    for name, why in skipped.items():
        head.append(f"| {name} | - | - | - | - | - | - | - | - | SKIPPED ({why}) |")
    body = [section(o, summaries.get(o.scenario, "")) for o in outcomes]
    with open(path, "w") as f:
        f.write("\n".join(head) + "\n\n" + "\n".join(body))
