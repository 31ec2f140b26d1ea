"""/metrics: Prometheus text computed at scrape time from the server's counters."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from broker.monitor import Monitor

RUNNEL_FAMILIES = {
    "runnel_info": "gauge",  # an info metric is a gauge of 1 in the 0.0.4 text format
    "runnel_connections": "gauge",
    "runnel_connections_accepted": "counter",
    "runnel_subscriptions": "gauge",
    "runnel_messages_in": "counter",
    "runnel_messages_out": "counter",
    "runnel_bytes_in": "counter",
    "runnel_bytes_out": "counter",
    "runnel_slow_consumers": "counter",
    "runnel_start_time_seconds": "gauge",
    "runnel_http_requests": "counter",
}


async def _scrape(get) -> tuple[dict, dict]:
    status, headers, body = await get.raw("/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in families.values() for s in family.samples}
    return families, samples


async def test_metrics_families_have_types_and_help(get):
    families, _ = await _scrape(get)
    for name, kind in RUNNEL_FAMILIES.items():
        assert name in families, name
        assert families[name].type == kind, name
        assert families[name].documentation, name
    assert "process_resident_memory_bytes" in families


async def test_metrics_carry_the_server_counters(get, server, connect, eventually):
    got = []

    async def on_msg(msg):
        got.append(msg)
    subscriber = await connect()
    await subscriber.subscribe("m.*", cb=on_msg)
    await subscriber.subscribe("m.one", cb=on_msg)
    await subscriber.flush()
    publisher = await connect()
    for _ in range(3):
        await publisher.publish("m.one", b"abcd")
    await publisher.publish("m.none.here", b"zz")
    await publisher.flush()
    await eventually(lambda: len(got) == 6, what="6 deliveries")
    await publisher.close()
    await eventually(lambda: len(server.connections) == 1, what="the publisher to go")

    _, samples = await _scrape(get)
    expected = {
        "runnel_connections": 1, "runnel_connections_accepted_total": 2,
        "runnel_subscriptions": 2, "runnel_messages_in_total": 4,
        "runnel_bytes_in_total": 14, "runnel_messages_out_total": 6,
        "runnel_bytes_out_total": 24, "runnel_slow_consumers_total": 0,
        "runnel_start_time_seconds": server.started,
    }
    for name, value in expected.items():
        assert samples[(name, ())] == value, name
    info = {labels: value for (name, labels), value in samples.items() if name == "runnel_info"}
    ((labels, value),) = info.items()
    assert value == 1 and dict(labels)["server_id"] == server.server_id
    assert samples[("runnel_http_requests_total", (("path", "/metrics"),))] == 1


async def test_metrics_negotiates_openmetrics(get):
    accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
    status, headers, body = await get.raw("/metrics", headers=accept)
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


async def test_two_monitors_in_one_process_do_not_collide(get, server, make_node, http):
    second = Monitor(make_node(server))
    await second.start("127.0.0.1", 0)
    try:
        async with http.get(second.url + "/metrics") as response:
            assert response.status == 200
            assert "runnel_connections 0.0" in await response.text()
        await _scrape(get)
    finally:
        await second.stop()
