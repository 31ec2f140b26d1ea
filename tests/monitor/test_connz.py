"""/connz against a live server and real nats-py clients: contents, paging, sorting."""
from __future__ import annotations

import re

import pytest

SORTS = ("cid", "start", "subs", "pending", "msgs_to", "msgs_from", "bytes_to",
         "bytes_from", "last", "idle", "uptime", "rtt")
CONN_KEYS = {"cid", "kind", "type", "ip", "port", "start", "last_activity", "rtt", "uptime",
             "idle", "pending_bytes", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
             "subscriptions", "name", "lang", "version"}


@pytest.fixture
async def three_clients(server, connect):
    """c0: 1 sub, publishes 2; c1: 3 subs, publishes 0; c2: 2 subs, publishes 1."""
    plan = [(["a.0"], 2), (["b.0", "b.1", "b.2"], 0), (["c.0", "c.1"], 1)]
    clients = []
    for index, (subjects, publishes) in enumerate(plan):
        client = await connect(name=f"c{index}")
        for subject in subjects:
            await client.subscribe(subject, queue="workers" if subject == "b.1" else "")
        for _ in range(publishes):
            await client.publish("void", b"12345")
        await client.flush()
        clients.append(client)
    return clients


async def test_connz_lists_connections_with_connect_fields(get, three_clients):
    connz = await get.json("/connz")
    assert (connz["num_connections"], connz["total"]) == (3, 3)
    assert (connz["offset"], connz["limit"]) == (0, 1024)
    conns = connz["connections"]
    assert [c["name"] for c in conns] == ["c0", "c1", "c2"]
    for conn in conns:
        assert CONN_KEYS <= set(conn), CONN_KEYS - set(conn)
        assert conn["lang"] == "python3" and conn["version"]
        assert (conn["kind"], conn["type"], conn["ip"]) == ("Client", "nats", "127.0.0.1")
        assert conn["port"] > 0 and conn["pending_bytes"] == 0 and conn["rtt"] == "0s"
        assert re.match(r"^\d+s$", conn["uptime"]) and re.match(r"^\d+s$", conn["idle"])
        assert "subscriptions_list" not in conn
    assert [c["subscriptions"] for c in conns] == [1, 3, 2]
    assert [(c["in_msgs"], c["in_bytes"]) for c in conns] == [(2, 10), (0, 0), (1, 5)]
    assert [c["cid"] for c in conns] == sorted(c["cid"] for c in conns)


async def test_connz_pages(get, three_clients):
    cids = [c["cid"] for c in (await get.json("/connz"))["connections"]]
    connz = await get.json("/connz?offset=1&limit=1")
    assert [c["cid"] for c in connz["connections"]] == cids[1:2]
    assert (connz["num_connections"], connz["total"], connz["offset"], connz["limit"]) == (
        1, 3, 1, 1)
    connz = await get.json("/connz?offset=2&limit=5")
    assert [c["cid"] for c in connz["connections"]] == cids[2:]
    connz = await get.json("/connz?offset=9")
    assert connz["connections"] == [] and connz["num_connections"] == 0
    connz = await get.json("/connz?offset=-4&limit=0")
    assert (connz["offset"], connz["limit"], connz["num_connections"]) == (0, 1024, 3)


async def test_connz_sorts(get, three_clients):
    async def names(sort):
        return [c["name"] for c in (await get.json(f"/connz?sort={sort}"))["connections"]]
    assert await names("cid") == ["c0", "c1", "c2"]
    assert await names("start") == ["c0", "c1", "c2"]
    assert await names("subs") == ["c1", "c2", "c0"]
    assert await names("msgs_from") == ["c0", "c2", "c1"]
    assert await names("bytes_from") == ["c0", "c2", "c1"]
    assert await names("uptime") == ["c2", "c1", "c0"]  # nats-server: youngest first
    for sort in SORTS:
        assert sorted(await names(sort)) == ["c0", "c1", "c2"], sort
    connz = await get.json("/connz?sort=subs&offset=1&limit=1")
    assert [c["name"] for c in connz["connections"]] == ["c2"]


async def test_connz_rejects_bad_sort_and_state(get, three_clients):
    for query, text in (("sort=bogus", b"invalid sorting option: bogus"),
                        ("sort=stop", b"sort by stop only valid on closed connections"),
                        ("state=weird", b"invalid connection state: weird"),
                        ("limit=x", b"Error decoding int for 'limit'")):
        status, headers, body = await get.raw(f"/connz?{query}")
        assert status == 400 and body.startswith(text), (query, body)
        assert headers["Content-Type"].startswith("text/plain")
    assert (await get.json("/connz?state=closed"))["connections"] == []
    assert (await get.json("/connz?state=any"))["num_connections"] == 3


async def test_connz_by_cid_with_subscriptions(get, three_clients):
    cids = [c["cid"] for c in (await get.json("/connz"))["connections"]]
    connz = await get.json(f"/connz?cid={cids[1]}&subs=1")
    assert (connz["num_connections"], connz["total"], connz["limit"]) == (1, 3, 1)
    (conn,) = connz["connections"]
    assert conn["name"] == "c1"
    assert sorted(conn["subscriptions_list"]) == ["b.0", "b.1", "b.2"]
    connz = await get.json("/connz?cid=9999")
    assert connz["connections"] == [] and connz["num_connections"] == 0


async def test_connz_subscription_detail(get, three_clients):
    conns = (await get.json("/connz?subs=detail"))["connections"]
    details = conns[1]["subscriptions_list_detail"]
    assert sorted(d["subject"] for d in details) == ["b.0", "b.1", "b.2"]
    for detail in details:
        assert detail["cid"] == conns[1]["cid"] and detail["msgs"] == 0
        assert detail["sid"].isdigit() and "account" not in detail
        assert detail.get("qgroup") == ("workers" if detail["subject"] == "b.1" else None)
    assert all("subscriptions_list" not in c for c in conns)


async def test_connz_counts_deliveries(get, connect, eventually):
    got = []

    async def on_msg(msg):
        got.append(msg)
    receiver = await connect(name="receiver")
    await receiver.subscribe("x", cb=on_msg)
    await receiver.flush()
    sender = await connect(name="sender")
    for _ in range(4):
        await sender.publish("x", b"hello")
    await sender.flush()
    await eventually(lambda: len(got) == 4, what="4 deliveries")
    conns = {c["name"]: c for c in (await get.json("/connz?sort=msgs_to"))["connections"]}
    assert (conns["receiver"]["out_msgs"], conns["receiver"]["out_bytes"]) == (4, 20)
    assert (conns["sender"]["in_msgs"], conns["sender"]["in_bytes"]) == (4, 20)
    assert conns["sender"]["out_msgs"] == 0
