"""The monitoring HTTP listener: aiohttp's low-level runner, the providers' endpoints.

Every handler runs on the event loop thread that owns the server, so it reads
server state directly, without locks, and must never block. See DESIGN.md.
"""
from __future__ import annotations

import html
import inspect
import logging
from typing import Any, Iterable

from aiohttp import web

from .core import CoreProvider
from .formats import encode_json, valid_callback
from .metrics import new_registry
from .procstats import CpuSampler
from .provider import Endpoint, MonitorError, Provider, Reply

log = logging.getLogger("runnel.monitor")

_SHUTDOWN_TIMEOUT_S = 1.0


class Monitor:
    """The HTTP monitoring endpoint of one node (reference §5).

    ``node`` needs ``.nats`` (the NatsServer) and ``.options``. Extra providers
    come from the ``providers`` argument, or else from ``node.monitor_providers``,
    or later from `add_provider` (before `start`).
    """

    def __init__(self, node: Any, providers: Iterable[Provider] | None = None):
        self.node = node
        self.server = node.nats
        self.options = getattr(node, "options", None)
        self.base_path = _base_path(getattr(self.options, "http_base_path", "") or "")
        self.host = ""
        self.port = 0
        self.http_req_stats: dict[str, int] = {}
        self.cpu = CpuSampler()
        self.config_load_time = (getattr(self.options, "config_load_time", None)
                                 or self.server.started)
        self.registry = new_registry()
        self._providers: list[Provider] = []
        self._runner: web.AppRunner | None = None
        self.add_provider(CoreProvider())
        extra = providers if providers is not None else getattr(node, "monitor_providers", ())
        for provider in extra or ():
            self.add_provider(provider)

    # -- extension --

    def add_provider(self, provider: Provider) -> None:
        """Add endpoints, collectors and health checks; endpoints only before `start`."""
        if self._runner is not None:
            raise RuntimeError("add monitor providers before the monitor starts")
        self._providers.append(provider)
        for collector in provider.collectors(self):
            self.registry.register(collector)

    def add_collector(self, collector: Any) -> None:
        """Register one more prometheus_client collector for /metrics (at any time)."""
        self.registry.register(collector)

    def health_error(self) -> str | None:
        for provider in self._providers:
            error = provider.health_error(self)
            if error:
                return error
        return None

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint served, the index first; a path served twice is an error."""
        found = [Endpoint("/", self._index)]
        for provider in self._providers:
            found.extend(provider.endpoints(self))
        paths = [endpoint.path for endpoint in found]
        duplicates = sorted({path for path in paths if paths.count(path) > 1})
        if duplicates:
            raise ValueError(f"monitor paths registered twice: {duplicates}")
        return found

    # -- life cycle --

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0 picks a free one, see `port`)."""
        app = web.Application()
        for endpoint in self.endpoints():
            app.router.add_get(self.base_path + endpoint.path, self._wrap(endpoint))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host or None, port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.host = host or "0.0.0.0"
        self.port = runner.addresses[0][1]
        log.info("Starting http monitor on http://%s:%d%s", self.host, self.port, self.base_path)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}{self.base_path}"

    # -- request handling --

    def _wrap(self, endpoint: Endpoint):
        async def handle(request: web.Request) -> web.StreamResponse:
            self.http_req_stats[endpoint.path] = self.http_req_stats.get(endpoint.path, 0) + 1
            try:
                result = endpoint.handler(request)
                if inspect.isawaitable(result):
                    result = await result
            except MonitorError as err:
                return web.Response(status=err.status, text=err.text)
            if isinstance(result, web.StreamResponse):
                return result
            if isinstance(result, Reply):
                return json_response(request, result.data, result.status, result.compact)
            return json_response(request, result)
        return handle

    def _index(self, request: web.Request) -> web.Response:
        links = "\n".join(
            f'    <a href="{html.escape(self.base_path + e.path)}">{html.escape(e.title)}'
            f' <span class="endpoint">{html.escape(e.path)}</span></a><br/>'
            for e in self.endpoints() if e.title)
        page = (f"<html lang=\"en\">\n  <head><title>Runnel {html.escape(self.server.server_name)}"
                f"</title></head>\n  <body>\n    <h1>Runnel monitoring</h1>\n{links}\n"
                f"  </body>\n</html>\n")
        return web.Response(text=page, content_type="text/html")


def json_response(request: web.Request, data: Any, status: int = 200,
                  compact: bool = False) -> web.Response:
    """JSON by reference §5.1: CORS open; ``?callback=fn`` turns it into JSONP."""
    body = encode_json(data, compact)
    headers = {"Access-Control-Allow-Origin": "*", "Content-Type": "application/json"}
    callback = request.query.get("callback", "")
    if callback:
        if not valid_callback(callback):
            return web.Response(status=400, text="invalid callback name")
        body = callback.encode() + b"(" + body + b")"
        headers["Content-Type"] = "application/javascript"
    return web.Response(status=status, body=body, headers=headers)


def _base_path(path: str) -> str:
    """``""`` or ``/a/b``: a leading slash, no trailing one."""
    path = path.strip("/")
    return "/" + path if path else ""

