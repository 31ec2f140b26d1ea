"""What `runnel bench` measures and how it reports it: the per-client counters, the
percentiles, the results table, the JSON document and the progress line.

Times are ``time.monotonic_ns()`` of the one process that runs every client; ``at``
arrays hold event times since the start of publishing, ``lat`` arrays latencies, all in
nanoseconds. Percentiles are nearest-rank (p99 of 100 samples is the 99th smallest).
"""
from __future__ import annotations

import math
import shutil
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any, Sequence, TextIO

PERCENTILES = (50, 90, 99)


@dataclass(eq=False)
class PubStats:
    """One publisher: messages sent, PubAcks received (with their latency), errors."""

    index: int
    planned: int
    sent: int = 0
    acked: int = 0
    errors: int = 0
    first_error: str = ""
    lat: array = field(default_factory=lambda: array("q"))
    at: array = field(default_factory=lambda: array("q"))

    @property
    def resolved(self) -> int:
        return self.acked + self.errors

    def fail(self, error: BaseException) -> None:
        self.errors += 1
        self.first_error = self.first_error or str(error)


@dataclass(eq=False)
class SubStats:
    """One subscriber: first deliveries (with their latency) and redeliveries."""

    index: int
    received: int = 0
    redelivered: int = 0
    lat: array = field(default_factory=lambda: array("q"))
    at: array = field(default_factory=lambda: array("q"))


def percentile(ordered: Sequence[int], p: float) -> int:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(samples: Sequence[int]) -> dict[str, float] | None:
    """p50, p90, p99, max and mean in milliseconds, or None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    summary = {f"p{p}": percentile(ordered, p) / 1e6 for p in PERCENTILES}
    summary["max"] = ordered[-1] / 1e6
    summary["mean"] = sum(ordered) / len(ordered) / 1e6
    summary["count"] = len(ordered)
    return summary


def _rate(count: int, at: Sequence[int], size: int) -> dict[str, float]:
    seconds = max(at) / 1e9 if at else 0.0
    per_s = count / seconds if seconds > 0 else 0.0
    return {"seconds": seconds, "msgs_per_s": per_s, "bytes_per_s": per_s * size}


def _merge(arrays: Sequence[array]) -> array:
    merged = array("q")
    for part in arrays:
        merged.extend(part)
    return merged


def results(config: dict[str, Any], pubs: Sequence[PubStats], subs: Sequence[SubStats],
            *, interrupted: bool, complete: bool, notes: Sequence[str]) -> dict[str, Any]:
    """Everything measured, as the JSON document of ``--json`` (the table reads it too).

    A group's seconds run from the start of publishing to its last event (last PubAck,
    last delivery); a client's, to its own last event. msgs/s = msgs / seconds."""
    size = config["msg_size"]
    pub_at, sub_at = _merge([p.at for p in pubs]), _merge([s.at for s in subs])
    acked, delivered = sum(p.acked for p in pubs), sum(s.received for s in subs)
    out: dict[str, Any] = {"config": config, "interrupted": interrupted, "complete": complete}
    out["publish"] = {
        "clients": len(pubs), "planned": sum(p.planned for p in pubs),
        "sent": sum(p.sent for p in pubs), "msgs": acked, "errors": sum(p.errors for p in pubs),
        **_rate(acked, pub_at, size), "latency_ms": latency_summary(_merge([p.lat for p in pubs])),
        "per_client": [{"client": p.index, "msgs": p.acked, "errors": p.errors,
                        "first_error": p.first_error, **_rate(p.acked, p.at, size),
                        "latency_ms": latency_summary(p.lat)} for p in pubs]}
    out["deliver"] = {
        "clients": len(subs), "expected": acked * len(subs), "msgs": delivered,
        "redelivered": sum(s.redelivered for s in subs), **_rate(delivered, sub_at, size),
        "latency_ms": latency_summary(_merge([s.lat for s in subs])),
        "per_client": [{"client": s.index, "msgs": s.received, "redelivered": s.redelivered,
                        **_rate(s.received, s.at, size), "latency_ms": latency_summary(s.lat)}
                       for s in subs]}
    both_at = list(pub_at) + list(sub_at)
    out["total"] = {"msgs": acked + delivered, **_rate(acked + delivered, both_at, size)}
    out["notes"] = list(notes)
    return out


# -- the table ------------------------------------------------------------------------------

_COLUMNS = ("", "msgs", "errors", "seconds", "msgs/s", "MB/s", "p50 ms", "p90 ms", "p99 ms",
            "max ms")
_PER_CLIENT_ROWS = 10   # more clients than this: one min/avg/max line instead


def _num(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _row(label: str, msgs: int, errors: str, part: dict[str, Any]) -> list[str]:
    latency = part.get("latency_ms")
    cells = [label, _num(msgs), errors, f"{part['seconds']:.3f}", _num(part["msgs_per_s"]),
             f"{part['bytes_per_s'] / 1e6:.2f}"]
    if latency is None:
        return cells + ["-"] * 4
    return cells + [_ms(latency[key]) for key in ("p50", "p90", "p99", "max")]


def _client_lines(kind: str, clients: list[dict[str, Any]], with_errors: bool) -> list[list[str]]:
    if len(clients) <= 1:
        return []
    if len(clients) > _PER_CLIENT_ROWS:
        rates = [c["msgs_per_s"] for c in clients]
        return [[f"  per {kind}: min {_num(min(rates))}, avg {_num(sum(rates) / len(rates))}, "
                 f"max {_num(max(rates))} msgs/s"]]
    return [_row(f"  {kind} #{c['client']}", c["msgs"], str(c["errors"]) if with_errors else "",
                 c) for c in clients]


def table(res: dict[str, Any]) -> str:
    """The results table printed at the end of a run (and after Ctrl-C: what was measured)."""
    cfg, pub, dlv = res["config"], res["publish"], res["deliver"]
    mode = f"async, window {cfg['window']:,}" if cfg["async"] else "sync"
    lines = [f"runnel bench: {cfg['msgs']:,} msgs of {cfg['msg_size']:,} B on "
             f"\"{cfg['channel']}\", {cfg['publishers']} publisher(s) ({mode}), "
             f"{cfg['subscribers']} subscriber(s)",
             f"one Python process, one {cfg['event_loop']} event loop; every publisher and "
             f"subscriber is its own client (connection)", ""]
    rows = [list(_COLUMNS)]
    rows.append(_row("publish", pub["msgs"], str(pub["errors"]), pub))
    rows += _client_lines("pub", pub["per_client"], True)
    if dlv["clients"]:
        rows.append(_row("deliver", dlv["msgs"], "", dlv))
        rows += _client_lines("sub", dlv["per_client"], False)
        rows.append(_row("pub+deliver", res["total"]["msgs"], "", res["total"]))
    widths = [max(len(r[i]) for r in rows if len(r) == len(_COLUMNS))
              for i in range(len(_COLUMNS))]
    for row in rows:
        if len(row) != len(_COLUMNS):
            lines.append(row[0])
            continue
        lines.append("  ".join([row[0].ljust(widths[0])] +
                               [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]).rstrip())
    lines.append("")
    lines.append("publish latency: publish call -> PubAck; deliver latency: publish call -> "
                 "subscriber callback")
    lines.append("seconds: from the start of publishing to the last PubAck / delivery")
    if dlv["clients"] and res["interrupted"]:   # a message in flight may be delivered
        lines.append(f"delivered {dlv['msgs']:,} ({pub['msgs']:,} PubAcks received x "
                     f"{dlv['clients']} subscriber(s) before the interruption), "
                     f"{dlv['redelivered']:,} redelivered")
    elif dlv["clients"]:
        lines.append(f"delivered {dlv['msgs']:,} of {dlv['expected']:,} expected "
                     f"({pub['msgs']:,} stored x {dlv['clients']} subscriber(s)), "
                     f"{dlv['redelivered']:,} redelivered")
    lines += res["notes"]
    return "\n".join(lines) + "\n"


# -- the progress line ----------------------------------------------------------------------

class Progress:
    """One line on ``stream``, rewritten in place with a carriage return."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled
        self._shown = 0
        self._last: tuple[float, int] | None = None
        self._rate = 0.0

    def status(self, text: str) -> None:
        self._write(text)

    def update(self, elapsed_s: float, acked: int, planned: int, delivered: int,
               expected: int) -> None:
        done, total = acked + delivered, planned + expected
        if self._last is not None and elapsed_s > self._last[0]:
            instant = (done - self._last[1]) / (elapsed_s - self._last[0])
            self._rate = instant if self._rate == 0 else 0.5 * self._rate + 0.5 * instant
        self._last = (elapsed_s, done)
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 20)
        text = (f"[{bar:.<20}] {fraction:4.0%}  {elapsed_s:.1f}s  {self._rate:,.0f} msgs/s  "
                f"acked {acked:,}/{planned:,}"
                + (f"  delivered {delivered:,}/{expected:,}" if expected else ""))
        self._write(text)

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0

    def _write(self, text: str) -> None:
        if not self.enabled:
            return
        text = text[:max(20, shutil.get_terminal_size().columns - 1)]
        self.stream.write("\r" + text + " " * max(0, self._shown - len(text)))
        self.stream.flush()
        self._shown = len(text)
