"""nats-py (the official Python client) as the judge of Runnel's core NATS protocol.

Every test runs a real Runnel node (``python -m broker``) on a loopback port and
talks to it with nats-py; where nats-py cannot express something (a CONNECT
without headers, exact bytes on the wire, an oversized publish) a raw socket does.

Ordering barriers are protocol round trips (see tests/support/clients.py):
after ``barrier(pub, sub)`` everything ``pub`` sent before has reached ``sub``,
so counting what ``sub`` holds is exact and absence is provable without sleeps.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from nats import errors as nats_errors

from tests.support.clients import (NatsPool, RawClient, RawError, barrier, take_pending,
                                   wait_until)

pytestmark = pytest.mark.timeout(60)

USER, PASSWORD, TOKEN = "alice", "s3cret-pw", "t0ken-xyz"


@pytest.fixture
def server(runnel_factory):
    """A Runnel node without monitoring, default options."""
    return runnel_factory(http=False)


@pytest.fixture
async def pool():
    pool = NatsPool()
    yield pool
    await pool.close_all()


# --------------------------------------------------------------------------
# publish / subscribe


async def test_pub_sub_delivers_everything_in_order(server, pool):
    sub_nc = await pool.connect(server.url, name="subscriber")
    pub_nc = await pool.connect(server.url, name="publisher")
    sub = await sub_nc.subscribe("orders.created")
    other = await sub_nc.subscribe("orders.deleted")
    await barrier(sub_nc)

    payloads = [f"order-{i}".encode() for i in range(200)] + [b"", b"\x00\r\n\xff binary"]
    for payload in payloads:
        await pub_nc.publish("orders.created", payload)
    await barrier(pub_nc, sub_nc)

    msgs = await take_pending(sub)
    assert [m.data for m in msgs] == payloads
    assert {m.subject for m in msgs} == {"orders.created"}
    assert all(not m.reply for m in msgs)
    assert other.pending_msgs == 0


async def test_concurrent_publishers_keep_their_own_order(server, pool):
    sub_nc = await pool.connect(server.url)
    sub = await sub_nc.subscribe("load.>", pending_msgs_limit=100_000)
    await barrier(sub_nc)
    publishers = [await pool.connect(server.url) for _ in range(4)]
    per_publisher = 3000

    async def publish_all(k, nc):
        for i in range(per_publisher):
            await nc.publish(f"load.{k}", b"%d" % i)

    await asyncio.gather(*(publish_all(k, nc) for k, nc in enumerate(publishers)))
    await barrier(*publishers, sub_nc, timeout=20)
    streams: dict[str, list[int]] = {}
    for msg in await take_pending(sub):
        streams.setdefault(msg.subject, []).append(int(msg.data))
    assert sorted(streams) == [f"load.{k}" for k in range(4)]
    for subject, seq in streams.items():
        assert seq == list(range(per_publisher)), f"{subject}: lost or reordered"


async def test_verbose_pedantic_client_and_utf8_subjects(server, pool):
    """nats-py in verbose mode (+OK after every op) and UTF-8 subject tokens."""
    nc = await pool.connect(server.url, verbose=True, pedantic=True)
    sub = await nc.subscribe("ünï.cödé.*")
    await barrier(nc)
    await nc.publish("ünï.cödé.x", "wörld".encode())
    await barrier(nc)
    (msg,) = await take_pending(sub)
    assert (msg.subject, msg.data) == ("ünï.cödé.x", "wörld".encode())
    await sub.unsubscribe()
    with pytest.raises(nats_errors.NoRespondersError):
        await nc.request("ünï.cödé.x", b"", timeout=5)
    assert nc.is_connected and not pool.events_of(nc).errors


async def test_echo_off_skips_own_subscriptions(server, pool):
    quiet = await pool.connect(server.url, no_echo=True)
    listener = await pool.connect(server.url)
    own = await quiet.subscribe("echo.test")
    theirs = await listener.subscribe("echo.test")
    await barrier(quiet, listener)
    await quiet.publish("echo.test", b"hello")
    await barrier(quiet, listener)
    assert own.pending_msgs == 0
    assert [m.data for m in await take_pending(theirs)] == [b"hello"]


async def test_wildcards_star_and_tail(server, pool):
    sub_nc = await pool.connect(server.url)
    pub_nc = await pool.connect(server.url)
    patterns = ["w", "w.*", "w.>", "w.*.c", "w.a.*", "*.a", ">", "w.a.>"]
    subs = {p: await sub_nc.subscribe(p) for p in patterns}
    await barrier(sub_nc)

    published = ["w", "w.a", "w.b", "w.a.b", "w.a.c", "w.b.c", "w.a.b.c", "x.a", "x"]
    for subject in published:
        await pub_nc.publish(subject, subject.encode())
    await barrier(pub_nc, sub_nc)

    got = {p: [m.subject for m in await take_pending(s)] for p, s in subs.items()}
    assert got["w"] == ["w"]
    assert got["w.*"] == ["w.a", "w.b"]
    # `>` matches one or more tokens: never the bare prefix itself.
    assert got["w.>"] == ["w.a", "w.b", "w.a.b", "w.a.c", "w.b.c", "w.a.b.c"]
    assert "w" not in got["w.>"]
    assert got["w.*.c"] == ["w.a.c", "w.b.c"]
    assert got["w.a.*"] == ["w.a.b", "w.a.c"]
    assert got["*.a"] == ["w.a", "x.a"]
    assert got[">"] == published
    assert got["w.a.>"] == ["w.a.b", "w.a.c", "w.a.b.c"]


async def test_one_connection_with_overlapping_subscriptions_gets_one_copy_per_sid(server, pool):
    nc = await pool.connect(server.url)
    a = await nc.subscribe("dup.x")
    b = await nc.subscribe("dup.*")
    c = await nc.subscribe(">")
    await barrier(nc)
    await nc.publish("dup.x", b"1")
    await barrier(nc)
    assert [len(await take_pending(s)) for s in (a, b, c)] == [1, 1, 1]


async def test_invalid_subscription_subject_is_refused_and_connection_stays(server):
    raw = await RawClient.connect(server.host, server.port)
    try:
        await raw.sub("foo.>.bar", 1)
        with pytest.raises(RawError) as info:
            await raw.ping()
        assert str(info.value) == "Invalid Subject"
        await raw.ping()  # still open
        await raw.sub("ok.>", 2)
        await raw.pub("ok.x", b"fine")
        await raw.ping()
        msg = await raw.next_msg()
        assert (msg.subject, msg.sid, msg.payload) == ("ok.x", "2", b"fine")
    finally:
        await raw.close()


# --------------------------------------------------------------------------
# queue groups


async def test_queue_groups_each_message_once_per_group(server, pool):
    count = 400
    members = {"workers": [], "auditors": []}
    for group, size in (("workers", 3), ("auditors", 2)):
        for _ in range(size):
            nc = await pool.connect(server.url)
            members[group].append((nc, await nc.subscribe("jobs.new", queue=group)))
    plain_nc = await pool.connect(server.url)
    plain = await plain_nc.subscribe("jobs.new")
    # A member on a different pattern still belongs to the same group.
    wild_nc = await pool.connect(server.url)
    members["workers"].append((wild_nc, await wild_nc.subscribe("jobs.*", queue="workers")))
    everyone = [nc for group in members.values() for nc, _ in group] + [plain_nc]
    await barrier(*everyone)

    pub_nc = await pool.connect(server.url)
    expected = [f"job-{i}".encode() for i in range(count)]
    for payload in expected:
        await pub_nc.publish("jobs.new", payload)
    await barrier(pub_nc, *everyone)

    assert [m.data for m in await take_pending(plain)] == expected
    for group, subs in members.items():
        per_member = [[m.data for m in await take_pending(sub)] for _, sub in subs]
        delivered = [d for got in per_member for d in got]
        assert len(delivered) == count, f"{group}: {len(delivered)} deliveries for {count}"
        assert sorted(delivered) == sorted(expected), f"{group}: duplicates or losses"
        assert all(per_member), f"{group}: some member got nothing: {list(map(len, per_member))}"
        # Each member sees its share in publish order.
        for got in per_member:
            assert got == sorted(got, key=expected.index)


# --------------------------------------------------------------------------
# request / reply


async def _responder(nc, subject: str, seen: list, queue: str = ""):
    async def answer(msg):
        seen.append(msg.reply)
        await msg.respond(b"re:" + msg.data)
    return await nc.subscribe(subject, queue=queue, cb=answer)


async def test_request_reply_new_style_muxed_inbox(server, pool):
    svc = await pool.connect(server.url)
    seen: list[str] = []
    await _responder(svc, "svc.echo", seen)
    await barrier(svc)

    client = await pool.connect(server.url)
    replies = await asyncio.gather(*(client.request("svc.echo", f"q{i}".encode(), timeout=5)
                                     for i in range(20)))
    assert [r.data for r in replies] == [f"re:q{i}".encode() for i in range(20)]
    # One wildcard inbox subscription serves every request: same prefix, own last token.
    prefixes = {reply.rsplit(".", 1)[0] for reply in seen}
    assert len(prefixes) == 1 and next(iter(prefixes)).startswith("_INBOX.")
    assert len(set(seen)) == 20


async def test_request_reply_old_style_per_request_inbox(server, pool):
    svc = await pool.connect(server.url)
    seen: list[str] = []
    await _responder(svc, "svc.old", seen)
    await barrier(svc)

    client = await pool.connect(server.url)
    for i in range(5):
        reply = await client.request("svc.old", f"o{i}".encode(), timeout=5, old_style=True)
        assert reply.data == f"re:o{i}".encode()
    assert len(set(seen)) == 5
    assert all(r.startswith("_INBOX.") and r.count(".") == 1 for r in seen)


async def test_old_style_inbox_auto_unsubscribes_after_one_reply(server, pool):
    """The raw steps of an old-style request: SUB inbox, UNSUB sid 1, PUB with reply."""
    svc = await pool.connect(server.url)
    await _responder(svc, "svc.raw", [])
    await barrier(svc)
    raw = await RawClient.connect(server.host, server.port)
    try:
        await raw.sub("_INBOX.rawreq", 7)
        await raw.send(b"UNSUB 7 1\r\n")
        await raw.pub("svc.raw", b"ping", reply="_INBOX.rawreq")
        msg = await raw.next_msg()
        assert (msg.subject, msg.sid, msg.payload) == ("_INBOX.rawreq", "7", b"re:ping")
        # The subscription is gone: a second message to the inbox is not delivered.
        await svc.publish("_INBOX.rawreq", b"late")
        await barrier(svc)
        await raw.ping()
        assert raw.msgs == []
    finally:
        await raw.close()


async def test_no_responders_fails_fast(server, pool):
    nc = await pool.connect(server.url)
    for old_style in (False, True):
        started = time.monotonic()
        with pytest.raises(nats_errors.NoRespondersError):
            await nc.request("nobody.home", b"?", timeout=5, old_style=old_style)
        assert time.monotonic() - started < 1.0, "no-responders must not wait for the timeout"
    # A responder that appears later is reached normally.
    svc = await pool.connect(server.url)
    await _responder(svc, "nobody.home", [])
    await barrier(svc)
    assert (await nc.request("nobody.home", b"x", timeout=5)).data == b"re:x"


async def test_no_responders_exact_status_message(server):
    raw = await RawClient.connect(server.host, server.port, headers=True, no_responders=True)
    try:
        await raw.sub("_INBOX.nr.*", 1)
        await raw.pub("nobody.there", b"", reply="_INBOX.nr.abc")
        await raw.ping()
        msg = await raw.next_msg()
        assert msg.op == "HMSG"
        assert (msg.subject, msg.sid, msg.reply) == ("_INBOX.nr.abc", "1", None)
        assert (msg.hdr_len, msg.total_len) == (16, 16)
        assert msg.headers == b"NATS/1.0 503\r\n\r\n" and msg.payload == b""
    finally:
        await raw.close()


# --------------------------------------------------------------------------
# headers


async def test_headers_round_trip(server, pool):
    sub_nc = await pool.connect(server.url)
    pub_nc = await pool.connect(server.url)
    sub = await sub_nc.subscribe("hdr.test")
    await barrier(sub_nc)

    headers = {"X-Trace-Id": "abc-123", "content-type": "application/json",
               "X-Unicode": "héllo wörld", "X-Empty-Body": "yes"}
    await pub_nc.publish("hdr.test", b'{"a":1}', headers=headers)
    await pub_nc.publish("hdr.test", b"", headers={"Only": "headers"})
    await pub_nc.publish("hdr.test", b"no headers")
    await barrier(pub_nc, sub_nc)

    first, second, third = await take_pending(sub)
    assert first.data == b'{"a":1}' and first.headers == headers  # names keep their case
    assert second.data == b"" and second.headers == {"Only": "headers"}
    assert third.data == b"no headers" and not third.headers


async def test_multi_valued_headers_are_relayed_byte_exact(server, pool):
    """Repeated names reach a raw subscriber unchanged; nats-py keeps the last value."""
    block = (b"NATS/1.0\r\nX-Multi: one\r\nX-Multi: two\r\nx-multi: lower\r\n"
             b"X-Other: z\r\nX-Multi: three\r\n\r\n")
    raw_sub = await RawClient.connect(server.host, server.port, headers=True)
    raw_pub = await RawClient.connect(server.host, server.port, headers=True)
    py_nc = await pool.connect(server.url)
    try:
        py_sub = await py_nc.subscribe("hdr.multi")
        await raw_sub.sub("hdr.multi", 3)
        await raw_sub.ping()
        await barrier(py_nc)
        await raw_pub.hpub("hdr.multi", block, b"body", reply="reply.here")
        await raw_pub.ping()
        await raw_sub.ping()
        msg = await raw_sub.next_msg()
        assert msg.op == "HMSG" and msg.headers == block and msg.payload == b"body"
        assert msg.reply == "reply.here"
        await barrier(py_nc)
        (py_msg,) = await take_pending(py_sub)
        assert py_msg.data == b"body" and py_msg.reply == "reply.here"
        assert py_msg.headers == {"X-Multi": "three", "x-multi": "lower", "X-Other": "z"}
    finally:
        await raw_sub.close()
        await raw_pub.close()


async def test_headers_stripped_for_subscriber_without_headers(server, pool):
    """A client that did not negotiate headers gets a plain MSG with only the payload.

    nats-py always asks for headers, so that subscriber is a raw socket.
    """
    raw = await RawClient.connect(server.host, server.port, headers=False)
    try:
        await raw.sub("hdr.legacy", 1)
        await raw.ping()
        pub_nc = await pool.connect(server.url)
        await pub_nc.publish("hdr.legacy", b"payload only", headers={"X-Drop": "me"})
        await pub_nc.publish("hdr.legacy", b"", headers={"X-Only": "headers"})
        await barrier(pub_nc)
        await raw.ping()
        first = await raw.next_msg()
        second = await raw.next_msg()
        assert (first.op, first.headers, first.payload) == ("MSG", None, b"payload only")
        assert (second.op, second.headers, second.payload) == ("MSG", None, b"")
    finally:
        await raw.close()


# --------------------------------------------------------------------------
# authentication


async def _auth_failure(url: str, **credentials) -> str:
    """Connect with bad credentials; nats-py must refuse, with the server's text."""
    pool = NatsPool()
    try:
        started = time.monotonic()
        with pytest.raises(nats_errors.Error) as info:
            await pool.connect(url, **credentials)
        assert time.monotonic() - started < 2.0
        return str(info.value)
    finally:
        await pool.close_all()


async def test_auth_user_password(runnel_factory, pool):
    node = runnel_factory("--user", USER, "--pass", PASSWORD, http=False)
    good = await pool.connect(node.url, user=USER, password=PASSWORD)
    in_url = await pool.connect(f"nats://{USER}:{PASSWORD}@{node.host}:{node.port}")
    sub = await good.subscribe("auth.ok")
    await barrier(good)
    await in_url.publish("auth.ok", b"authorised")
    await barrier(in_url, good)
    assert [m.data for m in await take_pending(sub)] == [b"authorised"]

    for bad in ({"user": USER, "password": "wrong"}, {"user": "mallory", "password": PASSWORD},
                {}, {"token": PASSWORD}):
        text = await _auth_failure(node.url, **bad)
        assert "Authorization Violation" in text, (bad, text)


async def test_auth_token(runnel_factory, pool):
    node = runnel_factory("--auth", TOKEN, http=False)
    good = await pool.connect(node.url, token=TOKEN)
    in_url = await pool.connect(f"nats://{TOKEN}@{node.host}:{node.port}")
    assert good.is_connected and in_url.is_connected
    await barrier(good, in_url)

    for bad in ({"token": "nope"}, {}, {"user": USER, "password": TOKEN}):
        text = await _auth_failure(node.url, **bad)
        assert "Authorization Violation" in text, (bad, text)


async def test_auth_violation_text_on_the_wire(runnel_factory):
    node = runnel_factory("--auth", TOKEN, http=False)
    raw = await RawClient.connect(node.host, node.port, handshake=False)
    try:
        assert raw.info.get("auth_required") is True
        await raw.send(b'CONNECT {"verbose":false,"auth_token":"bad"}\r\nPING\r\n')
        assert await raw.expect_error_and_close() == "Authorization Violation"
    finally:
        await raw.close()


# --------------------------------------------------------------------------
# payload limits


async def test_payload_at_the_limit_and_over_it(server, pool):
    sub_nc = await pool.connect(server.url)
    pub_nc = await pool.connect(server.url)
    assert pub_nc.max_payload == 1024 * 1024
    sub = await sub_nc.subscribe("big.blob")
    await barrier(sub_nc)

    at_limit = bytes(range(256)) * (pub_nc.max_payload // 256)
    assert len(at_limit) == 1024 * 1024
    await pub_nc.publish("big.blob", at_limit)
    await barrier(pub_nc, sub_nc)
    (msg,) = await take_pending(sub)
    assert msg.data == at_limit

    with pytest.raises(nats_errors.MaxPayloadError):
        await pub_nc.publish("big.blob", at_limit + b"x")
    # The refusal happened in the client; the connection is still usable.
    await pub_nc.publish("big.blob", b"small")
    await barrier(pub_nc, sub_nc)
    assert [m.data for m in await take_pending(sub)] == [b"small"]


async def test_server_rejects_oversized_publish(server):
    raw = await RawClient.connect(server.host, server.port)
    try:
        size = raw.info["max_payload"] + 1
        await raw.send(f"PUB big.raw {size}\r\n".encode())
        assert await raw.expect_error_and_close() == "Maximum Payload Violation"
    finally:
        await raw.close()


async def test_server_checks_headers_plus_payload_against_max_payload(server):
    raw = await RawClient.connect(server.host, server.port, headers=True)
    try:
        block = b"NATS/1.0\r\nX-Pad: " + b"p" * 100 + b"\r\n\r\n"
        payload_size = raw.info["max_payload"] - 10  # fits alone, not with the headers
        total = len(block) + payload_size
        await raw.send(f"HPUB big.hdr {len(block)} {total}\r\n".encode())
        assert await raw.expect_error_and_close() == "Maximum Payload Violation"
    finally:
        await raw.close()


# --------------------------------------------------------------------------
# ping / flush / drain


async def test_flush_and_rtt(server, pool):
    nc = await pool.connect(server.url)
    for _ in range(3):
        await nc.flush(timeout=2)
    rtt = await nc.rtt(timeout=2)
    assert 0 < rtt < 1.0
    raw = await RawClient.connect(server.host, server.port, handshake=False)
    try:
        # Without auth, PING before CONNECT is answered too.
        await raw.ping()
        await raw.send(b'CONNECT {"verbose":false}\r\n')
        await raw.ping()
    finally:
        await raw.close()


async def test_drain_connection_processes_everything_then_closes(server, pool):
    sub_nc = await pool.connect(server.url)
    pub_nc = await pool.connect(server.url)
    handled: list[bytes] = []

    async def slow(msg):
        await asyncio.sleep(0)  # yield per message, so some are still queued at drain time
        handled.append(msg.data)

    await sub_nc.subscribe("drain.me", cb=slow)
    await barrier(sub_nc)
    expected = [b"%d" % i for i in range(300)]
    for payload in expected:
        await pub_nc.publish("drain.me", payload)
    await barrier(pub_nc)

    await asyncio.wait_for(sub_nc.drain(), 10)
    assert handled == expected
    assert sub_nc.is_closed
    # The server forgot the drained interest: a request there finds no responders.
    with pytest.raises(nats_errors.NoRespondersError):
        await pub_nc.request("drain.me", b"anyone?", timeout=5)


async def test_drain_one_subscription(server, pool):
    nc = await pool.connect(server.url)
    got: list[bytes] = []

    async def cb(msg):
        got.append(msg.data)

    sub = await nc.subscribe("drain.one", cb=cb)
    keep = await nc.subscribe("drain.one")
    await barrier(nc)
    for i in range(50):
        await nc.publish("drain.one", b"%d" % i)
    await asyncio.wait_for(sub.drain(), 10)
    assert len(got) == 50
    await nc.publish("drain.one", b"late")
    await barrier(nc)
    assert len(got) == 50
    assert len(await take_pending(keep)) == 51  # the other subscription is untouched
    assert nc.is_connected


# --------------------------------------------------------------------------
# reconnect


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_reconnect_after_server_restart(runnel_factory, pool, how):
    """SIGTERM (graceful) or SIGKILL (crash), then a new process on the same port."""
    node = runnel_factory(http=False)
    options = dict(allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                   connect_timeout=1)
    sub_nc = await pool.connect(node.url, name="sub", **options)
    pub_nc = await pool.connect(node.url, name="pub", **options)
    got: list[bytes] = []

    async def cb(msg):
        got.append(msg.data)

    await sub_nc.subscribe("restart.topic", cb=cb)
    queue_got: list[bytes] = []

    async def qcb(msg):
        queue_got.append(msg.data)

    await sub_nc.subscribe("restart.q", queue="grp", cb=qcb)
    await barrier(sub_nc)
    await pub_nc.publish("restart.topic", b"before")
    await barrier(pub_nc, sub_nc)
    await wait_until(lambda: got == [b"before"], what="the message before the restart")

    await asyncio.to_thread(node.stop if how == "stop" else node.kill)
    assert not node.alive()
    for nc in (sub_nc, pub_nc):
        await asyncio.wait_for(pool.events_of(nc).disconnected.wait(), 10)
    await asyncio.to_thread(node.start)
    for nc in (sub_nc, pub_nc):
        await asyncio.wait_for(pool.events_of(nc).reconnected.wait(), 15)
        assert nc.is_connected

    # The subscriptions were re-sent by nats-py on reconnect; a flush orders them
    # before what the publisher sends next.
    await barrier(sub_nc)
    for i in range(20):
        await pub_nc.publish("restart.topic", b"after-%d" % i)
        await pub_nc.publish("restart.q", b"q-%d" % i)
    await barrier(pub_nc, sub_nc)
    await wait_until(lambda: len(got) == 21 and len(queue_got) == 20, timeout=5,
                     what="messages after the restart")
    assert got == [b"before"] + [b"after-%d" % i for i in range(20)]
    assert queue_got == [b"q-%d" % i for i in range(20)]
