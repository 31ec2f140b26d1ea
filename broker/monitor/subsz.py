"""/subsz (also /subscriptionsz): router statistics and, with ``subs=1``, the subscriptions.

The statistics are nats-server's SublistStats. Fan-out figures are computed over
the router's current match cache, as nats-server computes them over its sublist
cache. The monitor never calls ``Router.match`` (that would move the counters it
reports); ``test=<subject>`` filters with the pure subject matcher instead.

The list is ordered by (cid, sid) so that paging is stable; nats-server pages an
unordered map. ``total`` counts the matching subscriptions only when the list is
asked for, as in nats-server (0 otherwise).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ..protocol.nats import subjects
from .connz import sub_detail
from .formats import rfc3339, to_ns
from .provider import MonitorError
from .query import page, paging

if TYPE_CHECKING:
    from .service import Monitor


def build_subsz(monitor: Monitor, query: Mapping[str, str], now_s: float) -> dict:
    server = monitor.server
    offset, limit = paging(query)
    test = _test_subject(query)
    data = {"server_id": server.server_id, "now": rfc3339(to_ns(now_s))}
    data.update(router_stats(server.router))
    data.update({"total": 0, "offset": offset, "limit": limit})
    if query.get("subs", "").lower() in ("1", "true", "detail"):
        subs = _subscriptions(server.router, test)
        data["total"] = len(subs)
        listed = page(subs, offset, limit)
        if listed:
            data["subscriptions_list"] = [sub_detail(sub) for sub in listed]
    return data


def router_stats(router) -> dict:
    """nats-server's SublistStats for the router."""
    fanouts = [len(plain) + len(groups) for _, (plain, groups) in router.cache_entries()]
    matches = router.matches
    return {
        "num_subscriptions": router.count,
        "num_cache": len(fanouts),
        "num_inserts": router.inserts,
        "num_removes": router.removes,
        "num_matches": matches,
        "cache_hit_rate": router.cache_hits / matches if matches else 0.0,
        "max_fanout": max(fanouts, default=0),
        "avg_fanout": sum(fanouts) / len(fanouts) if fanouts else 0.0,
    }


def _test_subject(query: Mapping[str, str]) -> bytes | None:
    raw = query.get("test", "")
    if not raw:
        return None
    subject = raw.encode()
    if not subjects.is_valid_publish_subject(subject):
        raise MonitorError(400, "invalid test subject, must be valid publish subject")
    return subject


def _subscriptions(router, test: bytes | None) -> list:
    subs = router.all_subscriptions()
    if test is not None:
        subs = [sub for sub in subs if subjects.matches(sub.subject, test)]
    subs.sort(key=lambda sub: (getattr(sub.conn, "cid", 0), _sid_key(sub.sid)))
    return subs


def _sid_key(sid: bytes) -> tuple[int, bytes]:
    return (int(sid), b"") if sid.isdigit() else (1 << 62, sid)
