"""Pieces shared by both implementations: argument checks, the remap gate,
the one-transaction-per-thread guard. Both stores MUST validate through these
functions so that they reject exactly the same calls."""

from __future__ import annotations

import threading
from typing import Sequence

from .api import KEY_BYTES_MAX, U64_MAX, StoreClosedError, StoreUsageError

STORAGE_FORMAT = 1


def encode_name(name: str, what: str) -> bytes:
    """UTF-8 key for a channel name, client id or meta key (1..511 bytes)."""
    if not isinstance(name, str):
        raise StoreUsageError(f"{what} must be str, not {type(name).__name__}")
    try:
        key = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreUsageError(f"{what} is not valid UTF-8: {exc}") from None
    if not 1 <= len(key) <= KEY_BYTES_MAX:
        raise StoreUsageError(
            f"{what} must be 1..{KEY_BYTES_MAX} UTF-8 bytes, got {len(key)}")
    return key


def check_u64(value: int, what: str, low: int = 0) -> int:
    if type(value) is not int or not low <= value <= U64_MAX:
        raise StoreUsageError(f"{what} must be an int in {low}..2**64-1, "
                              f"got {value!r}")
    return value


def is_u64(value: object) -> bool:
    """True for an int in 0..2**64-1 (bool excluded). Reads treat anything
    else as "not there" instead of raising."""
    return type(value) is int and 0 <= value <= U64_MAX


def as_record(record: bytes) -> bytes:
    """The record as immutable bytes (copied if it is a bytearray/view)."""
    if type(record) is bytes:
        return record
    if isinstance(record, (bytearray, memoryview)):
        return bytes(record)
    raise StoreUsageError(f"record must be bytes, not {type(record).__name__}")


def check_append(messages: Sequence[tuple[int, bytes]], last_seq: int
                 ) -> list[tuple[int, bytes]]:
    """Validate a batch for append; return it as a list of (seq, bytes)."""
    out = []
    prev = last_seq
    for item in messages:
        try:
            seq, record = item
        except (TypeError, ValueError):
            raise StoreUsageError(f"a message must be (seq, record), "
                                  f"got {item!r:.80}") from None
        if type(seq) is not int or seq <= prev or seq > U64_MAX:
            raise StoreUsageError(
                f"message seq {seq!r} must be an int above {prev} "
                f"(strictly increasing, above the channel's last_seq)")
        prev = seq
        out.append((seq, record if type(record) is bytes else as_record(record)))
    return out


def check_limit(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise StoreUsageError(f"{what} must be None or an int >= 0")
    return value


def check_count(count_max: int) -> None:
    if type(count_max) is not int or count_max < 1:
        raise StoreUsageError("count_max must be an int >= 1 (reads are bounded)")


class Gate:
    """Readers share; exclusive holders (map growth, restore, close, write
    aborts) wait for every reader to leave. New readers wait behind a waiting
    exclusive holder (so it is not starved), except while a long reader (a
    snapshot copy) is in: the exclusive holder waits for the copy anyway,
    and short readers (the event loop) must not wait that long."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._long = 0
        self._exclusive = False
        self._waiting = 0

    def enter_shared(self, long: bool = False) -> None:
        with self._cond:
            while self._exclusive or (self._waiting and not self._long):
                self._cond.wait()
            self._readers += 1
            self._long += long

    def exit_shared(self, long: bool = False) -> None:
        with self._cond:
            self._readers -= 1
            self._long -= long
            if self._readers == 0 or long:
                self._cond.notify_all()

    def enter_exclusive(self) -> None:
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True

    def exit_exclusive(self) -> None:
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()


class ThreadGuard:
    """At most one open transaction per thread on one store."""

    def __init__(self) -> None:
        self._local = threading.local()

    def enter(self, kind: str) -> None:
        busy = getattr(self._local, "busy", None)
        if busy:
            raise StoreUsageError(
                f"cannot open a {kind} transaction: this thread already has "
                f"a {busy} transaction open on this store")
        self._local.busy = kind

    def exit(self) -> None:
        self._local.busy = None


class Closed:
    """Stands in for a finished engine transaction: any use raises."""

    __slots__ = ()

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise StoreClosedError("transaction is finished (used after its "
                               "'with' block, or abandoned after an error)")


CLOSED = Closed()
