"""/connz: the client connections of this node, sorted and paged (reference §5.6).

Sort orders are nats-server's: ``cid``/``start`` ascending; counters, ``last``,
``idle`` and ``rtt`` descending (largest first); ``uptime`` ascending (youngest
first). Ties keep cid order. Closed connections are not retained by the server,
so ``state=closed`` lists none and ``stop``/``reason`` sort nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from .formats import go_duration, rfc3339, to_ns, uptime
from .provider import MonitorError
from .query import int_param, page, paging, subs_mode

if TYPE_CHECKING:
    from .service import Monitor

_SORTS: dict[str, tuple[Callable, bool]] = {
    "cid": (lambda c, now: c.cid, False),
    "start": (lambda c, now: c.cid, False),
    "subs": (lambda c, now: len(c.subs), True),
    "pending": (lambda c, now: c.pending_bytes, True),
    "msgs_to": (lambda c, now: c.out_msgs, True),
    "msgs_from": (lambda c, now: c.in_msgs, True),
    "bytes_to": (lambda c, now: c.out_bytes, True),
    "bytes_from": (lambda c, now: c.in_bytes, True),
    "last": (lambda c, now: c.last_activity, True),
    "idle": (lambda c, now: now - c.last_activity, True),
    "uptime": (lambda c, now: now - c.started, False),
    "rtt": (lambda c, now: _rtt_ns(c), True),
    "stop": (lambda c, now: c.cid, True),
    "reason": (lambda c, now: c.close_reason, False),
}
_CLOSED_ONLY = ("stop", "reason")
_STATES = ("open", "closed", "any")


def build_connz(monitor: Monitor, query: Mapping[str, str], now_s: float) -> dict:
    server = monitor.server
    sort, state = _sort_and_state(query)
    offset, limit = paging(query)
    cid = int_param(query, "cid")
    conns = list(server.connections.values()) if state != "closed" else []
    total = len(conns)
    if cid > 0:
        conns, offset, limit = [c for c in conns if c.cid == cid], 0, 1
    else:
        conns = _sorted(conns, sort, now_s)
        conns = page(conns, offset, limit)
    mode = subs_mode(query)
    return {
        "server_id": server.server_id,
        "now": rfc3339(to_ns(now_s)),
        "num_connections": len(conns),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": [conn_info(c, now_s, mode) for c in conns],
    }


def _sort_and_state(query: Mapping[str, str]) -> tuple[str, str]:
    sort = query.get("sort", "") or "cid"
    if sort not in _SORTS:
        raise MonitorError(400, f"invalid sorting option: {sort}")
    state = (query.get("state", "") or "open").lower()
    if state not in _STATES:
        raise MonitorError(400, f"invalid connection state: {state}")
    if sort in _CLOSED_ONLY and state == "open":
        raise MonitorError(400, f"sort by {sort} only valid on closed connections")
    return sort, state


def _sorted(conns: list, sort: str, now_s: float) -> list:
    conns.sort(key=lambda c: c.cid)
    key, descending = _SORTS[sort]
    conns.sort(key=lambda c: key(c, now_s), reverse=descending)
    return conns


def conn_info(conn, now_s: float, mode: str = "") -> dict:
    """One ConnInfo object of /connz."""
    info = {
        "cid": conn.cid,
        "kind": "Client",
        "type": "nats",
        "ip": conn.ip,
        "port": conn.port,
        "start": rfc3339(to_ns(conn.started)),
        "last_activity": rfc3339(to_ns(conn.last_activity)),
        "rtt": go_duration(_rtt_ns(conn)),
        "uptime": uptime(now_s - conn.started),
        "idle": uptime(now_s - conn.last_activity),
        "pending_bytes": conn.pending_bytes,
        "in_msgs": conn.in_msgs,
        "out_msgs": conn.out_msgs,
        "in_bytes": conn.in_bytes,
        "out_bytes": conn.out_bytes,
        "subscriptions": len(conn.subs),
        "name": conn.name,
        "lang": conn.lang,
        "version": conn.version,
    }
    subs = list(conn.subs.values())
    if mode == "list" and subs:
        info["subscriptions_list"] = [sub.subject.decode(errors="replace") for sub in subs]
    elif mode == "detail" and subs:
        info["subscriptions_list_detail"] = [sub_detail(sub, account=False) for sub in subs]
    return info


def sub_detail(sub, account: bool = True) -> dict:
    """nats-server's SubDetail; /connz leaves out the account, /subsz carries it."""
    detail = {"account": "$G"} if account else {}
    detail["subject"] = sub.subject.decode(errors="replace")
    if sub.queue:
        detail["qgroup"] = sub.queue.decode(errors="replace")
    detail["sid"] = sub.sid.decode(errors="replace")
    detail["msgs"] = sub.delivered
    if sub.max_msgs:
        detail["max"] = sub.max_msgs
    detail["cid"] = getattr(sub.conn, "cid", 0)
    return detail


def _rtt_ns(conn) -> int:
    """The connection's round-trip time if the server measures it, else 0 (``0s``)."""
    rtt_s = getattr(conn, "rtt_s", None)
    return round(rtt_s * 1_000_000_000) if rtt_s else 0
