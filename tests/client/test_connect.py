"""Connecting and closing with the Runnel client, against real nodes; and the bad
input of the issue: a server that is down, a plain nats-server, a wrong cluster ID, an
invalid or duplicate client ID. Every failure is bounded in time and names what failed."""
from __future__ import annotations

import asyncio
import time
import uuid

import nats
import pytest

from broker import client
from broker.protocol.stan import errors as texts
from tests.stan.conftest import CLUSTER, start_stan_node
from tests.support.procs import free_port, nats_server_process

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    started = start_stan_node(tmp_path_factory.mktemp("client-connect"), label="connect")
    yield started
    started.kill()


@pytest.fixture(scope="module")
def plain_nats(tmp_path_factory):
    """The reference nats-server: core NATS, no STAN service behind it."""
    server = nats_server_process(tmp_path_factory.mktemp("plain-nats")).start()
    yield server
    server.kill()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_connect_publish_close_and_everything_after_close_fails(node):
    conn = await client.connect(CLUSTER, uid("c"), servers=[node.url])
    assert not conn.is_closed and conn.nats_conn.is_connected
    assert conn.ping_interval == client.DEFAULT_PING_INTERVAL   # the server echoed ours
    assert len(conn.conn_id) == 22
    guid = await conn.publish(uid("ch"), b"hello")
    assert guid and conn.pub_acks_pending == 0
    await conn.close()
    assert conn.is_closed and conn.nats_conn.is_closed   # the session made it: closed too
    await conn.close()                                   # a second close does nothing
    with pytest.raises(client.ConnectionClosed) as raised:
        await conn.publish("foo", b"x")
    assert str(raised.value) == texts.CONNECTION_CLOSED
    with pytest.raises(client.ConnectionClosed):
        await conn.subscribe("foo", lambda m: None)


async def test_close_frees_the_client_id_and_async_with_closes(node):
    client_id = uid("again")
    async with await client.connect(CLUSTER, client_id, servers=node.url) as conn:
        await conn.publish(uid("ch"), "text is sent as UTF-8")
    assert conn.is_closed
    second = await client.connect(CLUSTER, client_id, servers=node.url)
    await second.close()


async def test_a_live_client_id_cannot_be_taken_twice(node):
    client_id = uid("dup")
    first = await client.connect(CLUSTER, client_id, servers=[node.url])
    try:
        with pytest.raises(client.ServerError) as raised:
            await client.connect(CLUSTER, client_id, servers=[node.url])
        assert str(raised.value) == texts.CLIENT_ID_ALREADY_REGISTERED
        assert isinstance(raised.value, client.ConnectRefused)
        assert isinstance(raised.value, client.ConnectError)
        await first.publish(uid("ch"), b"the first one still works")
    finally:
        await first.close()


@pytest.mark.parametrize("client_id", ["has.dot", "has space", "colon:no", ""])
async def test_an_invalid_client_id_surfaces_the_server_s_text(node, client_id):
    with pytest.raises(client.ServerError) as raised:
        await client.connect(CLUSTER, client_id, servers=[node.url])
    assert str(raised.value) == texts.INVALID_CLIENT_ID
    assert raised.value.text == texts.INVALID_CLIENT_ID


async def test_a_wrong_cluster_id_is_a_connect_request_timeout_naming_it(node):
    started = time.monotonic()
    with pytest.raises(client.ConnectRequestTimeout) as raised:
        await client.connect("no-such-cluster", uid("c"), servers=[node.url])
    assert time.monotonic() - started < 3
    assert raised.value.text == texts.CONNECT_REQUEST_TIMEOUT
    assert "no-such-cluster" in str(raised.value)
    assert isinstance(raised.value, TimeoutError)


async def test_a_plain_nats_server_is_a_connect_request_timeout_naming_the_cluster(plain_nats):
    started = time.monotonic()
    with pytest.raises(client.ConnectRequestTimeout) as raised:
        await client.connect(CLUSTER, uid("c"), servers=[plain_nats.url])
    assert time.monotonic() - started < 3
    assert str(raised.value).startswith(texts.CONNECT_REQUEST_TIMEOUT)
    assert repr(CLUSTER) in str(raised.value)


async def test_a_discover_subject_that_never_answers_times_out_after_connect_timeout(plain_nats):
    """Something subscribes to the discover subject but never replies: no hang, the
    request gives up after connect_timeout."""
    silent = await nats.connect(plain_nats.url)

    async def ignore(msg) -> None:
        pass

    await silent.subscribe(f"_STAN.discover.{CLUSTER}", cb=ignore)
    await silent.flush()
    try:
        started = time.monotonic()
        with pytest.raises(client.ConnectRequestTimeout) as raised:
            await client.connect(CLUSTER, uid("c"), servers=[plain_nats.url], connect_timeout=0.5)
        assert 0.4 < time.monotonic() - started < 2.5
        assert "within 0.5s" in str(raised.value) and repr(CLUSTER) in str(raised.value)
    finally:
        await silent.close()


async def test_a_server_that_is_down_is_a_bounded_error_naming_cluster_and_url():
    url = f"nats://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(client.NoServersError) as raised:
        await client.connect(CLUSTER, uid("c"), servers=[url], connect_timeout=1)
    assert time.monotonic() - started < 3
    assert isinstance(raised.value, client.ConnectError) and isinstance(raised.value, TimeoutError)
    assert url in str(raised.value) and repr(CLUSTER) in str(raised.value)


async def test_a_dead_server_first_in_the_list_is_skipped(node):
    dead = f"nats://127.0.0.1:{free_port()}"
    conn = await client.connect(CLUSTER, uid("c"), servers=f"{dead},{node.url}",
                                nats_options={"dont_randomize": True})
    try:
        assert conn.nats_conn.connected_url.port == node.port
        await conn.publish(uid("ch"), b"x")
    finally:
        await conn.close()


async def test_a_borrowed_nats_connection_stays_open_and_clean(node):
    nc = await nats.connect(node.url)
    try:
        baseline = len(nc._subs)
        conn = await client.connect(CLUSTER, uid("c"), nats_conn=nc)
        channel = uid("ch")
        got = asyncio.Queue()
        await conn.subscribe(channel, got.put_nowait)
        await conn.publish(channel, b"x")
        assert (await asyncio.wait_for(got.get(), 5)).data == b"x"
        await conn.close()
        assert nc.is_connected
        # only nats-py's own request inbox may remain of what the session subscribed
        assert len(nc._subs) <= baseline + 1
        await nc.publish("plain.subject", b"still usable")
        await nc.flush()
    finally:
        await nc.close()
