"""/subsz and /subscriptionsz against a live server and real nats-py clients."""
from __future__ import annotations

STATS_KEYS = {"server_id", "now", "num_subscriptions", "num_cache", "num_inserts",
              "num_removes", "num_matches", "cache_hit_rate", "max_fanout", "avg_fanout",
              "total", "offset", "limit"}


async def _num_subs(get) -> int:
    return (await get.json("/subsz"))["num_subscriptions"]


async def test_subsz_counts_subscriptions_and_drops_on_unsubscribe(get, connect, eventually):
    subsz = await get.json("/subsz")
    assert STATS_KEYS <= set(subsz) and subsz["num_subscriptions"] == 0
    client = await connect(name="subs")
    first = await client.subscribe("foo.*")
    await client.subscribe("foo.bar", queue="q")
    await client.subscribe("baz")
    await client.flush()
    assert await _num_subs(get) == 3
    await first.unsubscribe()
    await client.flush()
    await eventually(lambda: _equals(_num_subs(get), 2), what="the unsubscribe")
    subsz = await get.json("/subscriptionsz")
    assert (subsz["num_subscriptions"], subsz["num_inserts"], subsz["num_removes"]) == (2, 3, 1)
    assert "subscriptions_list" not in subsz and subsz["total"] == 0
    await client.close()
    await eventually(lambda: _equals(_num_subs(get), 0), what="the connection's subs to go")


async def test_subsz_lists_subscriptions(get, connect):
    client = await connect()
    for subject, queue in (("foo.*", ""), ("foo.bar", "q"), ("baz", "")):
        await client.subscribe(subject, queue=queue)
    await client.flush()
    cid = (await get.json("/connz"))["connections"][0]["cid"]
    subsz = await get.json("/subsz?subs=1")
    listed = subsz["subscriptions_list"]
    assert subsz["total"] == 3 and len(listed) == 3
    assert [d["subject"] for d in listed] == ["foo.*", "foo.bar", "baz"]  # by (cid, sid)
    assert all(d["account"] == "$G" and d["cid"] == cid and d["msgs"] == 0 for d in listed)
    assert [d.get("qgroup") for d in listed] == [None, "q", None]
    page = await get.json("/subsz?subs=1&offset=1&limit=1")
    assert [d["subject"] for d in page["subscriptions_list"]] == ["foo.bar"]
    assert (page["total"], page["offset"], page["limit"]) == (3, 1, 1)
    tested = await get.json("/subsz?subs=1&test=foo.bar")
    assert sorted(d["subject"] for d in tested["subscriptions_list"]) == ["foo.*", "foo.bar"]
    status, _, body = await get.raw("/subsz?subs=1&test=foo.*")
    assert status == 400 and b"invalid test subject" in body


async def test_subsz_router_statistics(get, connect, eventually):
    got = []

    async def on_msg(msg):
        got.append(msg)
    client = await connect()
    await client.subscribe("foo.*", cb=on_msg)
    await client.subscribe("foo.bar", cb=on_msg)
    await client.flush()
    for _ in range(3):
        await client.publish("foo.bar", b"x")
    await client.flush()
    await eventually(lambda: len(got) == 6, what="6 deliveries")
    subsz = await get.json("/subsz")
    assert subsz["num_matches"] == 3 and subsz["num_cache"] == 1
    assert abs(subsz["cache_hit_rate"] - 2 / 3) < 1e-9
    assert (subsz["max_fanout"], subsz["avg_fanout"]) == (2, 2.0)


async def _equals(awaitable, expected) -> bool:
    return (await awaitable) == expected
