"""HTTP conventions of the monitoring port (reference §5.1) and its extension points."""
from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest

from broker.monitor import Endpoint, Monitor, MonitorError, Provider

JSON_PATHS = ("/varz", "/connz", "/subsz", "/subscriptionsz", "/healthz")


async def test_healthz_is_nats_servers_exact_body(get):
    status, headers, body = await get.raw("/healthz")
    assert (status, body) == (200, b'{"status":"ok"}')
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"


async def test_json_endpoints_are_indented_json_with_cors(get):
    for path in JSON_PATHS:
        status, headers, body = await get.raw(path)
        assert status == 200, path
        assert headers["Content-Type"] == "application/json", path
        assert headers["Access-Control-Allow-Origin"] == "*", path
        data = json.loads(body)
        if path != "/healthz":
            assert body == json.dumps(data, indent=2, ensure_ascii=False).encode(), path


async def test_jsonp_callback(get, server):
    for path in JSON_PATHS:
        status, headers, body = await get.raw(path + "?callback=myFn")
        assert status == 200, path
        assert headers["Content-Type"] == "application/javascript", path
        assert body.startswith(b"myFn(") and body.endswith(b")"), path
        json.loads(body[len(b"myFn("):-1])
    _, _, body = await get.raw("/varz?callback=cb")
    assert json.loads(body[3:-1])["server_id"] == server.server_id
    status, _, body = await get.raw("/varz?callback=alert(1)%3Bx")
    assert status == 400 and body == b"invalid callback name"


async def test_index_links_every_titled_endpoint(get):
    status, headers, body = await get.raw("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    for path in ("/varz", "/connz", "/subsz", "/healthz", "/metrics"):
        assert f'href="{path}"' in page, path


async def test_unknown_path_is_404(get):
    status, _, _ = await get.raw("/nope")
    assert status == 404


class _Extra(Provider):
    """A provider as the streaming endpoints will be: own paths, collector, health."""

    def __init__(self):
        self.error = None

    def endpoints(self, monitor):
        async def serverz(request):
            await asyncio.sleep(0)
            return {"server_id": monitor.server.server_id, "x": request.query.get("x", "")}

        def missing(request):
            raise MonitorError(404, "Client foo not found")
        return (Endpoint("/streaming/serverz", serverz, "Streaming server"),
                Endpoint("/streaming/clientsz", missing))

    def collectors(self, monitor):
        return (_ConstCollector(),)

    def health_error(self, monitor):
        return self.error


class _ConstCollector:
    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        family = GaugeMetricFamily("runnel_streaming_channels", "Channels.")
        family.add_metric([], 7)
        yield family


async def _start(node, providers=None) -> Monitor:
    monitor = Monitor(node, providers)
    await monitor.start("127.0.0.1", 0)
    return monitor


async def test_provider_adds_endpoints_collectors_and_health(server, http, make_node):
    extra = _Extra()
    node = make_node(server)
    node.monitor_providers = [extra]
    monitor = await _start(node)
    try:
        async with http.get(monitor.url + "/streaming/serverz?x=1&callback=f") as response:
            assert response.headers["Content-Type"] == "application/javascript"
            body = await response.read()
        assert json.loads(body[2:-1]) == {"server_id": server.server_id, "x": "1"}
        async with http.get(monitor.url + "/streaming/clientsz") as response:
            assert (response.status, await response.text()) == (404, "Client foo not found")
        async with http.get(monitor.url + "/") as response:
            page = await response.text()
        assert 'href="/streaming/serverz"' in page and "/streaming/clientsz" not in page
        async with http.get(monitor.url + "/metrics") as response:
            assert "runnel_streaming_channels 7.0" in await response.text()
        extra.error = "store unreadable"
        async with http.get(monitor.url + "/healthz") as response:
            assert response.status == 503
            assert await response.read() == b'{"status":"error","error":"store unreadable"}'
        async with http.get(monitor.url + "/varz") as response:
            stats = (await response.json())["http_req_stats"]
        assert stats["/streaming/serverz"] == 1 and stats["/streaming/clientsz"] == 1
    finally:
        await monitor.stop()


async def test_providers_are_fixed_at_start_and_paths_unique(server, make_node):
    monitor = await _start(make_node(server))
    try:
        with pytest.raises(RuntimeError):
            monitor.add_provider(_Extra())
    finally:
        await monitor.stop()

    class _Clash(Provider):
        def endpoints(self, monitor):
            return (Endpoint("/varz", lambda request: {}),)
    with pytest.raises(ValueError, match="/varz"):
        await Monitor(make_node(server), [_Clash()]).start("127.0.0.1", 0)


async def test_base_path(server, http, make_node):
    monitor = Monitor(make_node(server, http_base_path="/mon/"))
    await monitor.start("127.0.0.1", 0)
    try:
        assert monitor.url.endswith("/mon")
        async with http.get(monitor.url + "/varz") as response:
            assert (await response.json())["http_base_path"] == "/mon"
        async with http.get(f"http://127.0.0.1:{monitor.port}/varz") as response:
            assert response.status == 404
        async with http.get(monitor.url + "/") as response:
            assert 'href="/mon/varz"' in await response.text()
    finally:
        await monitor.stop()


async def test_stop_releases_the_port(server, http, make_node):
    monitor = await _start(make_node(server))
    url = monitor.url + "/healthz"
    async with http.get(url) as response:
        assert response.status == 200
    await monitor.stop()
    await monitor.stop()  # idempotent
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(url):
            pass


async def test_busy_port_fails_to_start(server, make_node):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monitor = Monitor(make_node(server))
        with pytest.raises(OSError):
            await monitor.start("127.0.0.1", taken.getsockname()[1])
    await monitor.stop()
