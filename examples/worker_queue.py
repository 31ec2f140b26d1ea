"""A worker queue with the Runnel STAN client: a durable queue group and manual acks.

Producers publish jobs to channel `jobs`. Workers join the durable queue group
`workers` (durable name `pool`): each job goes to one worker, which acks it only once
the work is done. A job whose worker dies before acking is redelivered to another after
the ack wait. When every worker is gone the group keeps its place (the durable "shadow")
and the next worker to start continues from there: no job is lost or done twice by a
healthy pool.

    python examples/worker_queue.py produce --jobs 10
    python examples/worker_queue.py work --workers 3          # until Ctrl-C
    python examples/worker_queue.py work --count 10           # stop after 10 jobs

Options: -s URL (repeatable), -c CLUSTER (default test-cluster).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal

from broker import client

CHANNEL = "jobs"
GROUP = "workers"
DURABLE = "pool"

log = logging.getLogger("workers")


async def produce(servers: list[str], cluster_id: str, jobs: int) -> int:
    client_id = f"producer-{os.getpid()}"
    async with await client.connect(cluster_id, client_id, servers=servers) as conn:
        for n in range(1, jobs + 1):
            await conn.publish(CHANNEL, f"job {n}")
            log.info("queued job %d", n)
    return 0


async def work(servers: list[str], cluster_id: str, workers: int, count: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    done = 0

    async def start_worker(name: str) -> tuple[client.Connection, client.Subscription]:
        conn = await client.connect(cluster_id, f"{name}-{os.getpid()}", servers=servers,
                                    on_connection_lost=lambda c, e: stop.set())

        async def on_job(msg: client.Msg) -> None:
            nonlocal done
            job = msg.data.decode()
            log.info("%s: %s%s", name, job, " (again: its worker did not finish)"
                     if msg.redelivered else "")
            await asyncio.sleep(random.uniform(0.01, 0.1))   # the work
            await msg.ack()                                  # done: never redelivered
            done += 1
            log.info("%s: %s done", name, job)
            if count and done >= count:
                stop.set()

        sub = await conn.subscribe(CHANNEL, on_job, queue=GROUP, durable_name=DURABLE,
                                   manual_acks=True, max_inflight=1, ack_wait=30,
                                   start_at=client.StartPosition.FIRST)
        return conn, sub

    pool = [await start_worker(f"worker-{i}") for i in range(1, workers + 1)]
    log.info("%d worker(s) waiting for jobs on %r", workers, CHANNEL)
    await stop.wait()
    for conn, sub in pool:
        if not conn.is_closed:
            # close, not unsubscribe: the group keeps its position for the next workers
            await sub.close()
            await conn.close()
    log.info("stopped after %d job(s)", done)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--server", action="append", help="NATS URL (repeatable)")
    parser.add_argument("-c", "--cluster", default="test-cluster", help="cluster ID")
    commands = parser.add_subparsers(dest="command", required=True)
    producer = commands.add_parser("produce", help="publish jobs")
    producer.add_argument("--jobs", type=int, default=10)
    worker = commands.add_parser("work", help="run workers until Ctrl-C")
    worker.add_argument("--workers", type=int, default=1, help="workers in this process")
    worker.add_argument("--count", type=int, default=0, help="stop after N jobs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    servers = args.server or [client.DEFAULT_NATS_URL]
    if args.command == "produce":
        return asyncio.run(produce(servers, args.cluster, args.jobs))
    return asyncio.run(work(servers, args.cluster, args.workers, args.count))


if __name__ == "__main__":
    raise SystemExit(main())
