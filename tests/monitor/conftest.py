"""Fixtures for the monitor tests: an in-process NatsServer, a Monitor, an HTTP client.

Every wait polls an observable condition with a deadline; nothing sleeps blindly.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import time
from types import SimpleNamespace

import aiohttp
import nats
import pytest

from broker.monitor import Monitor
from broker.server import NatsServer


async def _eventually(condition, timeout: float = 5.0, what: str = "condition"):
    """Until ``condition()`` (sync or async) is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def _make_node(server: NatsServer, **options) -> SimpleNamespace:
    """A Node-like object: what Monitor reads of broker.app.Node."""
    defaults = {"host": server.host, "port": server.port, "http_host": "127.0.0.1",
                "http_port": 0}
    defaults.update(options)
    return SimpleNamespace(nats=server, options=SimpleNamespace(**defaults))


@pytest.fixture
def eventually():
    return _eventually


@pytest.fixture
def make_node():
    return _make_node


@pytest.fixture
async def server():
    srv = NatsServer("127.0.0.1", 0)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def monitor(server):
    mon = Monitor(_make_node(server))
    await mon.start("127.0.0.1", 0)
    yield mon
    await mon.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def connect(server):
    """``await connect(name=...)``: a nats-py client of the server, closed at the end."""
    clients = []

    async def open_client(**kwargs):
        client = await nats.connect(f"nats://127.0.0.1:{server.port}", connect_timeout=5,
                                    allow_reconnect=False, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        if not client.is_closed:
            await client.close()


class Getter:
    """GETs on the monitor: ``await get.json("/varz")``, ``await get.raw("/x")``."""

    def __init__(self, http: aiohttp.ClientSession, monitor: Monitor):
        self.http = http
        self.monitor = monitor

    async def raw(self, path: str, headers: dict | None = None):
        async with self.http.get(self.monitor.url + path, headers=headers) as response:
            return response.status, response.headers, await response.read()

    async def json(self, path: str, status: int = 200):
        code, headers, body = await self.raw(path)
        assert code == status, (path, code, body)
        assert headers["Content-Type"] == "application/json"
        return json.loads(body)


@pytest.fixture
def get(http, monitor) -> Getter:
    return Getter(http, monitor)
