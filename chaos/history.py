"""The recorded history of one run: one JSON object per line (JSONL).

Every event has a ``type`` and a time ``t`` (seconds since the run started, monotonic).

| type | fields | meaning |
|---|---|---|
| ``meta`` | scenario, seed, duration_s, nodes, ... | what ran |
| ``invoke`` | process, channel, value | a publish is about to be sent |
| ``ok`` / ``fail`` / ``unknown`` | process, channel, value, [error] | its outcome: PubAck without error / definite failure / timeout or lost connection |
| ``sub`` | subscriber, channel, kind (durable, queue, final), max_inflight, [group] | a subscription was made |
| ``deliver`` | subscriber, channel, seq, value, redelivered, outstanding | a message reached a subscriber |
| ``ack`` | subscriber, channel, seq | the subscriber acknowledged it |
| ``nemesis`` | fault, phase (start, stop), nodes, [detail] | a fault was injected or healed |
| ``dump`` | node, channels: {channel: [[seq, value], ...]} | a node's replica after the run |
| ``note`` | text | anything else worth keeping |

Values are ``"<writer>-<counter>"``: unique, and a writer's counters grow in the order
it invokes its publishes (``writer_of``/``counter_of`` split them again).
"""
from __future__ import annotations

import json
import time
from typing import IO, Iterable, Iterator

PUBLISH_OUTCOMES = ("ok", "fail", "unknown")


def value_of(writer: str, counter: int) -> str:
    return f"{writer}-{counter}"


def writer_of(value: str) -> str:
    return value.rpartition("-")[0]


def counter_of(value: str) -> int:
    tail = value.rpartition("-")[2]
    return int(tail) if tail.isdigit() else -1


class Recorder:
    """Appends events to a JSONL file, flushing each line (a killed run keeps them)."""

    def __init__(self, path: str, clock=time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._t0 = clock()
        self._file: IO[str] = open(path, "a", encoding="utf-8")
        self.counts: dict[str, int] = {}

    def now(self) -> float:
        return round(self._clock() - self._t0, 6)

    def record(self, type_: str, **fields) -> dict:
        event = {"type": type_, "t": self.now(), **fields}
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()
        self.counts[type_] = self.counts.get(type_, 0) + 1
        return event

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def load(path: str) -> list[dict]:
    """Every event of a history file; a torn last line (a killed recorder) is skipped."""
    with open(path, encoding="utf-8") as f:
        return list(parse_lines(f))


def parse_lines(lines: Iterable[str]) -> Iterator[dict]:
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue
