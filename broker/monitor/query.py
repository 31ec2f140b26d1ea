"""Query-string parameters shared by the paged endpoints (reference §5.1 paging)."""
from __future__ import annotations

from typing import Mapping

from .provider import MonitorError

DEFAULT_LIST_SIZE = 1024


def int_param(query: Mapping[str, str], name: str, default: int = 0) -> int:
    """An integer parameter; a value that is not one is a 400, as in nats-server."""
    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise MonitorError(400, f"Error decoding int for '{name}': {raw!r} is not an integer")


def paging(query: Mapping[str, str]) -> tuple[int, int]:
    """``(offset, limit)``: a negative offset becomes 0, a limit <= 0 becomes 1024."""
    offset = max(0, int_param(query, "offset"))
    limit = int_param(query, "limit", DEFAULT_LIST_SIZE)
    return offset, limit if limit > 0 else DEFAULT_LIST_SIZE


def page(items: list, offset: int, limit: int) -> list:
    """``items[offset:offset+limit]`` clamped to the list."""
    return items[offset:offset + limit]


def subs_mode(query: Mapping[str, str]) -> str:
    """``subs``: ``"detail"``, ``"list"`` (1 or true) or ``""`` (none)."""
    value = query.get("subs", "").lower()
    if value == "detail":
        return "detail"
    if value in ("1", "true"):
        return "list"
    return ""
