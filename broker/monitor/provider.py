"""The extension points of the monitor: endpoints, metric collectors, health checks.

A `Provider` contributes any of the three. The core NATS endpoints are one
provider; the streaming endpoints (/streaming/serverz, ...) are another, added by
the composition root without touching this package's HTTP plumbing.

An endpoint handler runs on the event loop thread. It receives the aiohttp
request and returns a JSON-able object (encoded by the rules of reference §5.1),
a `Reply` (JSON with another status, or compact), or a ready
`aiohttp.web.StreamResponse` (HTML pages, /metrics). It may be a plain function
or a coroutine function, must never block, and signals a client error by
raising `MonitorError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from .service import Monitor


class MonitorError(Exception):
    """A request the endpoint refuses: answered with ``status`` and a text body."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True)
class Reply:
    """A JSON body with a chosen status, or compact (unindented) as /healthz is."""

    data: Any
    status: int = 200
    compact: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One path of the monitoring port.

    ``title`` is the link text on the index page (``/``); an empty title keeps
    the path off the index.
    """

    path: str
    handler: Callable[[Any], Any]
    title: str = ""


class Provider:
    """Base class of monitor extensions; every hook defaults to contributing nothing."""

    def endpoints(self, monitor: Monitor) -> Iterable[Endpoint]:
        return ()

    def collectors(self, monitor: Monitor) -> Iterable[Any]:
        """prometheus_client collectors to register on the monitor's private registry."""
        return ()

    def health_error(self, monitor: Monitor) -> str | None:
        """Why this part is unhealthy (reported by /healthz as 503), or None if healthy."""
        return None
