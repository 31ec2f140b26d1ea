"""The core NATS endpoints of the monitoring port: /varz, /connz, /subsz, /healthz, /metrics."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterable

from aiohttp import web

from .connz import build_connz
from .formats import rfc3339, to_ns
from .metrics import ServerCollector, render
from .provider import Endpoint, Provider, Reply
from .subsz import build_subsz
from .varz import build_varz

if TYPE_CHECKING:
    from .service import Monitor


class CoreProvider(Provider):
    """The endpoints of nats-server's monitoring port that Runnel serves."""

    def endpoints(self, monitor: Monitor) -> Iterable[Endpoint]:
        return (
            Endpoint("/varz", lambda request: build_varz(monitor, time.time()), "General"),
            Endpoint("/connz", lambda request: build_connz(monitor, request.query, time.time()),
                     "Connections"),
            Endpoint("/subsz", lambda request: build_subsz(monitor, request.query, time.time()),
                     "Subscriptions"),
            Endpoint("/subscriptionsz",
                     lambda request: build_subsz(monitor, request.query, time.time())),
            Endpoint("/routez", lambda request: routez(monitor, time.time()), "Routes"),
            Endpoint("/healthz", lambda request: healthz(monitor), "Health"),
            Endpoint("/metrics", lambda request: metrics(monitor, request), "Metrics"),
        )

    def collectors(self, monitor: Monitor) -> Iterable[object]:
        return (ServerCollector(monitor),)

    def health_error(self, monitor: Monitor) -> str | None:
        if monitor.server.loop is None:
            return "NATS server not started"
        return None


def healthz(monitor: Monitor) -> Reply:
    """``{"status":"ok"}``, or 503 with the first problem any provider reports.

    Compact JSON, byte for byte what nats-server sends.
    """
    error = monitor.health_error()
    if error is None:
        return Reply({"status": "ok"}, compact=True)
    return Reply({"status": "error", "error": error}, status=503, compact=True)


def metrics(monitor: Monitor, request: web.Request) -> web.Response:
    body, content_type = render(monitor.registry, request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def routez(monitor: Monitor, now_s: float) -> dict:
    """The route links of this node (nats-server's /routez, in Runnel's terms)."""
    server = monitor.server
    routes = server.routes.peers() if server.routes is not None else []
    return {"server_id": server.server_id, "now": rfc3339(to_ns(now_s)),
            "num_routes": len(routes), "routes": routes}
