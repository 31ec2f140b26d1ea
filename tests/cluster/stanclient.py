"""A STAN client that survives node failures, for the cluster scenarios.

The minimal client of ``tests.support.stan`` extended as stan.go behaves on failover
(reference §6.4): nats-py is given every node (``servers=[...]``, reconnecting for
ever without randomising), the client pings (protocol 1) every ``ping_interval``,
and the application retries publishes that timed out. It records, for every
logical message, whether and when a PubAck without error came back.
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
                                  ConnectResponse, First, MsgProto, Ping, PingResponse, PubAck,
                                  PubMsg, SubscriptionRequest, SubscriptionResponse)

CLUSTER = "test-cluster"


@dataclass
class PubResult:
    """What a publishing run saw."""
    acked: list = field(default_factory=list)       # payloads, in ack order
    ack_times: list = field(default_factory=list)   # monotonic time of each ack
    attempts: int = 0
    timeouts: int = 0
    errors: list = field(default_factory=list)      # (time, error text)
    started: float = 0.0
    ended: float = 0.0

    def longest_gap(self, since: float | None = None) -> tuple[float, float]:
        """(seconds, start time) of the longest time without a PubAck."""
        times = ([since] if since is not None else []) + [t for t in self.ack_times
                                                         if since is None or t >= since]
        best = (0.0, since or 0.0)
        for a, b in zip(times, times[1:]):
            if b - a > best[0]:
                best = (b - a, a)
        return best


@dataclass
class Sub:
    channel: str
    inbox: str
    ack_inbox: str = ""
    msgs: list = field(default_factory=list)


class FailoverStan:
    def __init__(self, nc, client_id: str, conn_id: bytes, response: ConnectResponse):
        self.nc = nc
        self.client_id = client_id
        self.conn_id = conn_id
        self.r = response
        self.events: list = []         # (time, what) of NATS disconnects/reconnects
        self.ping_errors: list = []
        self._ping_task: asyncio.Task | None = None

    @classmethod
    async def connect(cls, servers: list[str], client_id: str, *, ping_interval: int = 1,
                      ping_max_out: int = 30, timeout: float = 20.0) -> "FailoverStan":
        events: list = []

        async def disconnected():
            events.append((time.monotonic(), "disconnected"))

        async def reconnected():
            events.append((time.monotonic(), f"reconnected {nc.connected_url.netloc}"))

        async def error(exc):
            events.append((time.monotonic(), f"error {exc!r}"))

        nc = await nats.connect(servers=servers, dont_randomize=True, allow_reconnect=True,
                                max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                                connect_timeout=1, disconnected_cb=disconnected,
                                reconnected_cb=reconnected, error_cb=error)
        hb_inbox = nc.new_inbox()

        async def heartbeat(msg):
            if msg.reply:
                await nc.publish(msg.reply, b"")
        await nc.subscribe(hb_inbox, cb=heartbeat)
        conn_id = uuid.uuid4().hex.encode()
        request = ConnectRequest(clientID=client_id, heartbeatInbox=hb_inbox, protocol=1,
                                 connID=conn_id, pingInterval=ping_interval,
                                 pingMaxOut=ping_max_out).SerializeToString()
        deadline = time.monotonic() + timeout
        while True:  # during an election a connect may time out: try again
            try:
                reply = await nc.request(f"_STAN.discover.{CLUSTER}", request, timeout=2)
                response = ConnectResponse.FromString(reply.data)
                if not response.error:
                    break
                error_text = response.error
            except (NatsTimeout, NoRespondersError) as exc:
                error_text = repr(exc)
            if time.monotonic() > deadline:
                await nc.close()
                raise AssertionError(f"STAN connect of {client_id} failed: {error_text}")
            await asyncio.sleep(0.1)
        client = cls(nc, client_id, conn_id, response)
        client.events = events
        client._ping_task = asyncio.ensure_future(client._pings(response.pingInterval or 1))
        return client

    async def _pings(self, interval: float) -> None:
        """Protocol 1 pings: they tell the node now holding the connection to take
        the client over (ARCHITECTURE §4)."""
        ping = Ping(connID=self.conn_id).SerializeToString()
        while True:
            await asyncio.sleep(interval)
            try:
                reply = await self.nc.request(self.r.pingRequests, ping, timeout=interval)
                if reply.data:
                    error = PingResponse.FromString(reply.data).error
                    if error:
                        self.ping_errors.append((time.monotonic(), error))
            except Exception:
                pass

    @property
    def server(self) -> str:
        url = self.nc.connected_url
        return url.netloc if url else ""

    async def publish_once(self, channel: str, data: bytes, timeout: float) -> str | None:
        """One attempt: None on a PubAck without error, else the error text."""
        msg = PubMsg(clientID=self.client_id, guid=uuid.uuid4().hex, subject=channel,
                     data=data, connID=self.conn_id).SerializeToString()
        try:
            reply = await self.nc.request(f"{self.r.pubPrefix}.{channel}", msg, timeout=timeout)
        except (NatsTimeout, asyncio.TimeoutError):
            return "timeout"
        except Exception as exc:  # no responders, connection reconnecting
            return repr(exc)
        return PubAck.FromString(reply.data).error or None

    async def publish_retrying(self, channel: str, prefix: str, *, count: int | None = None,
                               stop: asyncio.Event | None = None, timeout: float = 0.5,
                               result: PubResult | None = None,
                               give_up_s: float = 30.0) -> PubResult:
        """Publish ``prefix-0``, ``prefix-1``, ... one at a time, each retried (new
        guid) until a PubAck without error, until ``count`` are acked or ``stop``."""
        result = result or PubResult()
        result.started = time.monotonic()
        i = 0
        while (count is None or i < count) and not (stop and stop.is_set()):
            data = f"{prefix}-{i}".encode()
            first_try = time.monotonic()
            while True:
                result.attempts += 1
                error = await self.publish_once(channel, data, timeout)
                if error is None:
                    result.acked.append(data)
                    result.ack_times.append(time.monotonic())
                    break
                if error == "timeout":
                    result.timeouts += 1
                else:
                    result.errors.append((time.monotonic(), error))
                    await asyncio.sleep(0.05)
                if time.monotonic() - first_try > give_up_s:
                    raise AssertionError(f"{data!r} not acknowledged within {give_up_s}s; "
                                         f"errors {result.errors[-5:]} events {self.events}")
                if stop and stop.is_set() and count is None:
                    break
            i += 1
        result.ended = time.monotonic()
        return result

    async def subscribe(self, channel: str, *, queue: str = "", durable: str = "",
                        max_inflight: int = 1024, ack_wait: int = 30, start: int = First,
                        auto_ack: bool = True, timeout: float = 10.0) -> Sub:
        inbox = self.nc.new_inbox()
        sub = Sub(channel, inbox)

        async def deliver(msg):
            m = MsgProto.FromString(msg.data)
            sub.msgs.append(m)
            if auto_ack and sub.ack_inbox:
                await self.nc.publish(sub.ack_inbox, Ack(subject=channel, sequence=m.sequence)
                                      .SerializeToString())
        await self.nc.subscribe(inbox, cb=deliver)
        request = SubscriptionRequest(clientID=self.client_id, subject=channel, qGroup=queue,
                                      inbox=inbox, maxInFlight=max_inflight,
                                      ackWaitInSecs=ack_wait, durableName=durable,
                                      startPosition=start).SerializeToString()
        reply = await self.nc.request(self.r.subRequests, request, timeout=timeout)
        response = SubscriptionResponse.FromString(reply.data)
        assert not response.error, response.error
        sub.ack_inbox = response.ackInbox
        return sub

    async def close(self, timeout: float = 5.0) -> str | None:
        """Close the STAN session; returns the error, if any (None: closed)."""
        if self._ping_task:
            self._ping_task.cancel()
        error = None
        try:
            reply = await self.nc.request(self.r.closeRequests, CloseRequest(
                clientID=self.client_id).SerializeToString(), timeout=timeout)
            error = CloseResponse.FromString(reply.data).error or None
        except Exception as exc:
            error = repr(exc)
        await self._close_nats()
        return error

    async def abandon(self) -> None:
        """Drop the connection without telling the server."""
        if self._ping_task:
            self._ping_task.cancel()
        await self._close_nats()

    async def _close_nats(self) -> None:
        try:
            await self.nc.close()
        except (OSError, asyncio.TimeoutError):  # the node it was connected to is dead
            pass
