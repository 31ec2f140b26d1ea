"""/varz against a live server and real nats-py clients (reference §5.6)."""
from __future__ import annotations

import re

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
UPTIME = re.compile(r"^(\d+y)?(\d+d)?(\d+h)?(\d+m)?\d+s$")

# Every key §5.6 lists for /varz, with its JSON type.
VARZ_TYPES = {
    **dict.fromkeys(["server_id", "server_name", "version", "go", "host", "http_host",
                     "http_base_path", "start", "now", "uptime", "config_load_time"], str),
    **dict.fromkeys(["proto", "port", "max_connections", "ping_interval", "ping_max",
                     "http_port", "https_port", "max_control_line", "max_payload",
                     "max_pending", "write_deadline", "mem", "cores", "gomaxprocs",
                     "connections", "total_connections", "routes", "remotes", "leafnodes",
                     "in_msgs", "out_msgs", "in_bytes", "out_bytes", "slow_consumers",
                     "subscriptions"], int),
    **dict.fromkeys(["auth_timeout", "tls_timeout", "cpu"], float),
    **dict.fromkeys(["cluster", "gateway", "leaf", "mqtt", "websocket", "jetstream",
                     "http_req_stats"], dict),
}


async def test_varz_has_every_key_with_its_type(get, server, monitor):
    varz = await get.json("/varz")
    missing = sorted(set(VARZ_TYPES) - set(varz))
    assert not missing, missing
    for key, kind in VARZ_TYPES.items():
        assert type(varz[key]) is kind, (key, varz[key])
    for key in ("cluster", "gateway", "leaf", "mqtt", "websocket", "jetstream"):
        assert varz[key] == {}
    for key in ("start", "now", "config_load_time"):
        assert RFC3339.match(varz[key]), varz[key]
    assert UPTIME.match(varz["uptime"])


async def test_varz_reports_identity_and_limits(get, server, monitor):
    varz = await get.json("/varz")
    assert varz["server_id"] == server.server_id
    assert varz["server_name"] == server.server_name
    assert (varz["host"], varz["port"]) == ("127.0.0.1", server.port)
    assert (varz["http_host"], varz["http_port"]) == ("127.0.0.1", monitor.port)
    assert varz["http_base_path"] == "" and varz["https_port"] == 0
    assert varz["proto"] == 1 and varz["version"] == "2.9.24"
    assert varz["ping_interval"] == 120 * 10**9 and varz["ping_max"] == 2
    assert varz["write_deadline"] == 10 * 10**9
    assert varz["auth_timeout"] == 2.0 and varz["tls_timeout"] == 2.0
    assert varz["max_payload"] == 1048576 and varz["max_control_line"] == 4096
    assert varz["max_pending"] == 64 * 1024 * 1024 and varz["max_connections"] == 65536
    assert varz["cores"] >= 1 and varz["gomaxprocs"] == varz["cores"]
    assert varz["mem"] > 1024 * 1024 and varz["cpu"] >= 0.0


async def test_varz_counts_messages_exactly(get, server, monitor, connect, eventually):
    received = []

    async def on_msg(msg):
        received.append(msg)
    subscriber = await connect(name="sub")
    await subscriber.subscribe("orders.*", cb=on_msg)
    await subscriber.subscribe("orders.new", cb=on_msg)
    await subscriber.flush()
    publisher = await connect(name="pub")
    for _ in range(5):
        await publisher.publish("orders.new", b"abc")
    for _ in range(2):
        await publisher.publish("nobody.listens", b"zz")
    await publisher.flush()
    await eventually(lambda: len(received) == 10, what="10 deliveries")

    varz = await get.json("/varz")
    assert (varz["in_msgs"], varz["in_bytes"]) == (7, 19)
    assert (varz["out_msgs"], varz["out_bytes"]) == (10, 30)
    assert (varz["connections"], varz["total_connections"]) == (2, 2)
    assert varz["subscriptions"] == 2 and varz["slow_consumers"] == 0

    await publisher.close()

    async def publisher_gone():
        return (await get.json("/varz"))["connections"] == 1
    await eventually(publisher_gone, what="the publisher's connection to close")
    varz = await get.json("/varz")
    assert (varz["in_msgs"], varz["in_bytes"], varz["out_msgs"]) == (7, 19, 10)
    assert varz["total_connections"] == 2


async def test_varz_counts_http_requests_per_path(get, monitor):
    assert (await get.json("/varz"))["http_req_stats"] == {"/varz": 1}
    await get.json("/connz")
    await get.json("/connz")
    await get.json("/subscriptionsz")
    stats = (await get.json("/varz"))["http_req_stats"]
    assert stats == {"/varz": 2, "/connz": 2, "/subscriptionsz": 1}
