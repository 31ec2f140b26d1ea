"""/varz: server identity, limits and counters (reference §5.6), nats-server's keys.

Runnel has no gateways, leaf nodes, MQTT, websockets or JetStream, and its peers
are Raft members rather than NATS routes, so those sections are empty objects
and the route/remote/leaf counts are 0, exactly as a standalone nats-server shows.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..server.server import NATS_COMPAT_VERSION, VERSION
from .formats import rfc3339, to_ns, uptime
from .procstats import rss_bytes

if TYPE_CHECKING:
    from .service import Monitor

DEFAULT_TLS_TIMEOUT_S = 2.0


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def build_varz(monitor: Monitor, now_s: float) -> dict:
    server = monitor.server
    data = _identity(monitor)
    data.update(_limits(monitor))
    data.update({
        "cluster": {}, "gateway": {}, "leaf": {}, "mqtt": {}, "websocket": {}, "jetstream": {},
        "tls_timeout": float(getattr(monitor.options, "tls_timeout", DEFAULT_TLS_TIMEOUT_S)),
        "write_deadline": _ns(server.limits.write_deadline_s),
        "start": rfc3339(to_ns(server.started)),
        "now": rfc3339(to_ns(now_s)),
        "uptime": uptime(now_s - server.started),
        "mem": rss_bytes(),
        "cores": os.cpu_count() or 1,
        "gomaxprocs": os.cpu_count() or 1,
        "cpu": monitor.cpu.percent(),
    })
    data.update(_counters(server))
    data["http_req_stats"] = dict(monitor.http_req_stats)
    data["config_load_time"] = rfc3339(to_ns(monitor.config_load_time))
    return data


def _identity(monitor: Monitor) -> dict:
    server = monitor.server
    data = {
        "server_id": server.server_id,
        "server_name": server.server_name,
        "version": NATS_COMPAT_VERSION,
        "proto": 1,
        "go": "runnel-" + VERSION,
        "host": server.host,
        "port": server.port,
    }
    if server.auth.required:
        data["auth_required"] = True
    urls = server.connect_urls()
    if urls:
        data["connect_urls"] = urls
    return data


def _limits(monitor: Monitor) -> dict:
    limits = monitor.server.limits
    data = {
        "max_connections": limits.max_connections,
        "ping_interval": _ns(limits.ping_interval_s),
        "ping_max": limits.ping_max,
        "http_host": monitor.host,
        "http_port": monitor.port,
        "http_base_path": monitor.base_path,
        "https_port": 0,
        "auth_timeout": float(limits.auth_timeout_s),
        "max_control_line": limits.max_control_line,
        "max_payload": limits.max_payload,
        "max_pending": limits.max_pending,
    }
    if limits.max_subscriptions:
        data["max_subscriptions"] = limits.max_subscriptions
    return data


def _counters(server) -> dict:
    totals = server.totals()
    return {
        "connections": len(server.connections),
        "total_connections": server.total_connections,
        "routes": len(server.routes.links) if server.routes is not None else 0,
        "remotes": 0,
        "leafnodes": 0,
        "in_msgs": totals["in_msgs"],
        "out_msgs": totals["out_msgs"],
        "in_bytes": totals["in_bytes"],
        "out_bytes": totals["out_bytes"],
        "slow_consumers": server.slow_consumers,
        "subscriptions": server.router.count,
    }
