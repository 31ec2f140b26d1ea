"""Bad input on the STAN subjects: every case gets the exact STAN error reply, or the
silence the reference keeps, and the node goes on serving a well-behaved client that
was connected all along (its publishes acknowledged, its subscription delivering)."""
from __future__ import annotations

import asyncio
import json
import urllib.request

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout

from broker.protocol.stan import (Ack, CloseRequest, CloseResponse, ConnectRequest,
                                  ConnectResponse, Ping, PingResponse, PubAck, PubMsg,
                                  SubscriptionResponse, UnsubscribeRequest, errors)
from tests.support.stan import CLUSTER, Stan, eventually, wait_stan_ready

pytestmark = pytest.mark.timeout(120)

GARBAGE = b"\xff\xff\xff\xff\x0f garbage \x00\x01"  # not a protobuf of any STAN message


@pytest.fixture
async def node(runnel_factory, tmp_path):
    node = runnel_factory("-st", "file", "-dir", str(tmp_path / "data"),
                          "-hbi", "200ms", "-hbt", "200ms", "-hbf", "1")
    await wait_stan_ready(node.url)
    return node


@pytest.fixture
async def bystander(node):
    """A good client with a live subscription, connected before the bad input."""
    client = await Stan.connect(node.url, "bystander")
    sub = await client.subscribe("calm")
    yield client, sub
    await client.nc.close()


@pytest.fixture
async def raw(node):
    nc = await nats.connect(node.url, allow_reconnect=False)
    yield nc
    await nc.close()


async def still_serves(bystander) -> None:
    client, sub = bystander
    before = len(sub.msgs)
    await client.publish("calm", b"still here")
    await eventually(lambda: len(sub.msgs) > before, what="the bystander's delivery")
    assert sub.msgs[-1].data == b"still here"


async def request(nc, subject: str, payload: bytes) -> bytes:
    return (await nc.request(subject, payload, timeout=5)).data


async def test_garbage_connect_request_gets_invalid_connection_request(raw, bystander):
    for payload in (GARBAGE, ConnectRequest(clientID="x").SerializeToString()):
        reply = await request(raw, f"_STAN.discover.{CLUSTER}", payload)
        assert ConnectResponse.FromString(reply).error == errors.INVALID_CONNECTION_REQUEST
    await still_serves(bystander)


async def test_invalid_client_ids_are_refused(raw, bystander):
    for client_id in ("", "a.b", "a b", "a:b", "a*", "ü"):
        request_bytes = ConnectRequest(clientID=client_id,
                                       heartbeatInbox="_INBOX.hb").SerializeToString()
        reply = await request(raw, f"_STAN.discover.{CLUSTER}", request_bytes)
        assert ConnectResponse.FromString(reply).error == errors.INVALID_CLIENT_ID
    await still_serves(bystander)


async def test_bad_publishes_get_invalid_publish_request(raw, bystander):
    client, _ = bystander
    subject = f"{client.r.pubPrefix}.calm"
    cases = [GARBAGE,
             PubMsg(clientID="bystander", guid="", subject="calm").SerializeToString(),
             PubMsg(clientID="bystander", guid="g1", subject="a..b").SerializeToString(),
             PubMsg(clientID="bystander", guid="g2", subject="a.*").SerializeToString(),
             PubMsg(clientID="nobody", guid="g3", subject="calm").SerializeToString(),
             PubMsg(clientID="bystander", guid="g4", subject="calm",
                    connID=b"not-its-conn").SerializeToString()]
    for payload in cases:
        ack = PubAck.FromString(await request(raw, subject, payload))
        assert ack.error == errors.INVALID_PUBLISH_REQUEST
    await still_serves(bystander)


async def test_garbage_subscription_requests_get_their_errors(raw, bystander):
    client, _ = bystander
    for subject, expected in ((client.r.subRequests, errors.INVALID_SUBSCRIPTION_REQUEST),
                              (client.r.unsubRequests, errors.INVALID_UNSUBSCRIBE_REQUEST),
                              (client.r.subCloseRequests, errors.INVALID_UNSUBSCRIBE_REQUEST)):
        reply = await request(raw, subject, GARBAGE)
        assert SubscriptionResponse.FromString(reply).error == expected
    unknown = UnsubscribeRequest(clientID="bystander", subject="nochannel", inbox="_INBOX.x")
    reply = await request(raw, client.r.unsubRequests, unknown.SerializeToString())
    assert SubscriptionResponse.FromString(reply).error == errors.UNKNOWN_CHANNEL
    await still_serves(bystander)


async def test_bad_close_requests_get_their_errors(raw, bystander):
    client, _ = bystander
    reply = await request(raw, client.r.closeRequests, GARBAGE)
    assert CloseResponse.FromString(reply).error == errors.INVALID_CLOSE_REQUEST
    unknown = CloseRequest(clientID="nobody").SerializeToString()
    reply = await request(raw, client.r.closeRequests, unknown)
    assert CloseResponse.FromString(reply).error == errors.UNKNOWN_CLIENT_ID
    await still_serves(bystander)


async def test_pings_garbage_is_silent_and_unknown_conn_id_is_replaced(raw, bystander):
    client, _ = bystander
    with pytest.raises(NatsTimeout):  # the reference does not answer what it cannot parse
        await raw.request(client.r.pingRequests, GARBAGE, timeout=0.5)
    reply = await request(raw, client.r.pingRequests, Ping(connID=b"unknown").SerializeToString())
    assert PingResponse.FromString(reply).error == errors.CLIENT_REPLACED
    known = await request(raw, client.r.pingRequests, Ping(connID=client.conn_id).SerializeToString())
    assert known == b""  # an OK PingResponse is zero bytes
    await still_serves(bystander)


async def test_bad_acks_are_dropped_and_delivery_goes_on(raw, bystander):
    client, sub = bystander
    for payload in (GARBAGE, Ack(subject="calm", sequence=999999).SerializeToString(),
                    Ack(subject="other", sequence=1).SerializeToString()):
        await raw.publish(sub.ack_inbox, payload)
    await raw.flush()
    await still_serves(bystander)
    await client.ack(sub, sub.msgs[-1].sequence)
    await still_serves(bystander)


async def test_a_client_whose_heartbeat_inbox_nobody_answers_is_closed(node, bystander):
    nc = await nats.connect(node.url, allow_reconnect=False)
    try:
        request_bytes = ConnectRequest(clientID="ghost", heartbeatInbox="_INBOX.nobody",
                                       protocol=1, connID=b"ghost-1").SerializeToString()
        reply = await request(nc, f"_STAN.discover.{CLUSTER}", request_bytes)
        assert not ConnectResponse.FromString(reply).error
        assert "ghost" in registered_clients(node)
        await eventually(lambda: "ghost" not in registered_clients(node), timeout=15,
                         what="the server's heartbeats to close the silent client")
    finally:
        await nc.close()
    assert "bystander" in registered_clients(node)
    await still_serves(bystander)


def registered_clients(node) -> set[str]:
    with urllib.request.urlopen(f"{node.http_url}/streaming/clientsz", timeout=5) as answer:
        return {client["id"] for client in json.load(answer).get("clients", [])}


async def test_messages_published_during_bad_input_are_all_delivered(raw, bystander):
    client, sub = bystander
    before = len(sub.msgs)
    sends = [client.publish("calm", b"m%d" % i) for i in range(20)]
    garbage = [raw.publish(f"{client.r.pubPrefix}.calm", GARBAGE) for _ in range(20)]
    await asyncio.gather(*sends, *garbage)
    await eventually(lambda: len(sub.msgs) >= before + 20, what="20 deliveries")
    assert sorted(m.data for m in sub.msgs[before:]) == sorted(b"m%d" % i for i in range(20))
