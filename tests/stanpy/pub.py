"""Judge: publish N messages with stan.py (asyncio-nats-streaming), print every PubAck as JSON lines.

    .venv-stanpy/bin/python tests/stanpy/pub.py --url nats://127.0.0.1:4222 --client ID --channel foo
        [--cluster test-cluster] [--count 1] [--data 'msg-{i}'] [--first 1]
        [--sync] [--pub-ack-wait MS] [--deadline MS] [--hold] [--then close|crash]

Same flags, commands and events as tests/js/stan/pub.js:
{i} in --data is replaced by the message's index (--first, --first+1, ...).
--count 0 only connects and closes (a connect judge).
--sync waits for each PubAck before the next publish (stan.py's blocking
publish); otherwise all are sent with an ack handler and awaited together.
--hold keeps the session open after publishing until the command "close"
(or "crash") arrives on stdin, stdin ends, or --deadline passes.
Events: connected, ack {i, guid, error}, published {ok, failed, errors},
closed, error {stage, error}, done.
"""
from __future__ import annotations

import asyncio

from _judge import (arm_hard_deadline, base_parser, close_session, connect, emit, err_text,
                    exit_code, hard_exit, start_command_reader)


def parse_args():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--data", default="msg-{i}")
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--sync", action="store_true")
    parser.add_argument("--pub-ack-wait", type=float, default=30000, help="ms")
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--then", choices=["close", "crash"], default="close")
    args = parser.parse_args()
    if args.count > 0 and not args.channel:
        parser.error("--channel is required when --count > 0")
    return args


async def main(args) -> int:
    loop = asyncio.get_running_loop()
    commands = start_command_reader(loop)
    conn = await connect(args)
    if conn is None:
        return exit_code()
    nc, sc = conn
    result = {"ok": 0, "failed": 0, "errors": []}
    ack_wait = args.pub_ack_wait / 1000.0

    def record(i: int, guid: str | None, error: str | None) -> None:
        if error:
            result["failed"] += 1
            result["errors"].append(error)
        else:
            result["ok"] += 1
        emit("ack", i=i, guid=guid, error=error)

    async def publish_all():
        indexes = range(args.first, args.first + args.count)
        if args.sync:
            for i in indexes:
                data = args.data.replace("{i}", str(i)).encode()
                try:
                    ack = await sc.publish(args.channel, data, ack_wait=ack_wait)
                    record(i, ack.guid, ack.error or None)
                except asyncio.TimeoutError:
                    record(i, None, "stan: publish ack timeout")
                except Exception as exc:  # noqa: BLE001
                    record(i, None, err_text(exc))
            return
        futures = []
        for i in indexes:
            fut = loop.create_future()

            async def handler(ack, i=i, fut=fut):
                record(i, ack.guid, ack.error or None)
                if not fut.done():
                    fut.set_result(None)
            data = args.data.replace("{i}", str(i)).encode()
            try:
                await sc.publish(args.channel, data, ack_handler=handler)
                futures.append((i, fut))
            except Exception as exc:  # noqa: BLE001
                record(i, None, err_text(exc))
        for i, fut in futures:
            try:
                await asyncio.wait_for(fut, ack_wait)
            except asyncio.TimeoutError:
                record(i, None, "stan: publish ack timeout")

    how = "close"
    end = loop.time() + args.deadline / 1000.0
    try:
        await asyncio.wait_for(publish_all(), end - loop.time())
        emit("published", **result)
        if args.hold:
            while True:
                words = await asyncio.wait_for(commands.get(), max(0.0, end - loop.time()))
                if words[0] in ("close", "eof"):
                    break
                if words[0] == "crash":
                    how = "crash"
                    break
                emit("error", stage="command", error=f"unknown command {words[0]}")
        elif args.then == "crash":
            how = "crash"
        reason = "command" if args.hold else "published"
    except asyncio.TimeoutError:
        emit("deadline", after_ms=args.deadline)
        reason = "deadline"
    emit("done", ok=result["ok"], failed=result["failed"], reason=reason)
    if how != "crash":
        await close_session(nc, sc)
    return exit_code()


if __name__ == "__main__":
    arguments = parse_args()
    arm_hard_deadline(arguments.deadline + 5000)
    hard_exit(asyncio.run(main(arguments)))
