"""Process statistics for /varz: resident memory and CPU use.

Both are cheap (one small procfs read, one `os.times()`), so they are computed
when /varz is asked for, never by a background task.
"""
from __future__ import annotations

import os
import resource
import sys
import time

_MIN_CPU_WINDOW_S = 1.0


def rss_bytes() -> int:
    """Resident set size now (VmRSS); the peak RSS where procfs is missing."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def cpu_seconds() -> float:
    """User plus system CPU time of the whole process (every thread)."""
    times = os.times()
    return times.user + times.system


class CpuSampler:
    """CPU use in percent of one core, as nats-server reports it in /varz.

    The percentage is measured over the window since the previous sample; a
    new window starts once the current one is at least a second long, so that
    /varz polled in a tight loop still reports a meaningful figure.
    """

    def __init__(self, clock=time.monotonic, cpu=cpu_seconds):
        self._clock = clock
        self._cpu = cpu
        self._last_wall = clock()
        self._last_cpu = cpu()
        self._percent = 0.0

    def percent(self) -> float:
        wall, used = self._clock(), self._cpu()
        elapsed = wall - self._last_wall
        if elapsed <= 0:
            return self._percent
        self._percent = round(100.0 * max(0.0, used - self._last_cpu) / elapsed, 2)
        if elapsed >= _MIN_CPU_WINDOW_S:
            self._last_wall, self._last_cpu = wall, used
        return self._percent
