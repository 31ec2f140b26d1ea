"""The workload, on Runnel's client (broker.client): writers, durable subscribers, a
durable queue group; every publish and delivery recorded in the history.

* Writers publish unique ``w<i>-<counter>`` values, one at a time (each waits for its
  PubAck), to channels picked at random, at a bounded rate. A PubAck without error is
  ``ok``; a PubAck whose error is a domain error of the server (``stan: ...``) is a
  definite ``fail``; a timeout, a Raft error text, a lost connection is ``unknown``.
* Subscribers are durable, with manual acks and MaxInflight; each message is acked after
  a random delay, a few are never acked (so they are redelivered after AckWait). The
  queue group is durable too, its members on separate connections.
* Every session is given all nodes' URLs and reconnects to any of them (nats-py); a
  session declared lost (PINGs unanswered) is opened again with the same client ID and
  its subscriptions made again (a durable resumes where it was).
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from broker import client

from .history import Recorder, value_of
from .nodes import CLUSTER_ID

CONNECT_RETRY_S = 0.5


@dataclass(frozen=True)
class WorkloadConfig:
    channels: int = 3
    writers: int = 4
    rate_per_writer_hz: float = 15.0
    queue_members: int = 2
    max_inflight: int = 8
    queue_max_inflight: int = 4
    ack_wait_s: float = 2.0
    ack_delay_max_s: float = 0.6
    skip_ack_p: float = 0.02
    pub_ack_wait_s: float = 5.0
    connect_timeout_s: float = 2.0

    def channel_names(self) -> list[str]:
        return [f"c{i}" for i in range(self.channels)]


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    text = str(error)
    if isinstance(error, client.ServerError) and text.startswith(("stan: ", "too many")):
        return "fail"
    return "unknown"


async def open_session(client_id: str, urls: list[str], cfg: WorkloadConfig,
                       stop: asyncio.Event, on_lost=None) -> client.Connection | None:
    """Connect (retrying until it works or ``stop``); None if stopped first."""
    while not stop.is_set():
        try:
            return await client.connect(
                CLUSTER_ID, client_id, servers=urls, connect_timeout=cfg.connect_timeout_s,
                pub_ack_wait=cfg.pub_ack_wait_s, ping_interval=1, ping_max_out=3,
                on_connection_lost=on_lost,
                nats_options={"reconnect_time_wait": 0.25, "max_reconnect_attempts": -1})
        except (client.StanError, OSError, asyncio.TimeoutError):
            try:
                await asyncio.wait_for(stop.wait(), CONNECT_RETRY_S)
            except asyncio.TimeoutError:
                pass
    return None


async def close_quietly(conn: client.Connection | None) -> None:
    if conn is not None and not conn.is_closed:
        try:
            await asyncio.wait_for(conn.close(), 3)
        except Exception:  # closing during faults: whatever happens, it is gone
            pass


class Writer:
    def __init__(self, index: int, rec: Recorder, urls: list[str], cfg: WorkloadConfig,
                 seed: int) -> None:
        self.name = f"w{index}"
        self.rec, self.urls, self.cfg = rec, urls, cfg
        self.rng = random.Random(f"{seed}-{self.name}")
        self.counter = 0

    async def run(self, stop: asyncio.Event) -> None:
        generation = 0
        while not stop.is_set():
            generation += 1
            conn = await open_session(f"{self.name}-{generation}", self.urls, self.cfg, stop)
            if conn is None:
                return
            try:
                await self._publish_until_lost(conn, stop)
            finally:
                await close_quietly(conn)

    async def _publish_until_lost(self, conn: client.Connection, stop: asyncio.Event) -> None:
        channels = self.cfg.channel_names()
        while not stop.is_set() and not conn.is_closed:
            channel = self.rng.choice(channels)
            value = value_of(self.name, self.counter)
            self.counter += 1
            self.rec.record("invoke", process=self.name, channel=channel, value=value)
            error = await self._publish(conn, channel, value)
            fields = {"error": str(error)[:200]} if error else {}
            self.rec.record(outcome_of(error), process=self.name, channel=channel,
                            value=value, **fields)
            delay = self.rng.expovariate(self.cfg.rate_per_writer_hz)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _publish(self, conn, channel: str, value: str) -> BaseException | None:
        try:
            await asyncio.wait_for(conn.publish(channel, value.encode()),
                                   self.cfg.pub_ack_wait_s + 1)
            return None
        except (client.StanError, asyncio.TimeoutError, OSError) as exc:
            return exc


class Subscriber:
    """A durable subscriber, or a member of the durable queue group ``queue``."""

    def __init__(self, name: str, channel: str, rec: Recorder, urls: list[str],
                 cfg: WorkloadConfig, seed: int, queue: str = "") -> None:
        self.name, self.channel, self.queue = name, channel, queue
        self.rec, self.urls, self.cfg = rec, urls, cfg
        self.rng = random.Random(f"{seed}-{name}")
        self.max_inflight = cfg.queue_max_inflight if queue else cfg.max_inflight
        self.pending: set[int] = set()
        self.lost = asyncio.Event()
        self.acks: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.lost.clear()
            conn = await open_session(f"sub-{self.name}", self.urls, self.cfg, stop,
                                      on_lost=lambda c, e: self.lost.set())
            if conn is None:
                return
            try:
                if await self._subscribe(conn, stop):
                    await _first_of(stop.wait(), self.lost.wait())
            finally:
                await close_quietly(conn)

    async def _subscribe(self, conn, stop: asyncio.Event) -> bool:
        while not stop.is_set() and not conn.is_closed:
            try:
                await conn.subscribe(
                    self.channel, self._on_msg, queue=self.queue or None,
                    durable_name="dur", start_at=client.StartPosition.FIRST,
                    max_inflight=self.max_inflight, ack_wait=self.cfg.ack_wait_s,
                    manual_acks=True)
            except client.StanError as exc:
                self.rec.record("note", text=f"{self.name}: subscribe failed: {exc}")
                await asyncio.sleep(CONNECT_RETRY_S)
                continue
            self.pending = set()  # the client's view restarts with the subscription
            self.rec.record("sub", subscriber=self.name, channel=self.channel,
                            kind="queue" if self.queue else "durable", group=self.queue,
                            max_inflight=self.max_inflight)
            return True
        return False

    async def _on_msg(self, msg: client.Msg) -> None:
        pending = self.pending
        pending.add(msg.sequence)
        self.rec.record("deliver", subscriber=self.name, channel=msg.channel,
                        seq=msg.sequence, value=msg.data.decode(errors="replace"),
                        redelivered=msg.redelivered, outstanding=len(pending))
        if self.rng.random() < self.cfg.skip_ack_p:
            return
        task = asyncio.ensure_future(self._ack_later(msg, pending,
                                                     self.rng.uniform(0, self.cfg.ack_delay_max_s)))
        self.acks.add(task)
        task.add_done_callback(self.acks.discard)

    async def _ack_later(self, msg: client.Msg, pending: set[int], delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            await msg.ack()
        except client.StanError:
            return
        pending.discard(msg.sequence)
        self.rec.record("ack", subscriber=self.name, channel=msg.channel, seq=msg.sequence)


async def _first_of(*aws) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class Workload:
    """All writers and subscribers; ``run`` until ``stop`` is set."""

    def __init__(self, rec: Recorder, urls: list[str], cfg: WorkloadConfig, seed: int) -> None:
        channels = cfg.channel_names()
        self.writers = [Writer(i, rec, urls, cfg, seed) for i in range(cfg.writers)]
        self.subscribers = [Subscriber(f"d-{ch}", ch, rec, urls, cfg, seed) for ch in channels]
        self.subscribers += [Subscriber(f"q{i}", channels[0], rec, urls, cfg, seed, queue="q")
                             for i in range(cfg.queue_members)]

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.ensure_future(s.run(stop)) for s in self.subscribers]
        await asyncio.sleep(0.5)  # subscribers first, so most deliveries are live
        tasks += [asyncio.ensure_future(w.run(stop)) for w in self.writers]
        await asyncio.gather(*tasks)

    @property
    def attempted(self) -> int:
        return sum(w.counter for w in self.writers)
