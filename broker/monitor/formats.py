"""Value formats of the monitoring JSON (reference §5.1), as nats-server writes them.

Pure functions: no clock, no I/O. Times are passed in as nanoseconds since the
epoch (`to_ns` turns a `time.time()` float into that).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone, tzinfo

_NS_PER_S = 1_000_000_000
# Go's encoding/json escapes these inside strings; they never occur outside one.
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")
_CALLBACK_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.]{0,127}$")


def to_ns(epoch_s: float) -> int:
    """Epoch seconds (a float) to integer nanoseconds, kept to the microsecond.

    A float of today's epoch carries about a quarter microsecond of precision;
    digits below the microsecond would be noise.
    """
    return round(epoch_s * 1_000_000) * 1000


def rfc3339(epoch_ns: int, tz: tzinfo | None = None) -> str:
    """Go's time.RFC3339Nano: trailing fraction zeros trimmed, ``Z`` for UTC.

    Without ``tz`` the local zone of the process is used, as nats-server does.
    """
    secs, frac_ns = divmod(epoch_ns, _NS_PER_S)
    moment = datetime.fromtimestamp(secs, tz or timezone.utc)
    if tz is None:
        moment = moment.astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if frac_ns:
        text += f".{frac_ns:09d}".rstrip("0")
    return text + _zone(moment.utcoffset())


def _zone(offset: timedelta | None) -> str:
    if not offset:
        return "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def uptime(duration_s: float) -> str:
    """nats-server's myUptime: whole seconds as ``11s``, ``3m5s``, ``1d2h3m4s``, ``1y2d...``."""
    secs = max(0, int(duration_s))
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    years = days // 365
    if years:
        return f"{years}y{days % 365}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if days:
        return f"{days}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if hours:
        return f"{hours}h{mins % 60}m{secs % 60}s"
    if mins:
        return f"{mins}m{secs % 60}s"
    return f"{secs}s"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): ``0s``, ``602µs``, ``1.5ms``, ``2m3.25s``, ``1h0m0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return sign + _fraction(ns, 1000) + "µs"
    if ns < _NS_PER_S:
        return sign + _fraction(ns, 1_000_000) + "ms"
    hours, rest = divmod(ns, 3600 * _NS_PER_S)
    mins, rest = divmod(rest, 60 * _NS_PER_S)
    text = f"{hours}h" if hours else ""
    if hours or mins:
        text += f"{mins}m"
    return sign + text + _fraction(rest, _NS_PER_S) + "s"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def encode_json(data: object, compact: bool = False) -> bytes:
    """Indented (2 spaces) JSON, with Go's escaping of ``<``, ``>``, ``&``, U+2028/9.

    ``compact`` gives Go's json.Marshal layout (no spaces) instead.
    """
    if compact:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    return _GO_ESCAPE_RE.sub(lambda match: _GO_ESCAPES[match.group()], text).encode()


def valid_callback(name: str) -> bool:
    """Whether a JSONP callback name is a plain JavaScript identifier path.

    nats-server echoes any text; Runnel refuses anything else, so a crafted
    ``callback`` cannot inject script into the response.
    """
    return bool(_CALLBACK_RE.match(name))
