"""Core NATS semantics of an in-process NatsServer, driven through raw sockets.

Reference §1.1-§1.12: INFO first, CONNECT options (verbose, pedantic, echo, headers,
no_responders, protocol), delivery (plain, queue groups, auto-unsubscribe),
authentication, keep-alive, slow consumers and the connection limit. Every read
has a deadline; nothing sleeps blindly.
"""
from __future__ import annotations

import asyncio
import json

import nats
import nats.errors
import pytest

from broker.protocol.nats import writer
from broker.protocol.nats.events import OK, PING, PONG, Err, Info, Msg
from broker.server import Authenticator, NatsServer, ServerLimits
from tests.support.raw import QUIET, Raw

TIMEOUT_S = 3.0


async def eventually(predicate, timeout: float = TIMEOUT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def make_server():
    servers: list[NatsServer] = []

    async def start(auth: Authenticator | None = None, **limits) -> NatsServer:
        server = NatsServer("127.0.0.1", 0, limits=ServerLimits(**limits), auth=auth)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(make_server) -> NatsServer:
    return await make_server()


@pytest.fixture
async def connect():
    opened: list[Raw] = []

    async def open_(server: NatsServer, handshake: bool = True, **options) -> Raw:
        raw = await Raw.open(server.port, rcvbuf=options.pop("rcvbuf", None))
        opened.append(raw)
        if handshake:
            await raw.handshake(**options)
        return raw

    yield open_
    for raw in opened:
        raw.close()


# -- INFO and the handshake --


async def test_info_comes_first_with_the_reference_keys(server, connect):
    raw = await connect(server, handshake=False)
    info = await raw.next_event()
    assert raw.transcript.startswith(b"INFO {") and raw.transcript.endswith(b"}\r\n")
    options = info.options
    assert isinstance(options["server_id"], str) and len(options["server_id"]) == 56
    assert options["server_id"].isupper() and options["server_id"].isalnum()
    assert options["server_name"] == options["server_id"]
    assert isinstance(options["version"], str) and options["version"]
    assert options["proto"] == 1
    assert isinstance(options["go"], str)
    assert options["host"] == "127.0.0.1"
    assert options["port"] == server.port
    assert options["headers"] is True
    assert options["max_payload"] == 1048576
    for absent_when_false in ("auth_required", "tls_required", "tls_verify", "tls_available",
                              "jetstream"):
        assert absent_when_false not in options
    assert isinstance(options["client_id"], int)
    assert options["client_ip"] == "127.0.0.1"


async def test_info_reflects_limits_and_auth(make_server, connect):
    server = await make_server(auth=Authenticator(token="t"), max_payload=4096)
    raw = await connect(server, handshake=False)
    info = await raw.next_event()
    assert info.options["auth_required"] is True
    assert info.options["max_payload"] == 4096


async def test_each_connection_gets_its_own_client_id(server, connect):
    first = await connect(server)
    second = await connect(server)
    ids = {json.loads(raw.transcript.split(b"\r\n")[0][5:])["client_id"]
           for raw in (first, second)}
    assert len(ids) == 2


async def test_connect_then_ping_gets_pong(server, connect):
    raw = await connect(server, handshake=False)
    await raw.next_event()
    raw.send(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nPING\r\n')
    await raw.expect(PONG)
    assert raw.transcript.endswith(b"}\r\nPONG\r\n")


async def test_pub_and_sub_before_connect_are_accepted_without_auth(server, connect):
    raw = await connect(server, handshake=False)
    await raw.next_event()
    raw.send(b"SUB telnet 1\r\nPUB telnet 2\r\nhi\r\n")
    assert await raw.sync() == [Msg(b"telnet", b"1", None, b"hi")]
    assert raw.transcript.endswith(b"}\r\nMSG telnet 1 2\r\nhi\r\nPONG\r\n")


async def test_nats_py_client_round_trip(server):
    nc = await nats.connect(f"nats://127.0.0.1:{server.port}", allow_reconnect=False)
    try:
        sub = await nc.subscribe("greet.*")
        await nc.publish("greet.joe", b"hello", headers={"K": "v"})
        msg = await sub.next_msg(timeout=TIMEOUT_S)
        assert (msg.subject, msg.data, msg.headers) == ("greet.joe", b"hello", {"K": "v"})
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("nobody.home", b"?", timeout=TIMEOUT_S)
    finally:
        await nc.close()


# -- CONNECT options --


async def test_verbose_acks_connect_pub_sub_unsub(server, connect):
    listener = await connect(server)
    listener.send(b"SUB v 1\r\n")
    await listener.sync()
    raw = await connect(server, handshake=False)
    await raw.next_event()
    raw.send(b'CONNECT {"verbose":true,"pedantic":false}\r\n')
    await raw.expect(OK)
    raw.send(b"SUB x 1\r\n")
    await raw.expect(OK)
    raw.send(b"PUB v 2\r\nhi\r\n")
    await raw.expect(OK)
    raw.send(b"UNSUB 1\r\n")
    await raw.expect(OK)
    raw.send(b"UNSUB 42\r\n")  # unknown sid: still well-formed
    await raw.expect(OK)
    assert await raw.sync() == []  # PING gets PONG, no +OK
    assert await listener.messages(1) == [Msg(b"v", b"1", None, b"hi")]


async def test_verbose_defaults_to_true(server, connect):
    raw = await connect(server, handshake=False)
    await raw.next_event()
    raw.send(b"CONNECT {}\r\nSUB a 1\r\n")
    await raw.expect(OK, OK)


async def test_pedantic_invalid_publish_subject_is_reported_and_still_routed(server, connect):
    listener = await connect(server)
    listener.send(b"SUB foo.> 1\r\n")
    await listener.sync()
    pedantic = await connect(server, pedantic=True)
    pedantic.send(b"PUB foo.* 2\r\nhi\r\n")
    assert await pedantic.sync() == [Err("Invalid Publish Subject")]
    assert await listener.messages(1) == [Msg(b"foo.*", b"1", None, b"hi")]
    relaxed = await connect(server, pedantic=False)
    relaxed.send(b"PUB foo.> 2\r\nho\r\n")
    assert await relaxed.sync() == []
    assert await listener.messages(1) == [Msg(b"foo.>", b"1", None, b"ho")]


async def test_echo_false_skips_own_subscriptions(server, connect):
    quiet = await connect(server, echo=False)
    loud = await connect(server, echo=True)
    for raw in (quiet, loud):
        raw.send(b"SUB e 1\r\n")
        await raw.sync()
    quiet.send(b"PUB e 1\r\nq\r\n")
    assert await quiet.sync() == []
    assert await loud.messages(1) == [Msg(b"e", b"1", None, b"q")]
    loud.send(b"PUB e 1\r\nl\r\n")
    assert await loud.messages(1) == [Msg(b"e", b"1", None, b"l")]
    assert await quiet.messages(1) == [Msg(b"e", b"1", None, b"l")]


async def test_echo_false_in_a_queue_group_passes_to_another_member(server, connect):
    quiet = await connect(server, echo=False)
    other = await connect(server)
    for raw in (quiet, other):
        raw.send(b"SUB eq q 1\r\n")
        await raw.sync()
    quiet.send(b"".join(writer.pub(b"eq", None, b"%d" % i) for i in range(20)))
    assert await quiet.sync() == []
    assert len(await other.messages(20)) == 20


async def test_headers_are_stripped_for_subscribers_without_headers(server, connect):
    plain = await connect(server, headers=False)
    fancy = await connect(server, headers=True)
    for raw in (plain, fancy):
        raw.send(b"SUB h 1\r\n")
        await raw.sync()
    publisher = await connect(server, headers=True)
    block = b"NATS/1.0\r\nK: v\r\n\r\n"
    publisher.send(writer.hpub(b"h", b"rep", block, b"body"))
    await publisher.sync()
    assert await plain.messages(1) == [Msg(b"h", b"1", b"rep", b"body")]
    assert plain.transcript.endswith(b"MSG h 1 rep 4\r\nbody\r\n")
    assert await fancy.messages(1) == [Msg(b"h", b"1", b"rep", b"body", block)]
    assert fancy.transcript.endswith(b"HMSG h 1 rep 18 22\r\n" + block + b"body\r\n")


async def test_no_responders_exact_bytes(server, connect):
    raw = await connect(server, headers=True, no_responders=True)
    raw.send(b"SUB _INBOX.abc.* 9\r\n")
    await raw.sync()
    mark = len(raw.transcript)
    raw.send(b"PUB nobody.home _INBOX.abc.k3 2\r\nhi\r\n")
    event = await raw.next_event()
    assert event == Msg(b"_INBOX.abc.k3", b"9", None, b"", b"NATS/1.0 503\r\n\r\n")
    assert raw.transcript[mark:] == b"HMSG _INBOX.abc.k3 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"


async def test_no_responders_only_when_nobody_listens_and_only_when_asked(server, connect):
    asker = await connect(server, headers=True, no_responders=True)
    unasked = await connect(server, headers=True)
    for raw in (asker, unasked):
        raw.send(b"SUB _INBOX.r.* 1\r\n")
        await raw.sync()
    unasked.send(b"PUB nobody _INBOX.r.1 0\r\n\r\n")
    assert await unasked.sync() == []
    responder = await connect(server)
    responder.send(b"SUB service 5\r\n")
    await responder.sync()
    asker.send(b"PUB service _INBOX.r.2 1\r\n?\r\n")
    assert await responder.messages(1) == [Msg(b"service", b"5", b"_INBOX.r.2", b"?")]
    assert await asker.sync() == []
    asker.send(b"PUB service 1\r\n?\r\n")  # no reply subject: nothing to answer
    responder.events.clear()
    assert await asker.sync() == []


async def test_invalid_client_protocol_closes(server, connect):
    raw = await connect(server, handshake=False)
    await raw.next_event()
    raw.send(b'CONNECT {"verbose":false,"protocol":2}\r\nPING\r\n')
    assert await raw.until_closed() == [Err("invalid client protocol")]


@pytest.mark.parametrize("protocol", [0, 1])
async def test_client_protocols_zero_and_one_are_accepted(server, connect, protocol):
    await connect(server, protocol=protocol)


async def test_no_responders_requires_headers(server, connect):
    raw = await connect(server, handshake=False)
    await raw.next_event()
    raw.send(b'CONNECT {"verbose":false,"no_responders":true}\r\nPING\r\n')
    assert await raw.until_closed() == [Err("no responders requires headers support")]


# -- delivery --


async def test_two_sids_on_one_connection_get_two_msgs(server, connect):
    raw = await connect(server)
    raw.send(b"SUB foo.* 1\r\nSUB > 2\r\nSUB other 3\r\n")
    await raw.sync()
    raw.send(b"PUB foo.bar 1\r\nx\r\n")
    got = await raw.messages(2)
    assert sorted(m.sid for m in got) == [b"1", b"2"]
    assert all((m.subject, m.payload) == (b"foo.bar", b"x") for m in got)
    assert await raw.sync() == []


async def test_duplicate_sid_keeps_the_first_subscription(server, connect):
    raw = await connect(server)
    raw.send(b"SUB a 1\r\nSUB b 1\r\nPUB a 1\r\nx\r\nPUB b 1\r\ny\r\n")
    assert await raw.sync() == [Msg(b"a", b"1", None, b"x")]


async def test_unsub_with_max_auto_unsubscribes(server, connect):
    subscriber = await connect(server)
    subscriber.send(b"SUB auto 1\r\nUNSUB 1 3\r\n")
    await subscriber.sync()
    publisher = await connect(server)
    publisher.send(b"".join(writer.pub(b"auto", None, b"%d" % i) for i in range(5)))
    await publisher.sync()
    got = await subscriber.sync()
    assert [m.payload for m in got] == [b"0", b"1", b"2"]
    assert server.router.match(b"auto") == ((), ())


async def test_unsub_with_max_at_or_below_delivered_removes_at_once(server, connect):
    subscriber = await connect(server)
    subscriber.send(b"SUB now 1\r\nSUB later 2\r\n")
    await subscriber.sync()
    publisher = await connect(server)
    publisher.send(writer.pub(b"now", None, b"a") + writer.pub(b"now", None, b"b"))
    await publisher.sync()
    assert len(await subscriber.messages(2)) == 2
    subscriber.send(b"UNSUB 1 2\r\nUNSUB 2 0\r\n")
    await subscriber.sync()
    publisher.send(writer.pub(b"now", None, b"c") + writer.pub(b"later", None, b"d"))
    await publisher.sync()
    assert await subscriber.sync() == []
    assert server.router.count == 0


async def test_unsub_of_an_unknown_sid_is_ignored(server, connect):
    raw = await connect(server)
    raw.send(b"SUB k 1\r\nUNSUB 99\r\nUNSUB 98 5\r\nPUB k 0\r\n\r\n")
    assert await raw.sync() == [Msg(b"k", b"1", None, b"")]


async def test_unsub_removes_the_subscription(server, connect):
    raw = await connect(server)
    raw.send(b"SUB k 1\r\nUNSUB 1\r\nPUB k 0\r\n\r\n")
    assert await raw.sync() == []
    assert server.router.count == 0


async def test_queue_group_delivers_each_message_to_exactly_one_member(server, connect):
    members = [await connect(server) for _ in range(2)]
    for raw in members:
        raw.send(b"SUB work q 1\r\n")
        await raw.sync()
    watcher = await connect(server)
    watcher.send(b"SUB work 1\r\n")
    await watcher.sync()
    publisher = await connect(server)
    count = 200
    publisher.send(b"".join(writer.pub(b"work", None, b"%d" % i) for i in range(count)))
    await publisher.sync()
    received = [[m.payload for m in await raw.sync()] for raw in members]
    assert all(received), "both members get some messages"
    assert sorted(received[0] + received[1], key=int) == [b"%d" % i for i in range(count)]
    assert len(await watcher.messages(count)) == count  # plain subscribers get everything


async def test_queue_group_spans_subject_patterns(server, connect):
    star = await connect(server)
    star.send(b"SUB job.* q 1\r\n")
    await star.sync()
    literal = await connect(server)
    literal.send(b"SUB job.a q 7\r\n")
    await literal.sync()
    publisher = await connect(server)
    publisher.send(b"".join(writer.pub(b"job.a", None, b"%d" % i) for i in range(50)))
    publisher.send(writer.pub(b"job.b", None, b"only-star"))
    await publisher.sync()
    got_star = await star.sync()
    got_literal = await literal.sync()
    assert len(got_star) + len(got_literal) == 51
    assert got_star[-1].payload == b"only-star"
    assert all(m.subject == b"job.a" and m.sid == b"7" for m in got_literal)


# -- authentication --

USER_PASS = {"user": "derek", "pass": "s3cr3t"}


@pytest.mark.parametrize("auth, good, bad", [
    (Authenticator(user="derek", password="s3cr3t"), USER_PASS,
     [{"user": "derek", "pass": "nope"}, {"user": "other", "pass": "s3cr3t"}, {},
      {"user": "derek"}, {"auth_token": "s3cr3t"}]),
    (Authenticator(token="t0k3n"), {"auth_token": "t0k3n"},
     [{"auth_token": "wrong"}, {}, {"user": "t0k3n", "pass": "t0k3n"}]),
])
async def test_credentials(make_server, connect, auth, good, bad):
    server = await make_server(auth=auth)
    ok = await connect(server, **good)
    ok.send(b"SUB a 1\r\nPUB a 1\r\nx\r\n")
    assert await ok.sync() == [Msg(b"a", b"1", None, b"x")]
    for credentials in bad:
        raw = await connect(server, handshake=False)
        await raw.next_event()
        raw.send(writer.connect({**QUIET, **credentials}) + writer.PING)
        assert await raw.until_closed() == [Err("Authorization Violation")], credentials


async def test_nats_py_with_credentials(make_server):
    server = await make_server(auth=Authenticator(user="derek", password="s3cr3t"))
    url = f"nats://127.0.0.1:{server.port}"
    nc = await nats.connect(url, user="derek", password="s3cr3t", allow_reconnect=False)
    await nc.flush(timeout=TIMEOUT_S)
    await nc.close()
    with pytest.raises(Exception, match="(?i)authorization violation"):
        await nats.connect(url, user="derek", password="bad", allow_reconnect=False,
                           max_reconnect_attempts=0)


FIRST_OPS = {
    "pub": b"PUB a 1\r\nx\r\n",
    "sub": b"SUB a 1\r\n",
    "unsub": b"UNSUB 1\r\n",
    "ping": b"PING\r\n",
    "pong": b"PONG\r\n",
    "info": b"INFO {}\r\n",
    "ok": b"+OK\r\n",
    "err": b"-ERR 'x'\r\n",
    "unknown-verb": b"HELLO\r\n",
}


@pytest.mark.parametrize("first", FIRST_OPS.values(), ids=FIRST_OPS.keys())
async def test_first_op_must_be_connect_when_auth_is_required(make_server, connect, first):
    server = await make_server(auth=Authenticator(token="t0k3n"), auth_timeout_s=10)
    raw = await connect(server, handshake=False)
    await raw.next_event()
    raw.send(first)
    assert await raw.until_closed(timeout=0.5) == [Err("Authorization Violation")]


async def test_auth_timeout(make_server, connect):
    server = await make_server(auth=Authenticator(token="t0k3n"), auth_timeout_s=0.2)
    raw = await connect(server, handshake=False)
    await raw.next_event()
    assert await raw.until_closed(timeout=2.0) == [Err("Authentication Timeout")]


async def test_connect_in_time_cancels_the_auth_timeout(make_server, connect):
    server = await make_server(auth=Authenticator(token="t0k3n"), auth_timeout_s=0.2)
    raw = await connect(server, auth_token="t0k3n")
    with pytest.raises(TimeoutError):
        await raw.until_closed(timeout=0.6)  # three auth timeouts pass, nothing happens
    assert await raw.sync() == []


# -- keep-alive --


async def test_stale_connection(make_server, connect):
    server = await make_server(ping_interval_s=0.1, ping_max=2)
    raw = await connect(server, handshake=False)
    raw.auto_pong = False
    await raw.handshake()
    assert await raw.until_closed(timeout=2.0) == [PING, PING, Err("Stale Connection")]
    await eventually(lambda: not server.connections)


async def test_a_client_that_answers_pings_stays(make_server, connect):
    server = await make_server(ping_interval_s=0.1, ping_max=2)
    raw = await connect(server)
    deadline = asyncio.get_running_loop().time() + 3.0
    while raw.pings_seen < 4:
        await raw._fill(deadline)
    assert await raw.sync() == []
    assert len(server.connections) == 1


async def test_server_answers_client_pings(server, connect):
    raw = await connect(server)
    raw.send(b"PING\r\nPING\r\nping\r\n")
    await raw.expect(PONG, PONG, PONG)


# -- slow consumers and limits --


async def test_slow_consumer_is_cut_off_without_slowing_others(make_server, connect):
    server = await make_server(max_pending=1024 * 1024)
    stuck = await connect(server, rcvbuf=4096)
    stuck.send(b"SUB firehose 1\r\n")
    await stuck.sync()
    reader = await connect(server)
    reader.send(b"SUB firehose 1\r\n")
    await reader.sync()
    publisher = await connect(server)
    payload = b"z" * 16384
    count = 400  # 6.5 MB: far more than the stuck socket and max_pending can hold
    reading = asyncio.create_task(reader.messages(count, timeout=10.0))
    started = asyncio.get_running_loop().time()
    for _ in range(count // 50):
        publisher.send(b"".join(writer.pub(b"firehose", None, payload) for _ in range(50)))
        await publisher.writer.drain()
    assert await publisher.sync(timeout=10.0) == []
    received = await reading
    assert all(m.payload == payload for m in received)
    assert asyncio.get_running_loop().time() - started < 10.0
    assert server.slow_consumers == 1
    assert len(server.connections) == 2
    # Everything was routed to the reader while the stuck client read nothing: the server
    # did not hold the publisher back for it. The stuck client finds its connection gone
    # (2.9 sends no -ERR for this).
    with pytest.raises(EOFError):  # messages() would fail on anything but MSG, e.g. an -ERR
        while True:
            await stuck.messages(count, timeout=10.0)


async def test_max_connections(make_server, connect):
    server = await make_server(max_connections=2)
    first = await connect(server)
    await connect(server)
    refused = await connect(server, handshake=False)
    events = await refused.until_closed()
    assert events[-1] == Err("maximum connections exceeded")
    assert len(server.connections) == 2
    first.close()
    await eventually(lambda: len(server.connections) < 2)
    await connect(server)


async def test_max_connections_refusal_follows_info(make_server, connect):
    server = await make_server(max_connections=1)
    await connect(server)
    refused = await connect(server, handshake=False)
    events = await refused.until_closed()
    assert isinstance(events[0], Info)
    assert events[1:] == [Err("maximum connections exceeded")]


async def test_max_subscriptions(make_server, connect):
    server = await make_server(max_subscriptions=2)
    raw = await connect(server)
    raw.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n")
    assert await raw.sync() == [Err("maximum subscriptions exceeded")]
    raw.send(b"PUB a 0\r\n\r\n")
    assert await raw.sync() == [Msg(b"a", b"1", None, b"")]
