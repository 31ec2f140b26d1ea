"""/streaming/* (reference §5.2–§5.5) and the STAN metrics, on a real node process.

A minimal STAN client, written here with nats-py and the protobufs of
broker.protocol.stan, makes known traffic; the endpoints must then show exactly
that traffic. Every wait polls an observable condition with a deadline.
"""
from __future__ import annotations

import asyncio
import json
import re
from types import SimpleNamespace

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from broker.monitor.formats import encode_json

from tests.support.stan import CLUSTER, Stan, eventually

pytestmark = pytest.mark.timeout(120)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
SERVERZ_KEYS = ["cluster_id", "server_id", "version", "go", "state", "now", "start_time",
                "uptime", "clients", "subscriptions", "channels", "total_msgs", "total_bytes",
                "in_msgs", "in_bytes", "out_msgs", "out_bytes"]
LIST_KEYS = ["cluster_id", "server_id", "now", "offset", "limit", "count", "total"]
SUBZ_KEYS = ["client_id", "inbox", "ack_inbox", "durable_name", "queue_name", "is_durable",
             "is_offline", "max_inflight", "ack_wait", "last_sent", "pending_count",
             "is_stalled"]
DEFAULT_LIMITS = {"max_channels": 100, "max_msgs": 1_000_000, "max_bytes": 1_024_000_000,
                  "max_age": 0, "max_subscriptions": 1000, "max_inactivity": 0}


# -- helpers -----------------------------------------------------------------------------

class Http:
    def __init__(self, session: aiohttp.ClientSession, base: str):
        self.session = session
        self.base = base

    async def raw(self, path: str):
        async with self.session.get(self.base + path) as response:
            return response.status, response.headers, await response.read()

    async def json(self, path: str):
        status, headers, body = await self.raw(path)
        assert status == 200, (path, status, body)
        assert headers["Content-Type"] == "application/json", path
        assert headers["Access-Control-Allow-Origin"] == "*", path
        data = json.loads(body)
        assert body == encode_json(data), path  # 2-space indent, Go's escaping of <>&
        return data

    async def metrics(self) -> tuple[dict, dict]:
        status, _, body = await self.raw("/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in families.values() for s in family.samples}
        return families, samples


def _ordered(data: dict, keys: list[str]) -> list[str]:
    """The keys of ``data`` that appear in ``keys``, in data's order."""
    return [key for key in data if key in keys]


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
def node(runnel_factory, tmp_path):
    return runnel_factory("-st", "file", "-dir", str(tmp_path / "d"))


@pytest.fixture
async def web(node, http) -> Http:
    return Http(http, node.http_url)


@pytest.fixture
async def stans():
    made: list[Stan] = []
    yield made
    for client in made:
        if not client.nc.is_closed:
            try:
                await asyncio.wait_for(client.nc.close(), 5)
            except Exception:
                pass


async def _sub_of(web: Http, channel: str, **match):
    """The Subscriptionz of ``channel`` whose fields include ``match``."""
    data = await web.json(f"/streaming/channelsz?channel={channel}&subs=1")
    found = [s for s in data.get("subscriptions", [])
             if all(s.get(k) == v for k, v in match.items())]
    return found[0] if len(found) == 1 else None


@pytest.fixture
async def traffic(node, web, stans) -> SimpleNamespace:
    """Known traffic:

    * alpha publishes foo x3 and bar x2; holds a plain sub on foo (all 3 pending) and a
      plain sub on foo with max_inflight 2 (2 pending: stalled, one behind);
    * bravo's durable ``dur`` on foo got and acked all 3, then was closed (offline);
    * charlie is in queue group ``grp`` on bar (2 pending); his durable queue member
      ``dq:workers`` on bar acked seq 1 and was closed (a shadow, 1 pending); he
      subscribed to ``empty`` and unsubscribed (an empty channel is left).
    """
    alpha = await Stan.connect(node.url, "alpha")
    bravo = await Stan.connect(node.url, "bravo")
    charlie = await Stan.connect(node.url, "charlie")
    stans.extend([alpha, bravo, charlie])
    payloads = {"foo": [b"a" * 10, b"b" * 20, b"c" * 30], "bar": [b"x" * 5, b"y" * 7]}
    for channel, datas in payloads.items():
        for data in datas:
            await alpha.publish(channel, data)

    a_plain = await alpha.subscribe("foo")
    a_stalled = await alpha.subscribe("foo", max_inflight=2)
    b_dur = await bravo.subscribe("foo", durable="dur")
    c_grp = await charlie.subscribe("bar", queue="grp")
    c_dq = await charlie.subscribe("bar", queue="workers", durable="dq")
    c_empty = await charlie.subscribe("empty")
    subs = [a_plain, a_stalled, b_dur, c_grp, c_dq, c_empty]
    expected = [3, 2, 3, 2, 2, 0]
    await eventually(lambda: [len(s.msgs) for s in subs] == expected, what="the deliveries")

    for seq in (1, 2, 3):
        await bravo.ack(b_dur, seq)
    await charlie.ack(c_dq, 1)
    await eventually(lambda: _sub_of(web, "foo", client_id="bravo", pending_count=0),
                     what="bravo's acks to apply")
    await eventually(lambda: _sub_of(web, "bar", queue_name="dq:workers", pending_count=1),
                     what="charlie's ack to apply")
    await bravo.close_sub(b_dur)
    await charlie.close_sub(c_dq)
    await charlie.unsubscribe(c_empty)

    records = {}  # (channel, seq) -> stored record size (first deliveries are the record)
    for sub in subs:
        for msg, size in zip(sub.msgs, sub.sizes):
            assert not msg.redelivered
            records[(msg.subject, msg.sequence)] = size
    return SimpleNamespace(
        alpha=alpha, bravo=bravo, charlie=charlie, a_plain=a_plain, a_stalled=a_stalled,
        b_dur=b_dur, c_grp=c_grp, c_dq=c_dq, c_empty=c_empty,
        in_bytes=alpha.pub_bytes, out_msgs=sum(expected),
        out_bytes=sum(sum(s.sizes) for s in subs),
        channel_bytes={name: sum(size for (ch, _), size in records.items() if ch == name)
                       for name in ("foo", "bar")})


# -- a fresh node --------------------------------------------------------------------------

async def test_fresh_node_serverz(web):
    data = await web.json("/streaming/serverz")
    assert _ordered(data, SERVERZ_KEYS) == SERVERZ_KEYS
    assert set(data) - set(SERVERZ_KEYS) <= {"open_fds", "max_fds"}
    assert "role" not in data and "node_id" not in data
    assert data["cluster_id"] == CLUSTER and data["state"] == "STANDALONE"
    assert data["version"] == "0.25.6"
    assert re.fullmatch(r"[0-9A-Za-z]{22}", data["server_id"])
    assert RFC3339.match(data["now"]) and RFC3339.match(data["start_time"])
    assert re.fullmatch(r"\d+s", data["uptime"])
    counts = [data[k] for k in ("clients", "subscriptions", "channels", "total_msgs",
                                "total_bytes", "in_msgs", "in_bytes", "out_msgs", "out_bytes")]
    assert counts == [0] * 9
    assert data["open_fds"] > 0 and data["max_fds"] >= data["open_fds"]
    # the server id is per process start, and the same on every endpoint
    for path in ("storez", "clientsz", "channelsz"):
        assert (await web.json(f"/streaming/{path}"))["server_id"] == data["server_id"]


async def test_fresh_node_storez_defaults(web):
    data = await web.json("/streaming/storez")
    assert list(data) == ["cluster_id", "server_id", "now", "type", "limits", "total_msgs",
                          "total_bytes"]
    assert data["type"] == "FILE"
    assert data["limits"] == DEFAULT_LIMITS and list(data["limits"]) == list(DEFAULT_LIMITS)
    assert (data["total_msgs"], data["total_bytes"]) == (0, 0)


async def test_fresh_node_lists_are_empty(web):
    clients = await web.json("/streaming/clientsz")
    assert list(clients) == LIST_KEYS + ["clients"]
    assert [clients[k] for k in ("offset", "limit", "count", "total")] == [0, 1024, 0, 0]
    assert clients["clients"] == []
    for query in ("", "?subs=1"):
        channels = await web.json("/streaming/channelsz" + query)
        assert list(channels) == LIST_KEYS, query  # no names / channels at all
        assert [channels[k] for k in ("offset", "limit", "count", "total")] == [0, 1024, 0, 0]


async def test_memory_store_type(runnel_factory, http):
    node = runnel_factory()  # the default store is MEMORY
    data = await Http(http, node.http_url).json("/streaming/storez")
    assert data["type"] == "MEMORY" and data["limits"] == DEFAULT_LIMITS


async def test_is_ft_active_is_204_and_index_links(web):
    status, _, body = await web.raw("/streaming/isFTActive")
    assert (status, body) == (204, b"")
    status, headers, body = await web.raw("/streaming")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for page in ("serverz", "storez", "clientsz", "channelsz", "isFTActive"):
        assert f'href="/streaming/{page}"' in body.decode(), page
    _, _, root = await web.raw("/")
    assert 'href="/streaming"' in root.decode()


async def test_unknown_client_and_channel_are_404_text(web):
    for path, text in (("/streaming/clientsz?client=nobody", "Client nobody not found"),
                       ("/streaming/channelsz?channel=nope", "Channel nope not found"),
                       ("/streaming/channelsz?channel=nope&subs=1", "Channel nope not found")):
        status, headers, body = await web.raw(path)
        assert (status, body.decode()) == (404, text), path
        assert headers["Content-Type"].startswith("text/plain"), path


async def test_jsonp_and_healthz(web):
    status, headers, body = await web.raw("/streaming/serverz?callback=cb")
    assert status == 200 and headers["Content-Type"] == "application/javascript"
    assert body.startswith(b"cb(") and json.loads(body[3:-1])["state"] == "STANDALONE"
    status, _, body = await web.raw("/healthz")
    assert (status, body) == (200, b'{"status":"ok"}')
    varz = await web.json("/varz")
    assert varz["http_req_stats"]["/streaming/serverz"] == 1


# -- after known traffic ----------------------------------------------------------------

async def test_serverz_and_storez_count_the_traffic(web, traffic):
    data = await web.json("/streaming/serverz")
    assert data["clients"] == 3
    assert data["channels"] == 3
    # foo: alpha x2 + bravo's offline durable; bar: charlie's member + the dq shadow
    assert data["subscriptions"] == 5
    assert data["total_msgs"] == 5
    assert data["total_bytes"] == sum(traffic.channel_bytes.values())
    assert (data["in_msgs"], data["in_bytes"]) == (5, traffic.in_bytes)
    assert (data["out_msgs"], data["out_bytes"]) == (traffic.out_msgs, traffic.out_bytes)
    store = await web.json("/streaming/storez")
    assert (store["total_msgs"], store["total_bytes"]) == (5, data["total_bytes"])


async def test_channelsz_list_single_and_paging(web, traffic):
    data = await web.json("/streaming/channelsz")
    assert list(data) == LIST_KEYS + ["names"]
    assert data["names"] == ["bar", "empty", "foo"]
    assert [data[k] for k in ("offset", "limit", "count", "total")] == [0, 1024, 3, 3]

    page = await web.json("/streaming/channelsz?offset=1&limit=1")
    assert (page["names"], page["offset"], page["limit"], page["count"], page["total"]) == (
        ["empty"], 1, 1, 1, 3)
    page = await web.json("/streaming/channelsz?offset=-4&limit=0")
    assert (page["offset"], page["limit"], page["count"]) == (0, 1024, 3)
    page = await web.json("/streaming/channelsz?offset=x&limit=y")  # Atoi errors: 0
    assert (page["offset"], page["limit"], page["count"]) == (0, 1024, 3)
    page = await web.json("/streaming/channelsz?offset=3")
    assert "names" not in page and (page["count"], page["total"]) == (0, 3)
    page = await web.json("/streaming/channelsz?subs=1&offset=3")
    assert "channels" not in page and "names" not in page
    page = await web.json("/streaming/channelsz?subs=2")  # only exactly 1 counts
    assert "names" in page and "channels" not in page

    full = await web.json("/streaming/channelsz?subs=1&limit=2")
    assert list(full) == LIST_KEYS + ["channels"] and full["count"] == 2
    bar, empty = full["channels"]
    assert list(bar) == ["name", "msgs", "bytes", "first_seq", "last_seq", "subs_count",
                         "subscriptions"]
    assert (bar["name"], bar["msgs"], bar["bytes"], bar["first_seq"], bar["last_seq"],
            bar["subs_count"]) == ("bar", 2, traffic.channel_bytes["bar"], 1, 2, 2)
    assert empty == {"name": "empty", "msgs": 0, "bytes": 0, "first_seq": 0, "last_seq": 0,
                     "subs_count": 0}

    foo = await web.json("/streaming/channelsz?channel=foo")
    assert foo == {"name": "foo", "msgs": 3, "bytes": traffic.channel_bytes["foo"],
                   "first_seq": 1, "last_seq": 3, "subs_count": 3}


async def test_subscriptionz_fields(web, traffic):
    t = traffic
    foo = await web.json("/streaming/channelsz?channel=foo&subs=1")
    assert foo["subs_count"] == 3 and len(foo["subscriptions"]) == 3
    plain, stalled, durable = foo["subscriptions"]  # by subscription id: creation order
    for sub in foo["subscriptions"]:
        assert _ordered(sub, SUBZ_KEYS) == [k for k in SUBZ_KEYS if k in sub]
    assert plain == {"client_id": "alpha", "inbox": t.a_plain.inbox,
                     "ack_inbox": t.a_plain.ack_inbox, "is_durable": False,
                     "is_offline": False, "max_inflight": 1024, "ack_wait": 60,
                     "last_sent": 3, "pending_count": 3, "is_stalled": False}
    assert stalled == {"client_id": "alpha", "inbox": t.a_stalled.inbox,
                       "ack_inbox": t.a_stalled.ack_inbox, "is_durable": False,
                       "is_offline": False, "max_inflight": 2, "ack_wait": 60,
                       "last_sent": 2, "pending_count": 2, "is_stalled": True}
    assert durable == {"client_id": "bravo", "inbox": t.b_dur.inbox,
                       "ack_inbox": t.b_dur.ack_inbox, "durable_name": "dur",
                       "is_durable": True, "is_offline": True, "max_inflight": 1024,
                       "ack_wait": 60, "last_sent": 3, "pending_count": 0,
                       "is_stalled": False}

    bar = await web.json("/streaming/channelsz?channel=bar&subs=1")
    member, shadow = bar["subscriptions"]
    assert member == {"client_id": "charlie", "inbox": t.c_grp.inbox,
                      "ack_inbox": t.c_grp.ack_inbox, "queue_name": "grp",
                      "is_durable": False, "is_offline": False, "max_inflight": 1024,
                      "ack_wait": 60, "last_sent": 2, "pending_count": 2, "is_stalled": False}
    # a durable queue group's shadow: name folded into queue_name, no durable_name
    assert shadow == {"client_id": "charlie", "inbox": t.c_dq.inbox,
                      "ack_inbox": t.c_dq.ack_inbox, "queue_name": "dq:workers",
                      "is_durable": True, "is_offline": True, "max_inflight": 1024,
                      "ack_wait": 60, "last_sent": 2, "pending_count": 1, "is_stalled": False}
    empty = await web.json("/streaming/channelsz?channel=empty&subs=1")
    assert "subscriptions" not in empty and empty["subs_count"] == 0


async def test_clientsz_list_single_and_paging(web, traffic):
    data = await web.json("/streaming/clientsz")
    assert list(data) == LIST_KEYS + ["clients"]
    assert [data[k] for k in ("offset", "limit", "count", "total")] == [0, 1024, 3, 3]
    assert [c["id"] for c in data["clients"]] == ["alpha", "bravo", "charlie"]
    for client in data["clients"]:
        assert list(client) == ["id", "hb_inbox", "subs_count"]
        assert client["hb_inbox"].startswith("_INBOX.")
    # online subscriptions only: bravo's durable is offline, charlie's dq is a shadow
    assert [c["subs_count"] for c in data["clients"]] == [2, 0, 1]

    page = await web.json("/streaming/clientsz?offset=1&limit=1")
    assert [c["id"] for c in page["clients"]] == ["bravo"]
    assert (page["offset"], page["limit"], page["count"], page["total"]) == (1, 1, 1, 3)
    page = await web.json("/streaming/clientsz?offset=-1&limit=-5")
    assert (page["offset"], page["limit"], page["count"]) == (0, 1024, 3)
    page = await web.json("/streaming/clientsz?offset=7")
    assert (page["clients"], page["count"], page["total"]) == ([], 0, 3)

    listed = await web.json("/streaming/clientsz?subs=1")
    alpha, bravo, charlie = listed["clients"]
    assert list(alpha["subscriptions"]) == ["foo"] and len(alpha["subscriptions"]["foo"]) == 2
    assert "subscriptions" not in bravo  # none online
    assert [s["queue_name"] for s in charlie["subscriptions"]["bar"]] == ["grp"]

    single = await web.json("/streaming/clientsz?client=alpha")
    assert single == {"id": "alpha", "hb_inbox": alpha["hb_inbox"], "subs_count": 2}
    single = await web.json("/streaming/clientsz?client=alpha&subs=1")
    assert [s["inbox"] for s in single["subscriptions"]["foo"]] == [
        traffic.a_plain.inbox, traffic.a_stalled.inbox]
    assert [s["pending_count"] for s in single["subscriptions"]["foo"]] == [3, 2]
    single = await web.json("/streaming/clientsz?client=bravo&subs=1")
    assert single == {"id": "bravo", "hb_inbox": bravo["hb_inbox"], "subs_count": 0}


async def test_counts_follow_client_close(web, traffic):
    await traffic.alpha.close()  # its two plain subscriptions go away
    await eventually(lambda: _serverz_counts(web, (2, 3)), what="alpha's close")
    await traffic.bravo.close()  # the offline durable stays
    await eventually(lambda: _serverz_counts(web, (1, 3)), what="bravo's close")
    foo = await web.json("/streaming/channelsz?channel=foo&subs=1")
    assert [(s["client_id"], s["is_offline"]) for s in foo["subscriptions"]] == [
        ("bravo", True)]
    status, _, body = await web.raw("/streaming/clientsz?client=alpha")
    assert (status, body) == (404, b"Client alpha not found")


async def _serverz_counts(web: Http, expected: tuple[int, int]) -> bool:
    data = await web.json("/streaming/serverz")
    return (data["clients"], data["subscriptions"]) == expected


async def test_metrics_families_and_values(web, traffic):
    families, samples = await web.metrics()
    kinds = {"runnel_streaming_clients": "gauge", "runnel_streaming_channels": "gauge",
             "runnel_streaming_subscriptions": "gauge",
             "runnel_streaming_messages_in": "counter", "runnel_streaming_bytes_in": "counter",
             "runnel_streaming_messages_out": "counter",
             "runnel_streaming_bytes_out": "counter",
             "runnel_streaming_channel_messages": "gauge",
             "runnel_streaming_channel_bytes": "gauge",
             "runnel_streaming_channel_first_seq": "gauge",
             "runnel_streaming_channel_last_seq": "gauge",
             "runnel_streaming_subscription_pending": "gauge",
             "runnel_streaming_subscription_lag": "gauge"}
    for name, kind in kinds.items():
        assert families[name].type == kind and families[name].documentation, name
    assert "runnel_messages_in" in families  # the core families are still there

    plain = {("runnel_streaming_clients", ()): 3, ("runnel_streaming_channels", ()): 3,
             ("runnel_streaming_subscriptions", ()): 5,
             ("runnel_streaming_messages_in_total", ()): 5,
             ("runnel_streaming_bytes_in_total", ()): traffic.in_bytes,
             ("runnel_streaming_messages_out_total", ()): traffic.out_msgs,
             ("runnel_streaming_bytes_out_total", ()): traffic.out_bytes}
    for key, value in plain.items():
        assert samples[key] == value, key

    def channel(name, metric):
        return samples[(f"runnel_streaming_channel_{metric}", (("channel", name),))]
    assert [channel("foo", m) for m in ("messages", "bytes", "first_seq", "last_seq")] == [
        3, traffic.channel_bytes["foo"], 1, 3]
    assert [channel("empty", m) for m in ("messages", "bytes", "first_seq", "last_seq")] == [
        0, 0, 0, 0]

    per_sub = {}
    for (name, labels), value in samples.items():
        if name.startswith("runnel_streaming_subscription_"):
            labels = dict(labels)
            assert set(labels) == {"channel", "client_id", "sub_id", "durable_name",
                                   "queue_name"}
            key = (labels["channel"], labels["client_id"], labels["durable_name"],
                   labels["queue_name"], labels["sub_id"])
            per_sub.setdefault(key, {})[name.rsplit("_", 1)[1]] = value
    summary = sorted((key[:4], values["pending"], values["lag"])
                     for key, values in per_sub.items())
    assert summary == sorted([
        (("foo", "alpha", "", ""), 3, 0),
        (("foo", "alpha", "", ""), 2, 1),   # stalled at max_inflight 2: one behind
        (("foo", "bravo", "dur", ""), 0, 0),
        (("bar", "charlie", "", "grp"), 2, 0),
        (("bar", "charlie", "", "dq:workers"), 1, 0),
    ])
    assert len({key[4] for key in per_sub}) == 5  # one series per subscription id


async def test_subsz_counts_the_stan_service_subscriptions(web, traffic):
    """§5.6/§6.1: the seven STAN subjects and one ack-inbox subscription per online
    streaming subscription are router subscriptions of the server itself (cid 0)."""
    subsz = await web.json("/subsz?subs=1")
    assert subsz["num_subscriptions"] >= 7
    internal = {d["subject"] for d in subsz["subscriptions_list"] if d["cid"] == 0}
    stan_subjects = {f"_STAN.discover.{CLUSTER}", f"_STAN.discover.{CLUSTER}.pings",
                     f"_STAN.pub.{CLUSTER}.>", f"_STAN.sub.{CLUSTER}", f"_STAN.unsub.{CLUSTER}",
                     f"_STAN.subclose.{CLUSTER}", f"_STAN.close.{CLUSTER}"}
    assert stan_subjects <= internal
    online = {traffic.a_plain.ack_inbox, traffic.a_stalled.ack_inbox, traffic.c_grp.ack_inbox}
    offline = {traffic.b_dur.ack_inbox, traffic.c_dq.ack_inbox, traffic.c_empty.ack_inbox}
    assert online <= internal and not offline & internal


# -- limits from a configuration file -----------------------------------------------------

async def test_storez_per_channel_limits_with_inheritance(runnel_factory, tmp_path, http):
    conf = tmp_path / "stan.conf"
    conf.write_text("""
streaming {
  store_limits {
    max_channels: 10
    max_msgs: 10000
    max_age: "2h"
    channels {
      "foo.>": { max_msgs: 400, max_inactivity: "1h" }
      "foo.bar.>": { max_bytes: 2048 }
      "foo.bar.baz": { max_subs: 0 }
      "temp": { max_age: "90s" }
    }
  }
}
""")
    node = runnel_factory("-st", "file", "-dir", str(tmp_path / "d"), "-sc", str(conf))
    data = await Http(http, node.http_url).json("/streaming/storez")
    hour = 3600 * 10**9
    limits = data["limits"]
    assert list(limits) == list(DEFAULT_LIMITS) + ["channels"]
    assert {k: limits[k] for k in DEFAULT_LIMITS} == dict(
        DEFAULT_LIMITS, max_channels=10, max_msgs=10000, max_age=2 * hour)
    assert limits["channels"] == {
        "foo.>": {"max_msgs": 400, "max_bytes": 1_024_000_000, "max_age": 2 * hour,
                  "max_subscriptions": 1000, "max_inactivity": hour},
        "foo.bar.>": {"max_msgs": 400, "max_bytes": 2048, "max_age": 2 * hour,
                      "max_subscriptions": 1000, "max_inactivity": hour},
        "foo.bar.baz": {"max_msgs": 400, "max_bytes": 2048, "max_age": 2 * hour,
                        "max_subscriptions": 0, "max_inactivity": hour},
        "temp": {"max_msgs": 10000, "max_bytes": 1_024_000_000, "max_age": 90 * 10**9,
                 "max_subscriptions": 1000, "max_inactivity": 0},
    }
    assert list(limits["channels"]["temp"]) == ["max_msgs", "max_bytes", "max_age",
                                                 "max_subscriptions", "max_inactivity"]


def test_pattern_covers():
    from broker.monitor.streaming import pattern_covers
    assert pattern_covers("foo.>", "foo.bar.>") and pattern_covers("foo.>", "foo.*")
    assert pattern_covers("foo.*", "foo.bar") and pattern_covers(">", "a.b")
    assert not pattern_covers("foo.*", "foo.>") and not pattern_covers("foo.bar.>", "foo.>")
    assert not pattern_covers("foo.*", "foo.bar.baz") and not pattern_covers("foo", "foo.bar")
    assert not pattern_covers("foo.>", "foo")
