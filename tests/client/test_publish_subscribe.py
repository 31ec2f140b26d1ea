"""Publish and subscribe with the Runnel client against a real node: every start
position, durables, queue groups, MaxInflight, AckWait, manual acks, unsubscribe versus
close, the publisher's PubAck window, and the server's error texts surfacing as
exceptions. Every wait polls with a deadline; the few quiet windows are short."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

import pytest

from broker import client
from broker.client import StartPosition
from broker.protocol.stan import errors as texts
from tests.stan.conftest import CLUSTER, start_stan_node

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    started = start_stan_node(tmp_path_factory.mktemp("client-pubsub"), label="pubsub")
    yield started
    started.kill()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def connect(node):
    """``await connect(**options)``: a session on the node, closed at the end."""
    made: list[client.Connection] = []

    async def make(client_id: str | None = None, **options) -> client.Connection:
        conn = await client.connect(CLUSTER, client_id or uid("c"), servers=[node.url], **options)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        if not conn.is_closed:
            await conn.close()


class Collector:
    """A message callback that keeps what it got; ``wait``/``quiet`` poll with deadlines."""

    def __init__(self, ack: bool = False):
        self.msgs: list[client.Msg] = []
        self.ack = ack          # manual-ack each message as it arrives

    async def __call__(self, msg: client.Msg) -> None:
        self.msgs.append(msg)
        if self.ack:
            await msg.ack()

    @property
    def seqs(self) -> list[int]:
        return [m.sequence for m in self.msgs]

    @property
    def data(self) -> list[bytes]:
        return [m.data for m in self.msgs]

    async def wait(self, count: int, timeout: float = WAIT) -> list[client.Msg]:
        deadline = time.monotonic() + timeout
        while len(self.msgs) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"got {self.seqs}, waited {timeout}s for {count} messages")
            await asyncio.sleep(0.01)
        return self.msgs

    async def quiet(self, seconds: float = 0.3) -> None:
        before = len(self.msgs)
        await asyncio.sleep(seconds)
        assert len(self.msgs) == before, f"unexpected messages: {self.seqs[before:]}"


async def publish_n(conn: client.Connection, channel: str, count: int, first: int = 1) -> None:
    for i in range(first, first + count):
        await conn.publish(channel, f"m{i}".encode())


# -- start positions -------------------------------------------------------------------------

async def test_every_start_position(connect):
    conn = await connect()
    channel = uid("start")
    await publish_n(conn, channel, 5)

    first, last, new, seq = Collector(), Collector(), Collector(), Collector()
    await conn.subscribe(channel, first, start_at=StartPosition.FIRST)
    await conn.subscribe(channel, last, start_at=StartPosition.LAST_RECEIVED)
    await conn.subscribe(channel, new)                                  # NEW_ONLY by default
    await conn.subscribe(channel, seq, start_sequence=3)
    await first.wait(5)
    await last.wait(1)
    await seq.wait(3)
    await new.quiet(0.2)
    await conn.publish(channel, b"m6")
    await first.wait(6)
    assert first.seqs == [1, 2, 3, 4, 5, 6]
    assert first.data == [b"m1", b"m2", b"m3", b"m4", b"m5", b"m6"]
    assert (await last.wait(2)) and last.seqs == [5, 6]
    assert (await new.wait(1)) and new.seqs == [6]
    assert (await seq.wait(4)) and seq.seqs == [3, 4, 5, 6]
    assert all(m.channel == channel and not m.redelivered for m in first.msgs)
    stamps = [m.timestamp_ns for m in first.msgs]
    assert stamps == sorted(stamps) and abs(stamps[-1] / 1e9 - time.time()) < 60


async def test_start_at_a_time_delta_or_a_time(connect):
    conn = await connect()
    channel = uid("since")
    await publish_n(conn, channel, 2)
    await asyncio.sleep(1.0)
    await publish_n(conn, channel, 2, first=3)
    by_delta, by_timedelta, by_time, everything = Collector(), Collector(), Collector(), Collector()
    await conn.subscribe(channel, by_delta, start_time_delta=0.5)
    await conn.subscribe(channel, by_timedelta, start_time_delta=timedelta(milliseconds=500))
    await conn.subscribe(channel, by_time, start_time=datetime.now() - timedelta(seconds=0.5))
    await conn.subscribe(channel, everything, start_at=StartPosition.TIME_DELTA_START,
                         start_time_delta=3600)
    for collector in (by_delta, by_timedelta, by_time):
        await collector.wait(2)
    await everything.wait(4)
    await asyncio.sleep(0.1)
    assert by_delta.seqs == by_timedelta.seqs == by_time.seqs == [3, 4]
    assert everything.seqs == [1, 2, 3, 4]


# -- durables --------------------------------------------------------------------------------

async def test_durable_close_keeps_the_position_and_unsubscribe_forgets_it(connect):
    client_id, channel = uid("dur"), uid("durable")
    conn = await connect(client_id)
    await publish_n(conn, channel, 3)
    got = Collector()
    sub = await conn.subscribe(channel, got, durable_name="d", start_at=StartPosition.FIRST)
    await got.wait(3)
    await asyncio.sleep(0.1)   # the auto-acks reach the server
    await sub.close()          # offline: the position is kept
    assert not sub.is_valid
    await publish_n(conn, channel, 2, first=4)

    resumed = Collector()
    # the start position of a resume is ignored: it continues after 3
    sub = await conn.subscribe(channel, resumed, durable_name="d", start_at=StartPosition.FIRST)
    await resumed.wait(2)
    await resumed.quiet(0.2)
    assert resumed.seqs == [4, 5] and not any(m.redelivered for m in resumed.msgs)
    await sub.unsubscribe()    # gone: the same name starts afresh

    fresh = Collector()
    await conn.subscribe(channel, fresh, durable_name="d", start_at=StartPosition.FIRST)
    await fresh.wait(5)
    assert fresh.seqs == [1, 2, 3, 4, 5]


async def test_a_durable_belongs_to_its_client_id_across_connections(connect):
    client_id, channel = uid("owner"), uid("durable")
    conn = await connect(client_id)
    got = Collector(ack=True)
    await conn.subscribe(channel, got, durable_name="d", manual_acks=True)
    await publish_n(conn, channel, 2)
    await got.wait(2)
    await asyncio.sleep(0.1)
    await conn.close()                       # the durable goes offline

    publisher = await connect()
    await publish_n(publisher, channel, 2, first=3)
    again = await connect(client_id)
    resumed = Collector()
    await again.subscribe(channel, resumed, durable_name="d")
    await resumed.wait(2)
    assert resumed.seqs == [3, 4]
    other = Collector()                      # the same durable name under another ID
    await publisher.subscribe(channel, other, durable_name="d", start_at=StartPosition.FIRST)
    await other.wait(4)
    assert other.seqs == [1, 2, 3, 4]


async def test_unacked_messages_of_a_durable_are_redelivered_on_resume(connect):
    client_id, channel = uid("resume"), uid("durable")
    conn = await connect(client_id)
    held = Collector()                        # manual acks, never acked
    sub = await conn.subscribe(channel, held, durable_name="d", manual_acks=True,
                               start_at=StartPosition.FIRST)
    await publish_n(conn, channel, 3)
    await held.wait(3)
    await sub.close()
    back = Collector(ack=True)
    await conn.subscribe(channel, back, durable_name="d", manual_acks=True)
    await back.wait(3)
    assert back.seqs == [1, 2, 3] and all(m.redelivered for m in back.msgs)
    await back.quiet(0.2)


async def test_a_durable_already_online_is_refused_with_the_server_s_text(connect):
    conn = await connect()
    channel = uid("dup")
    await conn.subscribe(channel, Collector(), durable_name="d")
    with pytest.raises(client.ServerError) as raised:
        await conn.subscribe(channel, Collector(), durable_name="d")
    assert str(raised.value) == texts.DUPLICATE_DURABLE


# -- queue groups ----------------------------------------------------------------------------

async def test_a_queue_group_shares_the_messages(connect):
    channel = uid("queue")
    a, b = Collector(), Collector()
    conn_a, conn_b = await connect(), await connect()
    await conn_a.subscribe(channel, a, queue="workers")
    await conn_b.subscribe(channel, b, queue="workers")
    await publish_n(conn_a, channel, 20)
    deadline = time.monotonic() + WAIT
    while len(a.msgs) + len(b.msgs) < 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert sorted(a.seqs + b.seqs) == list(range(1, 21))
    assert a.msgs and b.msgs


async def test_a_durable_queue_group_survives_its_last_member_closing(connect):
    channel = uid("dq")
    conn = await connect()
    first = Collector()
    sub = await conn.subscribe(channel, first, queue="workers", durable_name="dq",
                               start_at=StartPosition.FIRST)
    await publish_n(conn, channel, 3)
    await first.wait(3)
    await asyncio.sleep(0.1)
    await sub.close()                           # the group stays as a shadow
    await publish_n(conn, channel, 2, first=4)
    rejoin = Collector()
    other = await connect()
    await other.subscribe(channel, rejoin, queue="workers", durable_name="dq",
                          start_at=StartPosition.FIRST)
    await rejoin.wait(2)
    await rejoin.quiet(0.2)
    assert rejoin.seqs == [4, 5]


async def test_a_durable_queue_name_with_a_colon_is_refused(connect):
    conn = await connect()
    with pytest.raises(client.ServerError) as raised:
        await conn.subscribe(uid("dq"), Collector(), queue="q", durable_name="a:b")
    assert str(raised.value) == texts.INVALID_DURABLE_QUEUE_NAME


# -- MaxInflight, AckWait, manual acks -------------------------------------------------------

async def test_max_inflight_stalls_until_acks(connect):
    conn = await connect()
    channel = uid("inflight")
    await publish_n(conn, channel, 5)
    held = Collector()
    await conn.subscribe(channel, held, start_at=StartPosition.FIRST, manual_acks=True,
                         max_inflight=2)
    await held.wait(2)
    await held.quiet(0.3)
    assert held.seqs == [1, 2]
    await held.msgs[0].ack()
    await held.wait(3)
    await held.quiet(0.2)
    assert held.seqs == [1, 2, 3]
    held.ack = True
    for msg in held.msgs[1:]:
        await msg.ack()
    await held.wait(5)
    assert held.seqs == [1, 2, 3, 4, 5]


async def test_an_unacked_message_is_redelivered_after_ack_wait(connect):
    conn = await connect()
    channel = uid("ackwait")
    held = Collector()
    sub = await conn.subscribe(channel, held, manual_acks=True, ack_wait=1)
    assert sub.ack_wait == 1 and sub.max_inflight == client.DEFAULT_MAX_INFLIGHT
    await conn.publish(channel, b"x")
    await held.wait(1)
    started = time.monotonic()
    await held.wait(2, timeout=4)
    assert 0.7 < time.monotonic() - started < 3.5
    again = held.msgs[1]
    assert (again.sequence, again.redelivered, again.redelivery_count) == (1, True, 1)
    await again.ack()
    await held.quiet(1.3)


async def test_a_callback_that_raises_does_not_ack(connect, caplog):
    conn = await connect()
    channel = uid("raises")
    calls: list[client.Msg] = []

    def fails_once(msg: client.Msg) -> None:
        calls.append(msg)
        if len(calls) == 1:
            raise RuntimeError("not now")

    await conn.subscribe(channel, fails_once, ack_wait=1)
    await conn.publish(channel, b"x")
    deadline = time.monotonic() + 4
    while len(calls) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert [m.redelivered for m in calls] == [False, True]
    assert "not acked" in caplog.text


async def test_manual_ack_errors(connect):
    conn = await connect()
    channel = uid("acks")
    errors: list[Exception] = []

    async def auto(msg: client.Msg) -> None:
        try:
            await msg.ack()
        except client.StanError as exc:
            errors.append(exc)

    await conn.subscribe(channel, auto)
    manual = Collector()
    sub = await conn.subscribe(channel, manual, manual_acks=True)
    await conn.publish(channel, b"x")
    await manual.wait(1)
    deadline = time.monotonic() + WAIT
    while not errors and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert isinstance(errors[0], client.ManualAckInAutoMode)
    assert str(errors[0]) == texts.MANUAL_ACK_IN_AUTO_MODE
    await sub.unsubscribe()
    with pytest.raises(client.InvalidSubscription) as raised:
        await manual.msgs[0].ack()
    assert raised.value.text == texts.INVALID_SUBSCRIPTION


# -- unsubscribe, close, from inside a callback ----------------------------------------------

async def test_unsubscribe_twice_and_after_close(connect):
    conn = await connect()
    sub = await conn.subscribe(uid("twice"), Collector())
    await sub.unsubscribe()
    with pytest.raises(client.InvalidSubscription) as raised:
        await sub.unsubscribe()
    assert raised.value.text == texts.INVALID_SUBSCRIPTION
    with pytest.raises(client.InvalidSubscription):
        await sub.close()
    other = await conn.subscribe(uid("closed"), Collector())
    await conn.close()
    assert not other.is_valid
    with pytest.raises(client.ConnectionClosed):
        await other.unsubscribe()


async def test_a_callback_may_unsubscribe_or_close_the_connection(connect):
    conn = await connect()
    channel = uid("inside")
    seen: list[int] = []
    done = asyncio.Event()

    async def once(msg: client.Msg) -> None:
        seen.append(msg.sequence)
        await sub.unsubscribe()          # must not cancel this callback
        seen.append(-1)
        done.set()

    sub = await conn.subscribe(channel, once)
    await publish_n(conn, channel, 3)
    await asyncio.wait_for(done.wait(), WAIT)
    await asyncio.sleep(0.2)
    assert seen == [1, -1] and not sub.is_valid

    closing = await connect()
    closed = asyncio.Event()

    async def close_conn(msg: client.Msg) -> None:
        await closing.close()
        closed.set()

    await closing.subscribe(channel, close_conn, start_at=StartPosition.FIRST)
    await asyncio.wait_for(closed.wait(), WAIT)
    assert closing.is_closed


# -- publishing --------------------------------------------------------------------------------

async def test_publish_async_keeps_at_most_max_pub_acks_inflight(connect):
    conn = await connect(max_pub_acks_inflight=4)
    channel = uid("window")
    got = Collector()
    await conn.subscribe(channel, got)
    acked: dict[str, object] = {}
    most = 0
    guids = []
    for i in range(200):
        guids.append(await conn.publish_async(channel, f"{i}".encode(),
                                              lambda g, e: acked.__setitem__(g, e)))
        most = max(most, conn.pub_acks_pending)
    await got.wait(200)
    deadline = time.monotonic() + WAIT
    while len(acked) < 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert most <= 4
    assert set(acked) == set(guids) and all(e is None for e in acked.values())
    assert got.data == [f"{i}".encode() for i in range(200)]


async def test_async_ack_handlers_are_awaited(connect):
    conn = await connect()
    done = asyncio.Event()

    async def handler(guid: str, error) -> None:
        await asyncio.sleep(0)
        done.set()

    await conn.publish_async(uid("h"), b"x", handler)
    await asyncio.wait_for(done.wait(), WAIT)


# -- the server's error texts --------------------------------------------------------------

@pytest.mark.parametrize("channel", ["foo..bar", ".foo", "foo.", "foo*", "a.>", "a/b", "",
                                     "with space", "tab\tin"])
async def test_publishing_to_an_invalid_channel_surfaces_the_server_s_text(connect, channel):
    conn = await connect()
    with pytest.raises(client.StanError) as raised:
        await conn.publish(channel, b"x")
    assert raised.value.text == texts.INVALID_PUBLISH_REQUEST
    if channel.isprintable() and " " not in channel:   # the rest never leaves the client
        assert isinstance(raised.value, client.ServerError)
        assert str(raised.value) == texts.INVALID_PUBLISH_REQUEST
    assert conn.pub_acks_pending == 0


@pytest.mark.parametrize("channel", ["foo..bar", ".foo", "foo.", "foo*", "a.>", "a/b", ""])
async def test_subscribing_to_an_invalid_channel_surfaces_the_server_s_text(connect, channel):
    conn = await connect()
    with pytest.raises(client.ServerError) as raised:
        await conn.subscribe(channel, Collector())
    assert str(raised.value) == texts.INVALID_SUBJECT
    assert conn.subscriptions == []


@pytest.mark.parametrize("options,text", [
    (dict(max_inflight=0), texts.INVALID_MAX_INFLIGHT),
    (dict(ack_wait=0.5), texts.INVALID_ACK_WAIT),
])
async def test_bad_subscription_options_surface_the_server_s_text(connect, options, text):
    conn = await connect()
    with pytest.raises(client.ServerError) as raised:
        await conn.subscribe(uid("opts"), Collector(), **options)
    assert str(raised.value) == text


async def test_a_queue_member_that_leaves_hands_its_unacked_messages_to_another(connect):
    channel = uid("handover")
    leaving, staying = Collector(), Collector()
    conn_a, conn_b = await connect(), await connect()
    sub_a = await conn_a.subscribe(channel, leaving, queue="q", manual_acks=True)
    await conn_b.subscribe(channel, staying, queue="q", manual_acks=True, max_inflight=100)
    await publish_n(conn_a, channel, 6)
    deadline = time.monotonic() + WAIT
    while len(leaving.msgs) + len(staying.msgs) < 6 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    held = set(leaving.seqs)
    assert held, "the first member got some"
    await sub_a.close()
    await staying.wait(6)
    handed = [m for m in staying.msgs if m.sequence in held]
    assert sorted(m.sequence for m in handed) == sorted(held)
    assert all(m.redelivered for m in handed)


async def test_a_channel_differing_only_in_case_surfaces_the_server_s_text(connect):
    conn = await connect()
    channel = uid("case")
    await conn.publish(channel, b"x")
    other = channel.upper()
    with pytest.raises(client.ServerError) as raised:
        await conn.publish(other, b"x")
    assert str(raised.value) == texts.channel_case_conflict(other, channel)
    with pytest.raises(client.ServerError) as raised:
        await conn.subscribe(other, Collector())
    assert str(raised.value) == texts.channel_case_conflict(other, channel)
