"""An everyday program with the Runnel STAN client.

It connects to cluster `test-cluster`, publishes "hello message N" to channel `foo1`
once a second, and subscribes to `foo1` starting with the last message stored there,
logging each one it receives. Ctrl-C stops it: the subscription and the connection are
closed cleanly.

    python examples/hello.py                          # nats://127.0.0.1:4222
    python examples/hello.py -s nats://host:4222 -id my-app
    python examples/hello.py --count 3                # stop after 3 messages

Start a node first: `runnel serve -st file -dir ./data` (or `make run`).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from broker import client

CLUSTER_ID = "test-cluster"
CHANNEL = "foo1"

log = logging.getLogger("hello")


async def run(servers: list[str], client_id: str, count: int, interval_s: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def on_lost(conn: client.Connection, error: client.StanError) -> None:
        log.error("connection lost: %s", error)
        stop.set()

    try:
        conn = await client.connect(CLUSTER_ID, client_id, servers=servers,
                                    on_connection_lost=on_lost)
    except client.StanError as exc:
        log.error("cannot connect: %s", exc)
        return 1
    log.info("connected to %s as %s", CLUSTER_ID, client_id)

    received = 0

    def on_message(msg: client.Msg) -> None:
        nonlocal received
        received += 1
        log.info("received #%d on %s: %s%s", msg.sequence, msg.channel, msg.data.decode(),
                 " (redelivered)" if msg.redelivered else "")

    # The last stored message first, then every new one; acked when on_message returns.
    sub = await conn.subscribe(CHANNEL, on_message,
                               start_at=client.StartPosition.LAST_RECEIVED)
    try:
        sent = 0
        while not stop.is_set() and (count == 0 or sent < count):
            sent += 1
            text = f"hello message {sent}"
            try:
                await conn.publish(CHANNEL, text)       # waits for the server's PubAck
                log.info("published: %s", text)
            except client.StanError as exc:
                log.warning("publish failed: %s", exc)
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except asyncio.TimeoutError:
                pass
        if count and not stop.is_set():                 # let the last ones arrive
            for _ in range(50):
                if received >= count:
                    break
                await asyncio.sleep(0.1)
    finally:
        if not conn.is_closed:
            await sub.close()
            await conn.close()
            log.info("closed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--server", action="append", help="NATS URL (repeatable)")
    parser.add_argument("-id", "--clientid", default="hello-example", help="client ID")
    parser.add_argument("--count", type=int, default=0, help="stop after N messages")
    parser.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return asyncio.run(run(args.server or [client.DEFAULT_NATS_URL], args.clientid,
                           args.count, args.interval))


if __name__ == "__main__":
    raise SystemExit(main())
