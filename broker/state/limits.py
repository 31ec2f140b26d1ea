"""Store limits as the state machine sees them (reference §3).

The composition root turns the operator's configuration into a `LimitsResolver`;
apply asks it for a channel's effective limits. 0 means unlimited, as in the
reference. Every node must be configured alike (the limits are part of what apply
computes); a limits command through the log is future work.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ChannelLimits:
    max_msgs: int = 1_000_000
    max_bytes: int = 1_024_000_000
    max_age_s: float = 0.0
    max_subs: int = 1000
    max_inactivity_s: float = 0.0


class LimitsResolver:
    """The global channel count limit and each channel's effective limits (cached)."""

    def __init__(self, max_channels: int = 100,
                 for_channel: Callable[[str], ChannelLimits] | None = None,
                 default: ChannelLimits | None = None):
        self.max_channels = max_channels
        self._default = default or ChannelLimits()
        self._resolve = for_channel or (lambda name: self._default)
        self._cache: dict[str, ChannelLimits] = {}

    def for_channel(self, name: str) -> ChannelLimits:
        limits = self._cache.get(name)
        if limits is None:
            limits = self._cache[name] = self._resolve(name)
        return limits

    def any_max_age(self) -> bool:
        """Whether some channel may need expiring (a cheap hint for the timer)."""
        return self._default.max_age_s > 0 or any(l.max_age_s > 0 for l in self._cache.values())
