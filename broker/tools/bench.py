"""`runnel bench`: publish and delivery throughput and latency of a STAN server, in the
style of nats-bench and stan-bench, on broker/client.

Every publisher and every subscriber is its own client (own NATS connection, own client
ID), and all of them run in this one Python process, on one event loop (uvloop when it
is installed): the numbers are what one Python process can drive, not what the server
could take from many.

A run: connect the subscribers (start position NEW_ONLY, so old messages of the channel
are not counted), then the publishers; the clock starts; each publisher sends its share
of ``-n`` (sync: awaiting each PubAck; ``-a``: ``publish_async`` with at most ``-mpa``
PubAcks in flight); the run ends when every PubAck is in and every subscriber holds every
stored message, or when nothing has moved for IDLE_S seconds (then: incomplete, exit 1).

Each payload starts with the ``time.monotonic_ns()`` of its publish call (8 bytes, big
endian, when ``-ms`` >= 8), so that the subscriber's callback computes the delivery
latency; the publish latency is the publish call to the PubAck. Ctrl-C (or SIGTERM)
stops the run, prints what was measured and exits 130. Exit 0: complete, no error; 1: a
connection, publish or delivery failed; 2: bad usage.
"""
from __future__ import annotations

import asyncio
import json
import signal
import struct
import sys
import time
import uuid
from array import array
from functools import partial
from typing import Any

from ..client import Connection, ConnectionClosed, Msg, StanError, StartPosition, connect
from . import bench_plot
from .bench_stats import Progress, PubStats, SubStats, results, table
from .pub import Flag, UsageError, parse_flags, setup_logging

USAGE = """usage: runnel bench [options] [<channel>]

Measure publish and delivery throughput and latency of a NATS Streaming server. Every
publisher and subscriber is its own client; all run in this one Python process, on one
event loop: this is what one Python process can drive.

Options:
	-s,  --server   <url>        NATS server URL(s) (repeat, or separate with commas)
	-c,  --cluster  <cluster ID> NATS Streaming cluster ID (default: test-cluster)
	-id, --clientid <prefix>     client ID prefix (default: bench-<random>; clients are
	                             <prefix>-pub-<i> and <prefix>-sub-<i>)
	-np  <count>                 number of concurrent publishers (default: 1)
	-ns  <count>                 number of concurrent subscribers (default: 1)
	-n   <count>                 number of messages to publish, in total (default: 10000)
	-ms  <bytes>                 size of a message (default: 128; >= 8 to measure delivery
	                             latency: the payload carries the send time)
	-mpa, --window <count>       max PubAcks in flight per publisher, with -a (default: 1000)
	-a,  --async                 async publish (up to -mpa PubAcks awaited at once);
	                             otherwise each publish waits for its PubAck
	--channel <name>             channel to use (default: bench)
	--plot <file.png>            write a latency histogram and throughput-over-time chart
	--json                       print the results as JSON instead of the table
	--quiet                      no progress line (also when stdout or stderr is not a TTY)
"""

FLAGS = (Flag(("s", "server"), "string", "servers"),
         Flag(("c", "cluster"), "string", "cluster_id"),
         Flag(("id", "clientid"), "string", "client_id"),
         Flag(("np",), "int", "publishers"),
         Flag(("ns",), "int", "subscribers"),
         Flag(("n",), "int", "msgs"),
         Flag(("ms",), "int", "msg_size"),
         Flag(("mpa", "window"), "int", "window"),
         Flag(("a", "async"), "bool", "async"),
         Flag(("channel",), "string", "channel"),
         Flag(("plot",), "string", "plot"),
         Flag(("json",), "bool", "json"),
         Flag(("quiet",), "bool", "quiet"),
         Flag(("h", "help"), "bool", "help"))

DEFAULTS: dict[str, Any] = dict(cluster_id="test-cluster", client_id="", publishers=1,
                                subscribers=1, msgs=10000, msg_size=128, window=1000,
                                channel="", plot="", help=False, quiet=False, json=False,
                                **{"async": False})

IDLE_S = 10.0          # no PubAck and no delivery for this long: the run is incomplete
TICK_S = 0.1           # progress line refresh
STAMP = struct.Struct(">q")


def main(argv: list[str]) -> int:
    try:
        options = parse_options(argv)
    except UsageError as exc:
        print(f"runnel bench: {exc}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    if options["help"]:
        print(USAGE, end="")
        return 0
    if options["plot"] and not bench_plot.available():
        print("runnel bench: --plot needs matplotlib (pip install 'runnel[plot]')",
              file=sys.stderr)
        return 1
    setup_logging("bench")
    bench = Bench(options)
    try:
        status = _run_loop(bench.main)
    except KeyboardInterrupt:        # before our handler was installed, or after it
        bench.progress.clear()
        return 130
    try:
        return bench.report(status)
    except KeyboardInterrupt:        # Ctrl-C while drawing the plot
        return 130
    except BrokenPipeError:          # `runnel bench --json | head`
        sys.stdout = None            # nothing more to flush at exit
        return 1


def parse_options(argv: list[str]) -> dict[str, Any]:
    options, rest = parse_flags(argv, FLAGS, DEFAULTS)
    if len(rest) > 1 or (rest and options["channel"]):
        raise UsageError(f"unexpected arguments: {' '.join(rest)}")
    options["channel"] = options["channel"] or (rest[0] if rest else "bench")
    for key, flag, low in (("publishers", "np", 1), ("subscribers", "ns", 0), ("msgs", "n", 1),
                           ("msg_size", "ms", 0), ("window", "mpa", 1)):
        if options[key] < low:
            raise UsageError(f"-{flag} must be at least {low}")
    if options["msgs"] < options["publishers"]:
        raise UsageError("-n must be at least -np (every publisher sends at least one)")
    if options["plot"] and not options["plot"].lower().endswith(".png"):
        raise UsageError("--plot writes a PNG: give a file name ending in .png")
    options["client_id"] = options["client_id"] or f"bench-{uuid.uuid4().hex[:8]}"
    return options


def _run_loop(coroutine_factory) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine_factory())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine_factory())


class Bench:
    def __init__(self, options: dict[str, Any]):
        self.o = options
        self.progress = Progress(sys.stderr, enabled=not options["quiet"] and
                                 sys.stdout.isatty() and sys.stderr.isatty())
        n, np_ = options["msgs"], options["publishers"]
        self.pubs = [PubStats(i + 1, n // np_ + (1 if i < n % np_ else 0)) for i in range(np_)]
        self.subs = [SubStats(i + 1) for i in range(options["subscribers"])]
        self.conns: list[Connection] = []
        self.t0 = 0                      # monotonic ns at the start of publishing
        self.interrupted = False
        self.closing = False
        self.complete = False
        self.notes: list[str] = []
        self.event_loop = "asyncio"

    # -- the run --

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self.event_loop = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        work = asyncio.ensure_future(self._run())
        stopping = asyncio.ensure_future(stop.wait())
        ticker = asyncio.ensure_future(self._tick())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ticker.cancel()
            self.progress.clear()
            if not work.done():
                self.interrupted = True
                work.cancel()
            stopping.cancel()
            await asyncio.gather(work, ticker, stopping, return_exceptions=True)
        status = 130 if self.interrupted else work.result()
        self.closing = True
        self.progress.status("closing the connections...")
        await self._close_all()
        self.progress.clear()
        return status

    async def _run(self) -> int:
        try:
            async with asyncio.TaskGroup() as group:
                for sub in self.subs:
                    group.create_task(self._start_subscriber(sub))
            async with asyncio.TaskGroup() as group:
                pub_conns = [group.create_task(self._connect(f"pub-{p.index}"))
                             for p in self.pubs]
        except* StanError as errors:
            self.notes.append(f"runnel bench: {errors.exceptions[0]}")
        if self.notes:
            return 1
        if self.subs and self.o["msg_size"] < STAMP.size:
            self.notes.append(f"deliver latency not measured: -ms below {STAMP.size} leaves no "
                              "room for the send time")
        self.t0 = time.monotonic_ns()
        publish = self._publish_async if self.o["async"] else self._publish_sync
        await asyncio.gather(*(publish(task.result(), stats)
                               for task, stats in zip(pub_conns, self.pubs)))
        await self._drain()
        errors = sum(p.errors for p in self.pubs)
        if errors:
            first = next(p.first_error for p in self.pubs if p.first_error)
            self.notes.append(f"{errors} publish(es) failed; first error: {first}")
        return 0 if self.complete and not errors else 1

    async def _connect(self, role: str) -> Connection:
        self.progress.status(f"connecting {role}...")
        conn = await connect(self.o["cluster_id"], f"{self.o['client_id']}-{role}",
                             servers=self.o["servers"], max_pub_acks_inflight=self.o["window"],
                             on_connection_lost=self._on_lost)
        self.conns.append(conn)
        return conn

    def _on_lost(self, conn: Connection, error: StanError) -> None:
        self.notes.append(f"client {conn.client_id}: connection lost: {error}")

    async def _start_subscriber(self, stats: SubStats) -> None:
        conn = await self._connect(f"sub-{stats.index}")
        stamped = self.o["msg_size"] >= STAMP.size

        def on_msg(msg: Msg) -> None:
            now = time.monotonic_ns()
            if msg.redelivered:
                stats.redelivered += 1
                return
            stats.received += 1
            stats.at.append(now - self.t0)
            if stamped and len(msg.data) >= STAMP.size:
                stats.lat.append(now - STAMP.unpack_from(msg.data)[0])
        await conn.subscribe(self.o["channel"], on_msg, start_at=StartPosition.NEW_ONLY)

    async def _publish_sync(self, conn: Connection, stats: PubStats) -> None:
        payload, channel = bytearray(self.o["msg_size"]), self.o["channel"]
        stamped = len(payload) >= STAMP.size
        for _ in range(stats.planned):
            sent_ns = time.monotonic_ns()
            if stamped:
                STAMP.pack_into(payload, 0, sent_ns)
            stats.sent += 1
            try:
                await conn.publish(channel, payload)
            except ConnectionClosed as exc:
                stats.fail(exc)
                return
            except StanError as exc:
                stats.fail(exc)
                continue
            now = time.monotonic_ns()
            stats.acked += 1
            stats.lat.append(now - sent_ns)
            stats.at.append(now - self.t0)

    async def _publish_async(self, conn: Connection, stats: PubStats) -> None:
        payload, channel = bytearray(self.o["msg_size"]), self.o["channel"]
        stamped = len(payload) >= STAMP.size
        all_resolved = asyncio.Event()

        def on_ack(sent_ns: int, guid: str, error: StanError | None) -> None:
            now = time.monotonic_ns()
            if error is not None:
                if self.closing:        # interrupted: the close fails what is in flight
                    return
                stats.fail(error)
            else:
                stats.acked += 1
                stats.lat.append(now - sent_ns)
                stats.at.append(now - self.t0)
            if stats.sent == stats.planned and stats.resolved >= stats.sent:
                all_resolved.set()

        for i in range(stats.planned):
            sent_ns = time.monotonic_ns()
            if stamped:
                STAMP.pack_into(payload, 0, sent_ns)
            try:
                await conn.publish_async(channel, payload, partial(on_ack, sent_ns))
            except StanError as exc:
                stats.fail(exc)         # not sent: counts as planned, failed
                if isinstance(exc, ConnectionClosed):
                    stats.errors += stats.planned - i - 1
                    stats.sent = stats.planned
                    break
            stats.sent += 1
            if i % 128 == 127:
                await asyncio.sleep(0)  # let the other publishers and the acks in
        if stats.resolved >= stats.sent:
            all_resolved.set()
        await all_resolved.wait()       # each PubAck is bounded by pub_ack_wait (30 s)

    async def _drain(self) -> None:
        """Wait until every subscriber has every stored message, or nothing moves."""
        expected = sum(p.acked for p in self.pubs)
        last, last_change = -1, time.monotonic()
        while True:
            delivered = sum(s.received for s in self.subs)
            if all(s.received >= expected for s in self.subs):
                self.complete = True
                return
            if delivered != last:
                last, last_change = delivered, time.monotonic()
            elif time.monotonic() - last_change > IDLE_S:
                self.notes.append(f"incomplete: no delivery for {IDLE_S:g}s; delivered "
                                  f"{delivered:,} of {expected * len(self.subs):,}")
                return
            await asyncio.sleep(0.02)

    async def _tick(self) -> None:
        planned = sum(p.planned for p in self.pubs)
        while True:
            await asyncio.sleep(TICK_S)
            if self.t0:
                acked = sum(p.acked for p in self.pubs)
                self.progress.update((time.monotonic_ns() - self.t0) / 1e9, acked, planned,
                                     sum(s.received for s in self.subs),
                                     planned * len(self.subs))

    async def _close_all(self) -> None:
        async def close(conn: Connection) -> None:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except (StanError, asyncio.TimeoutError):
                pass
        await asyncio.gather(*(close(conn) for conn in self.conns))

    # -- the results --

    def config(self) -> dict[str, Any]:
        o = self.o
        return {"servers": o["servers"], "cluster_id": o["cluster_id"],
                "client_id_prefix": o["client_id"], "channel": o["channel"],
                "publishers": o["publishers"], "subscribers": o["subscribers"],
                "msgs": o["msgs"], "msg_size": o["msg_size"], "async": o["async"],
                "window": o["window"], "event_loop": self.event_loop}

    def report(self, status: int) -> int:
        if status == 130:
            self.notes.append("interrupted: partial results" if self.t0 else
                              "interrupted before publishing: nothing measured")
        if not self.t0:                  # never got to publish: nothing measured
            for note in self.notes:
                print(note, file=sys.stderr)
            return status
        res = results(self.config(), self.pubs, self.subs, interrupted=status == 130,
                      complete=self.complete, notes=self.notes)
        if self.o["plot"]:
            try:
                bench_plot.plot(self.o["plot"], res, _merge(p.lat for p in self.pubs),
                                _merge(s.lat for s in self.subs),
                                _merge(p.at for p in self.pubs), _merge(s.at for s in self.subs))
                res["plot"] = self.o["plot"]
            except OSError as exc:
                res["notes"].append(f"plot not written: {exc}")
                status = status or 1
        if self.o["json"]:
            print(json.dumps(res, indent=2))
        else:
            print(table(res), end="")
            if "plot" in res:
                print(f"plot written to {res['plot']}")
        sys.stdout.flush()
        return status


def _merge(parts) -> array:
    merged = array("q")
    for part in parts:
        merged.extend(part)
    return merged
