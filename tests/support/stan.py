"""A minimal STAN client for tests (reference §2.3, §2.20), written with nats-py and
the protobufs of broker.protocol.stan, and waits that poll with a deadline.

Tests that judge compatibility use the official clients (tests/stan); this one only
makes known traffic for tests of other parts (monitoring, tools, bad input).
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from broker.protocol.stan import (Ack, CloseRequest, CloseResponse, ConnectRequest,
                                  ConnectResponse, First, MsgProto, PubAck, PubMsg,
                                  SubscriptionRequest, SubscriptionResponse, UnsubscribeRequest)

CLUSTER = "test-cluster"
WAIT = 10.0


@dataclass
class StanSub:
    channel: str
    inbox: str
    ack_inbox: str
    msgs: list = field(default_factory=list)   # MsgProto received
    sizes: list = field(default_factory=list)  # raw payload sizes received


class Stan:
    """Just enough of a STAN client (§2.3, §2.20): connect, publish, subscribe, ack,
    unsubscribe, close a subscription, close."""

    def __init__(self, nc, client_id: str, response: ConnectResponse):
        self.nc = nc
        self.client_id = client_id
        self.r = response
        self.conn_id = b""
        self.pub_bytes = 0  # raw PubMsg bytes sent

    @classmethod
    async def connect(cls, url: str, client_id: str) -> "Stan":
        nc = await asyncio.wait_for(nats.connect(url, connect_timeout=5, allow_reconnect=False,
                                                 max_reconnect_attempts=0), WAIT)
        hb_inbox = nc.new_inbox()

        async def heartbeat(msg):
            if msg.reply:
                await nc.publish(msg.reply, b"")
        await nc.subscribe(hb_inbox, cb=heartbeat)
        conn_id = uuid.uuid4().hex.encode()
        request = ConnectRequest(clientID=client_id, heartbeatInbox=hb_inbox, protocol=1,
                                 connID=conn_id, pingInterval=5, pingMaxOut=3)
        reply = await nc.request(f"_STAN.discover.{CLUSTER}", request.SerializeToString(),
                                 timeout=WAIT)
        response = ConnectResponse.FromString(reply.data)
        assert not response.error, response.error
        client = cls(nc, client_id, response)
        client.conn_id = conn_id
        return client

    async def publish(self, channel: str, data: bytes) -> None:
        msg = PubMsg(clientID=self.client_id, guid=uuid.uuid4().hex, subject=channel,
                     data=data, connID=self.conn_id).SerializeToString()
        self.pub_bytes += len(msg)
        reply = await self.nc.request(f"{self.r.pubPrefix}.{channel}", msg, timeout=WAIT)
        assert not PubAck.FromString(reply.data).error

    async def subscribe(self, channel: str, *, queue: str = "", durable: str = "",
                        max_inflight: int = 1024, ack_wait: int = 60,
                        start: int = First) -> StanSub:
        inbox = self.nc.new_inbox()
        sub = StanSub(channel, inbox, "")

        async def deliver(msg):
            sub.sizes.append(len(msg.data))
            sub.msgs.append(MsgProto.FromString(msg.data))
        await self.nc.subscribe(inbox, cb=deliver)
        request = SubscriptionRequest(clientID=self.client_id, subject=channel, qGroup=queue,
                                      inbox=inbox, maxInFlight=max_inflight,
                                      ackWaitInSecs=ack_wait, durableName=durable,
                                      startPosition=start)
        reply = await self.nc.request(self.r.subRequests, request.SerializeToString(),
                                      timeout=WAIT)
        response = SubscriptionResponse.FromString(reply.data)
        assert not response.error, response.error
        sub.ack_inbox = response.ackInbox
        return sub

    async def ack(self, sub: StanSub, seq: int) -> None:
        await self.nc.publish(sub.ack_inbox,
                              Ack(subject=sub.channel, sequence=seq).SerializeToString())
        await self.nc.flush()

    async def _unsub(self, subject: str, sub: StanSub) -> None:
        request = UnsubscribeRequest(clientID=self.client_id, subject=sub.channel,
                                     inbox=sub.ack_inbox)
        reply = await self.nc.request(subject, request.SerializeToString(), timeout=WAIT)
        assert not SubscriptionResponse.FromString(reply.data).error

    async def unsubscribe(self, sub: StanSub) -> None:
        await self._unsub(self.r.unsubRequests, sub)

    async def close_sub(self, sub: StanSub) -> None:
        await self._unsub(self.r.subCloseRequests, sub)

    async def close(self) -> None:
        reply = await self.nc.request(self.r.closeRequests,
                                      CloseRequest(clientID=self.client_id).SerializeToString(),
                                      timeout=WAIT)
        assert not CloseResponse.FromString(reply.data).error
        await self.nc.close()


async def eventually(condition, timeout: float = WAIT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_stan_ready(url: str, timeout: float = WAIT) -> None:
    """The port opens before the STAN service answers: wait for the discover subject."""
    deadline = time.monotonic() + timeout
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        while time.monotonic() < deadline:
            try:
                # an empty ConnectRequest is refused with an error, and registers nothing
                await nc.request(f"_STAN.discover.{CLUSTER}", b"", timeout=0.25)
                return
            except NoRespondersError:
                await asyncio.sleep(0.02)
            except NatsTimeout:
                pass
        raise AssertionError(f"the STAN service did not answer within {timeout}s")
    finally:
        await nc.close()
