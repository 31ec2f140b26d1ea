"""Client PINGs, connection loss and transparent reconnection.

Against real Runnel nodes: a FILE-store node killed and restarted on the same port (the
session continues: PINGs answered again, the subscription keeps receiving and its acks
count), a node that stays down (PING failure), a MEMORY-store node restarted (the server
no longer knows the client: its own PING error text ends the session).

Against a fake STAN server (nats-py answering on a plain nats-server) for what a healthy
Runnel never does: a PubAck that never comes, a subscribe request nobody answers, a
server without PINGs or subCloseRequests (an old protocol-0 server).
"""
from __future__ import annotations

import asyncio
import time
import uuid

import nats
import pytest

from broker import client
from broker.protocol.stan import (ConnectRequest, ConnectResponse, SubscriptionResponse,
                                  UnsubscribeRequest, errors as texts)
from tests.stan.conftest import CLUSTER, restart, wait_stan_ready
from tests.support.procs import nats_server_process, runnel_process

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0
FAST = dict(ping_interval=0.1, nats_options={"reconnect_time_wait": 0.1})


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def until(condition, timeout: float = WAIT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def nodes(tmp_path):
    """``await nodes(label, *flags)``: a node of this test (FILE store unless flags say
    otherwise), serving STAN; killed at the end even if starting it failed."""
    made: list = []

    async def start(label: str, *flags: str, file_store: bool = True):
        if file_store:
            flags = ("-st", "file", "-dir", str(tmp_path / f"{label}-data"), *flags)
        node = runnel_process(tmp_path, *flags, name=label)
        made.append(node)
        await asyncio.to_thread(lambda: wait_stan_ready(node.start()))
        return node

    yield start
    for node in made:
        node.kill()


class Lost:
    """An on_connection_lost callback that records its calls."""

    def __init__(self):
        self.calls: list[tuple[client.Connection, client.StanError]] = []

    def __call__(self, conn: client.Connection, error: client.StanError) -> None:
        self.calls.append((conn, error))


# -- a node restarted on the same port ------------------------------------------------------

async def test_a_restart_of_the_node_is_transparent(nodes):
    node = await nodes("restart")
    lost = Lost()
    reconnects: list[str] = []

    async def reconnected() -> None:      # a nats-py callback of the user's: still called
        reconnects.append("reconnected")

    conn = await client.connect(CLUSTER, uid("survivor"), servers=[node.url],
                                ping_interval=0.1, ping_max_out=100, on_connection_lost=lost,
                                nats_options={"reconnect_time_wait": 0.1,
                                              "reconnected_cb": reconnected})
    try:
        channel = uid("ch")
        got: list[client.Msg] = []
        await conn.subscribe(channel, got.append, ack_wait=1)
        await conn.publish(channel, b"before-1")
        await conn.publish(channel, b"before-2")
        await until(lambda: len(got) == 2, what="2 messages")
        await asyncio.sleep(0.2)   # the acks reach the node

        await asyncio.to_thread(node.kill)
        await until(lambda: not conn.nats_conn.is_connected, what="the disconnect")
        await until(lambda: conn.pings_outstanding >= 2, what="unanswered PINGs")
        await asyncio.to_thread(restart, node)
        await until(lambda: conn.nats_conn.is_connected, what="the reconnect")
        await until(lambda: conn.pings_outstanding == 0, what="an answered PING")

        await conn.publish(channel, b"after-1")
        await conn.publish(channel, b"after-2")
        await until(lambda: len(got) == 4, what="the messages published after the restart")
        assert [m.data for m in got] == [b"before-1", b"before-2", b"after-1", b"after-2"]
        assert [m.sequence for m in got] == [1, 2, 3, 4]
        # the acks sent after the restart reach the right ack inbox: no redelivery
        await asyncio.sleep(1.5)
        assert len(got) == 4, [(m.sequence, m.redelivered) for m in got]
        assert not lost.calls and not conn.is_closed and reconnects == ["reconnected"]
        await until(lambda: conn.pings_outstanding <= 1, what="PINGs still answered")
    finally:
        await conn.close()


async def test_a_node_that_stays_down_ends_the_session_by_ping_failure(nodes):
    node = await nodes("gone")
    lost = Lost()
    conn = await client.connect(CLUSTER, uid("orphan"), servers=[node.url], ping_max_out=3,
                                on_connection_lost=lost, **FAST)
    unbuffered = await client.connect(CLUSTER, uid("strict"), servers=[node.url],
                                      nats_options={"pending_size": 0})   # as stan.go
    pending = asyncio.get_running_loop().create_future()
    await asyncio.to_thread(node.kill)
    await conn.publish_async("ch", b"never acked", lambda g, e: pending.set_result(e))
    await until(lambda: not unbuffered.nats_conn.is_connected, what="the disconnect")
    with pytest.raises(client.NatsError):              # not buffered: fails at once
        await unbuffered.publish("ch", b"x")
    assert unbuffered.pub_acks_pending == 0
    with pytest.raises(client.StanError):              # the Close cannot be sent either
        await unbuffered.close()
    assert unbuffered.is_closed and unbuffered.nats_conn.is_closed
    started = time.monotonic()
    await until(lambda: lost.calls, what="the connection-lost callback")
    assert time.monotonic() - started < 3
    [(who, error)] = lost.calls
    assert who is conn and isinstance(error, client.ConnectionLost)
    assert error.text == texts.PING_FAILURE
    assert conn.is_closed
    assert isinstance(await asyncio.wait_for(pending, 1), client.ConnectionClosed)
    await until(lambda: conn.nats_conn.is_closed, what="the NATS connection to be closed")
    with pytest.raises(client.ConnectionClosed) as raised:
        await conn.publish("ch", b"x")
    assert texts.PING_FAILURE in str(raised.value)
    await conn.close()   # nothing left to do, and no error


async def test_a_memory_store_restart_ends_the_session_with_the_server_s_ping_error(nodes):
    node = await nodes("memory", file_store=False)   # default store: MEMORY
    lost = Lost()
    conn = await client.connect(CLUSTER, uid("forgotten"), servers=[node.url],
                                ping_max_out=100, on_connection_lost=lost, **FAST)
    await asyncio.to_thread(node.kill)
    await asyncio.to_thread(restart, node)
    await until(lambda: lost.calls, what="the connection-lost callback")
    [(_, error)] = lost.calls
    assert str(error) == texts.CLIENT_REPLACED       # verbatim from the PingResponse
    assert conn.is_closed


# -- a fake STAN server ------------------------------------------------------------------------

class FakeStan:
    """Answers ConnectRequests on a plain nats-server; everything else is configurable
    silence. Records what arrives on each subject."""

    def __init__(self, nc, protocol_one: bool = True, answer_subscribe: bool = False):
        self.nc = nc
        self.protocol_one = protocol_one
        self.answer_subscribe = answer_subscribe
        self.seen: dict[str, list] = {}

    @classmethod
    async def start(cls, url: str, **kw) -> "FakeStan":
        fake = cls(await nats.connect(url), **kw)
        for kind in ("discover", "pub", "sub", "unsub", "subclose", "close", "pings"):
            await fake.nc.subscribe(fake.subject(kind), cb=fake._handler(kind))
        await fake.nc.flush()
        return fake

    @staticmethod
    def subject(kind: str) -> str:
        return {"discover": f"_STAN.discover.{CLUSTER}", "pings": f"_STAN.discover.{CLUSTER}.pings",
                "pub": f"_STAN.pub.{CLUSTER}.>"}.get(kind, f"_STAN.{kind}.{CLUSTER}")

    def _handler(self, kind: str):
        async def handle(msg) -> None:
            self.seen.setdefault(kind, []).append(msg.data)
            if kind == "discover":
                request = ConnectRequest.FromString(msg.data)
                response = ConnectResponse(pubPrefix=f"_STAN.pub.{CLUSTER}",
                                           subRequests=self.subject("sub"),
                                           unsubRequests=self.subject("unsub"),
                                           closeRequests=self.subject("close"))
                if self.protocol_one:
                    response.subCloseRequests = self.subject("subclose")
                    response.pingRequests = self.subject("pings")
                    response.pingInterval = request.pingInterval
                    response.pingMaxOut = request.pingMaxOut
                    response.protocol = 1
                await msg.respond(response.SerializeToString())
            elif kind == "sub" and self.answer_subscribe:
                await msg.respond(SubscriptionResponse(ackInbox="_INBOX.fake").SerializeToString())
            elif kind in ("close", "pings"):
                await msg.respond(b"")                       # OK is zero bytes
        return handle


@pytest.fixture
async def fake_node(tmp_path):
    server = nats_server_process(tmp_path).start()
    yield server
    server.kill()


async def test_a_pub_ack_that_never_comes_is_a_publish_ack_timeout(fake_node):
    fake = await FakeStan.start(fake_node.url)
    conn = await client.connect(CLUSTER, uid("c"), servers=[fake_node.url], pub_ack_wait=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(client.PublishAckTimeout) as raised:
            await conn.publish("foo", b"x")
        assert 0.25 < time.monotonic() - started < 2
        assert raised.value.text == texts.PUBLISH_ACK_TIMEOUT
        assert conn.pub_acks_pending == 0 and len(fake.seen["pub"]) == 1
    finally:
        await conn.close()
        await fake.nc.close()


async def test_an_unanswered_subscribe_times_out_and_closes_by_delivery_inbox(fake_node):
    fake = await FakeStan.start(fake_node.url)
    conn = await client.connect(CLUSTER, uid("c"), servers=[fake_node.url], connect_timeout=0.3)
    try:
        with pytest.raises(client.RequestTimeout) as raised:
            await conn.subscribe("foo", lambda m: None)
        assert raised.value.text == texts.SUBSCRIBE_REQUEST_TIMEOUT
        assert isinstance(raised.value, TimeoutError)
        await until(lambda: fake.seen.get("subclose"), what="the sub-close sent after the timeout")
        closing = UnsubscribeRequest.FromString(fake.seen["subclose"][0])
        assert closing.subject == "foo" and closing.inbox.startswith("_INBOX.")
        assert conn.subscriptions == []
    finally:
        await conn.close()
        await fake.nc.close()


async def test_pings_reach_the_server_and_replies_reset_the_count(fake_node):
    fake = await FakeStan.start(fake_node.url)
    lost = Lost()
    conn = await client.connect(CLUSTER, uid("c"), servers=[fake_node.url], ping_max_out=2,
                                on_connection_lost=lost, ping_interval=0.05)
    try:
        await until(lambda: len(fake.seen.get("pings", [])) >= 5, what="5 PINGs")
        assert conn.ping_interval == 0.05 and not lost.calls
        request = ConnectRequest.FromString(fake.seen["discover"][0])
        assert (request.protocol, request.pingInterval, request.pingMaxOut) == (1, -50, 2)
        assert request.heartbeatInbox and len(request.connID) == 22
    finally:
        await conn.close()
        await fake.nc.close()


async def test_an_old_protocol_zero_server_gets_no_pings_and_no_sub_close(fake_node):
    fake = await FakeStan.start(fake_node.url, protocol_one=False, answer_subscribe=True)
    conn = await client.connect(CLUSTER, uid("c"), servers=[fake_node.url], ping_interval=0.05)
    try:
        assert conn.ping_interval == 0
        sub = await conn.subscribe("foo", lambda m: None)
        with pytest.raises(client.NotSupportedByServer) as raised:
            await sub.close()
        assert raised.value.text == texts.NOT_SUPPORTED_BY_SERVER
        await asyncio.sleep(0.2)
        assert "pings" not in fake.seen
    finally:
        await conn.close()
        await fake.nc.close()


async def test_a_replaced_client_is_told_by_its_next_ping(nodes):
    """§2.4 and §2.15 through the client: a session whose heartbeat inbox has gone silent
    is replaced by a new connect with its client ID; the old one's next PING is answered
    with the server's error and ends that session with that text."""
    node = await nodes("replaced")
    client_id = uid("twice")
    lost = Lost()
    old = await client.connect(CLUSTER, client_id, servers=[node.url], ping_interval=0.2,
                               on_connection_lost=lost)
    hb_inbox_sub = old._nats_subs[0]           # stop answering server heartbeats
    await hb_inbox_sub.unsubscribe()
    new = await client.connect(CLUSTER, client_id, servers=[node.url])
    try:
        await until(lambda: lost.calls, what="the old session to be told")
        [(who, error)] = lost.calls
        assert who is old and str(error) == texts.CLIENT_REPLACED
        await new.publish(uid("ch"), b"the new session works")
    finally:
        await new.close()
