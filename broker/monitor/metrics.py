"""Prometheus metrics of the core NATS server, computed at scrape time.

`ServerCollector` reads the server's own counters when /metrics is scraped; the
hot paths keep their plain integer counters and pay nothing for Prometheus.
Each monitor has a private `CollectorRegistry`, so two nodes in one process (as
in tests) never collide in prometheus_client's global registry.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client.core import (CollectorRegistry, CounterMetricFamily, GaugeMetricFamily,
                                    InfoMetricFamily, Metric)
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

from ..server.server import NATS_COMPAT_VERSION, VERSION

if TYPE_CHECKING:
    from .service import Monitor

__all__ = ["ServerCollector", "new_registry", "render"]

# name (without _total), type, help
_FAMILIES = (
    ("runnel_connections", "gauge", "Client connections open now."),
    ("runnel_connections_accepted", "counter", "Client connections accepted since start."),
    ("runnel_subscriptions", "gauge", "Subscriptions in the router now, internal ones included."),
    ("runnel_messages_in", "counter", "Messages published by clients (PUB and HPUB)."),
    ("runnel_messages_out", "counter", "Messages delivered to client connections."),
    ("runnel_bytes_in", "counter", "Payload bytes (headers included) published by clients."),
    ("runnel_bytes_out", "counter", "Payload bytes (headers included) delivered to clients."),
    ("runnel_slow_consumers", "counter", "Connections closed as slow consumers."),
    ("runnel_start_time_seconds", "gauge", "Start time of the server, seconds since the epoch."),
    ("runnel_http_requests", "counter", "Requests served by the monitoring port, by path."),
)
_HELP = {name: (kind, text) for name, kind, text in _FAMILIES}


class ServerCollector:
    """A prometheus_client custom collector over the core server's counters."""

    def __init__(self, monitor: Monitor):
        self.monitor = monitor

    def describe(self) -> Iterator[Metric]:
        yield InfoMetricFamily("runnel", "Identity of this Runnel node.")
        for name in _HELP:
            yield _family(name, labels=["path"] if name == "runnel_http_requests" else None)

    def collect(self) -> Iterator[Metric]:
        server = self.monitor.server
        yield InfoMetricFamily("runnel", "Identity of this Runnel node.", value={
            "server_id": server.server_id, "server_name": server.server_name,
            "version": VERSION, "nats_version": NATS_COMPAT_VERSION})
        totals = server.totals()
        values = {
            "runnel_connections": len(server.connections),
            "runnel_connections_accepted": server.total_connections,
            "runnel_subscriptions": server.router.count,
            "runnel_messages_in": totals["in_msgs"],
            "runnel_messages_out": totals["out_msgs"],
            "runnel_bytes_in": totals["in_bytes"],
            "runnel_bytes_out": totals["out_bytes"],
            "runnel_slow_consumers": server.slow_consumers,
            "runnel_start_time_seconds": server.started,
        }
        for name, value in values.items():
            family = _family(name)
            family.add_metric([], value)
            yield family
        requests = _family("runnel_http_requests", labels=["path"])
        for path, count in sorted(self.monitor.http_req_stats.items()):
            requests.add_metric([path], count)
        yield requests


def _family(name: str, labels: list[str] | None = None) -> Metric:
    kind, text = _HELP[name]
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(name, text, labels=labels)


def new_registry() -> CollectorRegistry:
    """A private registry with the standard process_* metrics already in it."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """``(body, content_type)`` for a scrape with the given Accept header.

    Prometheus' text format 0.0.4 unless the scraper asks for OpenMetrics or a
    newer text version (prometheus_client's own content negotiation).
    """
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
