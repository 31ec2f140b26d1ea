"""Commit latency and pipelined throughput of raft/ (the figures in DESIGN.md).

    .venv/bin/python -m raft.bench            # every configuration (~2 min)
    .venv/bin/python -m raft.bench --quick    # fewer proposals
    .venv/bin/python -m raft.bench critical   # pysyncobj's CRITICAL log, with/without the fix

Each 3-node configuration runs the two followers as subprocesses
(``python -m raft.bench serve ...``) so that every node has its own GIL, as in
production. The followers get longer election timeouts so the measuring
process wins the first election and proposes as leader.

Latency: proposals one at a time (p50/p99 of propose() on the event loop).
Throughput: small commands with ``--window`` proposals in flight.
Not a test: no assertion, nothing in tests/ calls it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from raft.config import RaftConfig
from raft.node import RaftNode


def _ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _counter_apply():
    state = {"n": 0}

    def apply(index: int, command: bytes) -> int:
        state["n"] += 1
        return index

    return apply


async def _serve(args) -> None:
    """A follower process: runs until SIGTERM."""
    config = RaftConfig(self_address=args.address, peers=tuple(args.peers.split(",")),
                        data_dir=args.dir, sync=args.sync == "on", lean_transport=args.lean == "1",
                        election_timeout_min_s=2.0, election_timeout_max_s=3.0)
    node = RaftNode(config, _counter_apply())
    await node.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await node.stop()


def _spawn_followers(addresses: list[str], root: str, sync: bool, lean: bool) -> list:
    procs = []
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for address in addresses[1:]:
        peers = ",".join(a for a in addresses if a != address)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "raft.bench", "serve", "--address", address, "--peers", peers,
             "--dir", os.path.join(root, address.replace(":", "_")),
             "--sync", "on" if sync else "off", "--lean", "1" if lean else "0"], cwd=project))
    return procs


async def _latency(node: RaftNode, payload: bytes, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await node.propose(payload, timeout=10)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.99)] * 1e3


async def _throughput(node: RaftNode, payload: bytes, count: int, window: int) -> float:
    sem = asyncio.Semaphore(window)

    async def one() -> None:
        try:
            await node.propose(payload, timeout=60)
        finally:
            sem.release()

    tasks = []
    start = time.perf_counter()
    for _ in range(count):
        await sem.acquire()
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    return count / (time.perf_counter() - start)


async def _run_config(nodes: int, sync: bool, lean: bool, payload_bytes: int, args) -> dict:
    root = tempfile.mkdtemp(prefix="raft-bench-")
    addresses = [f"127.0.0.1:{p}" for p in _ports(nodes)]
    procs = _spawn_followers(addresses, root, sync, lean) if nodes > 1 else []
    config = RaftConfig(self_address=addresses[0], peers=tuple(addresses[1:]),
                        data_dir=os.path.join(root, "leader"), sync=sync, lean_transport=lean)
    node = RaftNode(config, _counter_apply())
    try:
        await node.start()
        await node.wait_leader(20)
        if not node.status().is_leader:
            print("  (note: the measuring node is a follower; proposals are forwarded)")
        payload = os.urandom(payload_bytes)
        await _latency(node, payload, 50)  # warm-up
        p50, p99 = await _latency(node, payload, args.latency_count)
        fsyncs = node.status().fsyncs
        rate = await _throughput(node, payload, args.count, args.window)
        synced = node.status().fsyncs - fsyncs
        per_fsync = args.count / synced if synced else float("nan")
        return {"p50_ms": p50, "p99_ms": p99, "cmds_s": rate, "cmds_per_fsync": per_fsync}
    finally:
        await node.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


async def _main(args) -> None:
    configs = [(1, True, True), (1, False, True), (3, True, True), (3, False, True),
               (3, True, False)]
    print(f"payload {args.payload} B, throughput: {args.count} proposals, {args.window} in flight; "
          f"latency: {args.latency_count} sequential proposals; loadavg {os.getloadavg()[0]:.1f}")
    print("| nodes | fsync | transport | commit p50 | commit p99 | throughput | cmds/fsync |")
    print("|---|---|---|---|---|---|---|")
    for nodes, sync, lean in configs:
        r = await _run_config(nodes, sync, lean, args.payload, args)
        transport = "none" if nodes == 1 else "lean msgpack" if lean else "pickle+zlib"
        print(f"| {nodes} | {'on' if sync else 'off'} | {transport} "
              f"| {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['cmds_s']:,.0f}/s "
              f"| {'-' if not sync else format(r['cmds_per_fsync'], '.0f')} |", flush=True)


def _demo_classes(resent: list[int]):
    """pysyncobj alone: a counter SyncObj, a transport that counts the entries a
    follower receives again (and truncates), and the same with the fix."""
    from pysyncobj import SyncObj, SyncObjConf, replicated
    from pysyncobj.transport import TCPTransport

    class Counting(TCPTransport):
        def _onMessageReceived(self, node, message):
            if message.get("type") == "append_entries" and message.get("entries"):
                last = self._syncObj._SyncObj__raftLog[-1][1]
                resent[0] += max(0, last - message["prevLogIdx"])  # truncated, re-appended
            super()._onMessageReceived(node, message)

    class Fixed(Counting):
        def _onMessageReceived(self, node, message):
            nxt = self._syncObj._SyncObj__raftNextIndex
            before = nxt.get(node)
            super()._onMessageReceived(node, message)
            if (message.get("type") == "next_node_idx" and message["success"]
                    and not message["reset"] and before is not None
                    and self._syncObj._isLeader() and nxt.get(node, 0) < before):
                nxt[node] = before

    class Counter(SyncObj):
        def __init__(self, address, others, transport):
            self.log = []
            super().__init__(address, others, SyncObjConf(appendEntriesUseBatch=False),
                             transportClass=transport)

        @replicated
        def add(self, value):
            self.log.append(value)

    return Counting, Fixed, Counter


def _critical_demo(count: int) -> None:
    """pysyncobj alone (its defaults but appendEntriesUseBatch=False, as in
    ARCHITECTURE.md §6), 3 in-process nodes, pipelined proposals on every node:
    count re-sent entries and CRITICAL "truncating already-applied" logs with and
    without the monotonic-nextIndex fix. No fsync, no RaftNode: the mechanism."""
    import logging
    import threading

    criticals: list[str] = []
    resent = [0]

    class Count(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.CRITICAL:
                criticals.append(record.getMessage())

    logging.getLogger("pysyncobj").addHandler(Count())
    counting, fixed, counter = _demo_classes(resent)
    for name, transport in (("pysyncobj as is", counting), ("monotonic nextIndex", fixed)):
        criticals.clear()
        resent[0] = 0
        addresses = [f"127.0.0.1:{p}" for p in _ports(3)]
        objs = [counter(a, [x for x in addresses if x != a], transport) for a in addresses]
        while not any(o._isLeader() for o in objs):
            time.sleep(0.05)
        done = threading.Semaphore(0)
        for i in range(count):
            objs[i % 3].add(i, callback=lambda res, err: done.release())
        for _ in range(count):
            done.acquire(timeout=60)
        deadline = time.monotonic() + 20
        while any(len(o.log) < count for o in objs) and time.monotonic() < deadline:
            time.sleep(0.05)  # followers apply once they learn the commit index
        same = objs[0].log == objs[1].log == objs[2].log
        print(f"{name}: {resent[0]} entries re-sent and truncated on followers, "
              f"{len(criticals)} CRITICAL logs, replicas identical: {same}, "
              f"{[len(o.log) for o in objs]} entries applied")
        for o in objs:
            o.destroy()
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m raft.bench")
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve", "critical"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--latency-count", type=int, default=500)
    parser.add_argument("--address")
    parser.add_argument("--peers")
    parser.add_argument("--dir")
    parser.add_argument("--sync", default="on")
    parser.add_argument("--lean", default="1")
    args = parser.parse_args()
    if args.quick:
        args.count, args.latency_count = 5000, 200
    if args.mode == "critical":
        _critical_demo(args.count)
        return
    asyncio.run(_serve(args) if args.mode == "serve" else _main(args))


if __name__ == "__main__":
    main()
