"""Crafted histories for the checker's tests: a tiny builder with a fake clock."""
from __future__ import annotations


class H:
    """Builds a list of history events; every call advances the clock by 1."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.t = 0.0

    def _add(self, type_: str, **fields) -> "H":
        self.t += 1
        self.events.append({"type": type_, "t": self.t, **fields})
        return self

    def publish(self, channel: str, value: str, outcome: str = "ok", process: str = "") -> "H":
        process = process or value.rpartition("-")[0]
        self._add("invoke", process=process, channel=channel, value=value)
        return self._add(outcome, process=process, channel=channel, value=value)

    def invoke(self, channel: str, value: str) -> "H":
        return self._add("invoke", process=value.rpartition("-")[0], channel=channel, value=value)

    def done(self, channel: str, value: str, outcome: str = "ok") -> "H":
        return self._add(outcome, process=value.rpartition("-")[0], channel=channel, value=value)

    def sub(self, subscriber: str, channel: str, max_inflight: int = 1000,
            kind: str = "durable") -> "H":
        return self._add("sub", subscriber=subscriber, channel=channel, kind=kind,
                         max_inflight=max_inflight)

    def deliver(self, channel: str, seq: int, value: str, subscriber: str = "final",
                redelivered: bool = False) -> "H":
        return self._add("deliver", subscriber=subscriber, channel=channel, seq=seq,
                         value=value, redelivered=redelivered)

    def ack(self, channel: str, seq: int, subscriber: str) -> "H":
        return self._add("ack", subscriber=subscriber, channel=channel, seq=seq)

    def dump(self, node: str, channels: dict) -> "H":
        return self._add("dump", node=node, channels=channels)

    def log(self, channel: str, values: list[str], subscriber: str = "final") -> "H":
        """Publish every value (ok), then deliver them at seq 1.. to ``subscriber``."""
        for value in values:
            self.publish(channel, value)
        for seq, value in enumerate(values, 1):
            self.deliver(channel, seq, value, subscriber)
        return self


class FakeNode:
    """A one-channel "broker" for the must-fail tests: publishes are appended to a page
    cache and acknowledged; ``fsync`` makes them durable; ``power_cut`` keeps only what
    was fsynced. ``ack_before_commit`` acknowledges before the fsync (a broken build);
    otherwise a publish is acknowledged only by ``fsync`` (group commit)."""

    def __init__(self, ack_before_commit: bool) -> None:
        self.ack_before_commit = ack_before_commit
        self.cache: list[str] = []
        self.durable = 0
        self.waiting: list[str] = []

    def publish(self, value: str) -> list[str]:
        """Returns the values acknowledged now."""
        self.cache.append(value)
        if self.ack_before_commit:
            return [value]
        self.waiting.append(value)
        return []

    def fsync(self) -> list[str]:
        self.durable = len(self.cache)
        acked, self.waiting = self.waiting, []
        return acked

    def power_cut(self) -> None:
        self.cache = self.cache[:self.durable]
        self.waiting = []
