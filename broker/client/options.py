"""Defaults of the reference clients (reference §2.19), start positions, and the pure
conversions from the client's Python arguments to STAN wire fields.

Every duration the client takes is in seconds (``float``), as asyncio counts time.
Nothing here does I/O or reads a clock: the caller passes ``now_ns``.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..protocol import stan

# -- stan.go's defaults (reference §2.19) ---------------------------------------------------
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_CONNECT_TIMEOUT = 2.0          # stan.DefaultConnectWait
DEFAULT_PUB_ACK_WAIT = 30.0            # stan.DefaultAckTimeout
DEFAULT_MAX_PUB_ACKS_INFLIGHT = 16384  # stan.DefaultMaxPubAcksInflight
DEFAULT_PING_INTERVAL = 5              # stan.DefaultPingInterval (seconds)
DEFAULT_PING_MAX_OUT = 88              # stan.DefaultPingMaxOut
DEFAULT_MAX_INFLIGHT = 1024            # stan.DefaultMaxInflight (per subscription)
DEFAULT_ACK_WAIT = 30.0                # stan.DefaultAckWait (per subscription)
DEFAULT_DISCOVER_PREFIX = stan.names.DEFAULT_DISCOVER_PREFIX
PROTOCOL_ONE = 1                       # connID in PubMsg, client PINGs (§2.16)


class StartPosition(enum.IntEnum):
    """Where a new subscription starts (reference §2.3, enum ``StartPosition``)."""

    NEW_ONLY = stan.NewOnly
    LAST_RECEIVED = stan.LastReceived
    TIME_DELTA_START = stan.TimeDeltaStart
    SEQUENCE_START = stan.SequenceStart
    FIRST = stan.First


@dataclass(frozen=True)
class ConnectOptions:
    """What `connect` was given, checked. Durations in seconds."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    pub_ack_wait: float = DEFAULT_PUB_ACK_WAIT
    max_pub_acks_inflight: int = DEFAULT_MAX_PUB_ACKS_INFLIGHT
    ping_interval: float = DEFAULT_PING_INTERVAL
    ping_max_out: int = DEFAULT_PING_MAX_OUT
    discover_prefix: str = DEFAULT_DISCOVER_PREFIX

    def __post_init__(self) -> None:
        _positive("connect_timeout", self.connect_timeout)
        _positive("pub_ack_wait", self.pub_ack_wait)
        _positive("ping_interval", self.ping_interval)
        if self.max_pub_acks_inflight < 1:
            raise ValueError(f"max_pub_acks_inflight must be >= 1, got {self.max_pub_acks_inflight}")
        if self.ping_max_out < 2:  # stan.go's Pings() refuses less
            raise ValueError(f"ping_max_out must be >= 2, got {self.ping_max_out}")
        if not self.discover_prefix:
            raise ValueError("discover_prefix must not be empty")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def ping_interval_wire(interval_s: float) -> int:
    """``ConnectRequest.pingInterval``: whole seconds; anything finer is sent as negative
    milliseconds, the convention of stan.go's own tests (the server only echoes it)."""
    if float(interval_s).is_integer() and interval_s >= 1:
        return int(interval_s)
    return -max(1, round(interval_s * 1000))


def ping_interval_from_wire(value: int, fallback_s: float) -> float:
    """The interval the server echoed (seconds, or negative milliseconds); 0 = ours."""
    if value > 0:
        return float(value)
    if value < 0:
        return -value / 1000.0
    return fallback_s


# -- subscriptions ----------------------------------------------------------------------

@dataclass(frozen=True)
class StartSpec:
    """The three start fields of a SubscriptionRequest."""

    position: StartPosition
    sequence: int = 0
    time_delta_ns: int = 0


def resolve_start(start_at: StartPosition | int | None, start_sequence: int | None,
                  start_time: datetime | float | None, start_time_delta: timedelta | float | None,
                  now_ns: int) -> StartSpec:
    """Turn the keyword arguments of ``subscribe`` into wire fields.

    ``start_sequence`` implies SEQUENCE_START and ``start_time`` / ``start_time_delta``
    imply TIME_DELTA_START, as stan.go's StartAtSequence / StartAtTime(Delta) set the
    position too. Giving two of them, or one that contradicts ``start_at``, is an error.
    ``start_time`` is a datetime (naive = local time) or Unix seconds.
    """
    given = [name for name, value in (("start_sequence", start_sequence),
                                      ("start_time", start_time),
                                      ("start_time_delta", start_time_delta)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"give only one of {', '.join(given)}")
    implied = {"start_sequence": StartPosition.SEQUENCE_START,
               "start_time": StartPosition.TIME_DELTA_START,
               "start_time_delta": StartPosition.TIME_DELTA_START}.get(given[0] if given else "")
    position = _position(start_at, implied)
    if position is StartPosition.SEQUENCE_START:
        sequence = int(start_sequence or 0)
        if sequence < 0:
            raise ValueError(f"start_sequence must be >= 0, got {sequence}")
        return StartSpec(position, sequence=sequence)
    if position is StartPosition.TIME_DELTA_START:
        if start_time is not None:
            return StartSpec(position, time_delta_ns=now_ns - _epoch_ns(start_time))
        if start_time_delta is None:
            raise ValueError("TIME_DELTA_START needs start_time or start_time_delta")
        seconds = (start_time_delta.total_seconds() if isinstance(start_time_delta, timedelta)
                   else float(start_time_delta))
        return StartSpec(position, time_delta_ns=round(seconds * 1e9))
    return StartSpec(position)


def _position(start_at: StartPosition | int | None, implied: StartPosition | None) -> StartPosition:
    if start_at is None:
        return implied or StartPosition.NEW_ONLY
    position = StartPosition(start_at)  # ValueError for a value outside 0..4
    if implied is not None and position is not implied:
        raise ValueError(f"start_at={position.name} contradicts the start given ({implied.name})")
    return position


def _epoch_ns(when: datetime | float) -> int:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.astimezone()  # naive: local time, as Python's own convention
        delta = when - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    return round(float(when) * 1e9)


def ack_wait_wire(ack_wait_s: float) -> int:
    """``SubscriptionRequest.ackWaitInSecs``: whole seconds, truncated as stan.go does
    (``int32(AckWait / time.Second)``). Below 1 s the server answers
    ``stan: invalid ack wait time, should be >= 1s``."""
    return int(ack_wait_s)
