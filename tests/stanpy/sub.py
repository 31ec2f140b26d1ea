"""Judge: subscribe with stan.py (asyncio-nats-streaming) and print what arrives as JSON lines.

    .venv-stanpy/bin/python tests/stanpy/sub.py --url nats://127.0.0.1:4222 --client ID --channel foo
        [--cluster test-cluster] [--start new|last|first|seq:N|delta:MS|time:EPOCH_MS]
        [--durable NAME] [--queue GROUP] [--ack auto|manual|none]
        [--ack-wait SECONDS] [--max-inflight N]
        [--count N] [--deadline MS] [--then disconnect|close|unsubscribe|crash]

Same flags, commands and events as tests/js/stan/sub.js:
--ack auto: the library acks after the callback; manual: manual acks, the judge
acks each message as it prints it; none: manual acks, messages are held until
the command "ack".
Stops after --count messages (0: no count) or at --deadline, doing --then:
disconnect = close the connection (durables go offline), close = close the
subscription then the connection, unsubscribe = unsubscribe then close the
connection, crash = exit at once without telling the server.
stdin commands: ack | close | unsubscribe | disconnect | crash | stop (= do --then now)
| unsub (unsubscribe only, stay connected; stan.py sends it again if repeated)
| subclose (close the subscription only, stay connected).
Events: connected, ready, msg, acked, deadline, unsubscribed, sub-closed,
closed, error {stage, error}, done {received, reason}.

stan.py quirk: a time start is sent as whole seconds (int(now - time) * 1e9),
so delta:MS is truncated to seconds.
"""
from __future__ import annotations

import asyncio
import time

from _judge import (arm_hard_deadline, base_parser, close_session, connect, emit,
                    err_text, exit_code, hard_exit, start_command_reader)


def parse_args():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--start", default="new")
    parser.add_argument("--durable")
    parser.add_argument("--queue")
    parser.add_argument("--ack", choices=["auto", "manual", "none"], default="auto")
    parser.add_argument("--ack-wait", type=int, help="seconds")
    parser.add_argument("--max-inflight", type=int)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--then", choices=["disconnect", "close", "unsubscribe", "crash"],
                        default="disconnect")
    args = parser.parse_args()
    if not args.channel:
        parser.error("--channel is required")
    return args


def start_kwargs(start: str) -> dict:
    if start == "new":
        return {"start_at": "new_only"}
    if start == "last":
        return {"start_at": "last_received"}
    if start in ("first", "all"):
        return {"deliver_all_available": True}
    if start.startswith("seq:"):
        return {"start_at": "sequence", "sequence": int(start[4:])}
    if start.startswith("delta:"):
        return {"start_at": "time", "time": time.time() - float(start[6:]) / 1000.0}
    if start.startswith("time:"):
        return {"start_at": "time", "time": float(start[5:]) / 1000.0}
    raise SystemExit(f"unknown --start {start}")


async def main(args) -> int:
    loop = asyncio.get_running_loop()
    commands = start_command_reader(loop)
    conn = await connect(args)
    if conn is None:
        return exit_code()
    nc, sc = conn
    received: list[int] = []
    held = []
    finished = asyncio.Event()
    reason = {"why": None, "how": None}

    def finish(why: str, how: str | None = None) -> None:
        if not finished.is_set():
            reason["why"], reason["how"] = why, how or args.then
            finished.set()

    async def on_msg(msg):
        if finished.is_set():
            return
        proto = msg.proto
        received.append(proto.sequence)
        emit("msg", seq=proto.sequence, subject=proto.subject,
             data=proto.data.decode("utf-8", errors="replace"),
             redelivered=proto.redelivered,
             # stan.py 0.4.0's MsgProto predates field 7: None means "not decoded"
             redeliveryCount=getattr(proto, "redeliveryCount", None),
             timestamp=proto.timestamp)
        if args.ack == "manual":
            await sc.ack(msg)
        elif args.ack == "none":
            held.append(msg)
        if args.count > 0 and len(received) >= args.count:
            finish("count")

    async def on_error(exc):
        emit("error", stage="message", error=err_text(exc))

    kwargs = start_kwargs(args.start)
    if args.durable:
        kwargs["durable_name"] = args.durable
    if args.queue:
        kwargs["queue"] = args.queue
    if args.ack_wait is not None:
        kwargs["ack_wait"] = args.ack_wait
    if args.max_inflight is not None:
        kwargs["max_inflight"] = args.max_inflight
    sub = None
    try:
        sub = await sc.subscribe(args.channel, cb=on_msg, error_cb=on_error,
                                 manual_acks=args.ack != "auto", **kwargs)
        emit("ready", channel=args.channel, queue=args.queue, durable=args.durable)
    except Exception as exc:  # noqa: BLE001
        emit("error", stage="subscribe", error=err_text(exc) or "stan: subscribe request timeout")
        finish("error")

    async def sub_request(kind: str) -> None:
        try:
            if kind == "close":
                await asyncio.wait_for(sub.close(), 5)
                emit("sub-closed")
            else:
                await asyncio.wait_for(sub.unsubscribe(), 5)
                emit("unsubscribed")
        except Exception as exc:  # noqa: BLE001
            emit("error", stage=kind, error=err_text(exc))

    async def command_loop():
        while True:
            words = await commands.get()
            cmd = words[0]
            if cmd == "ack":
                seqs = [m.proto.sequence for m in held]
                for m in held:
                    await sc.ack(m)
                held.clear()
                emit("acked", seqs=seqs)
            elif cmd == "unsub" and sub is not None:
                await sub_request("unsubscribe")
            elif cmd == "subclose" and sub is not None:
                await sub_request("close")
            elif cmd == "stop":
                finish("command")
            elif cmd in ("close", "unsubscribe", "disconnect", "crash"):
                finish("command", cmd)
            elif cmd != "eof":
                emit("error", stage="command", error=f"unknown command {cmd}")

    commander = asyncio.ensure_future(command_loop())
    try:
        await asyncio.wait_for(finished.wait(), args.deadline / 1000.0)
    except asyncio.TimeoutError:
        emit("deadline", after_ms=args.deadline)
        finish("deadline")
    commander.cancel()
    emit("done", received=len(received), reason=reason["why"])
    how = reason["how"]
    if how == "crash":
        return exit_code()
    if how in ("close", "unsubscribe") and sub is not None:
        await sub_request(how)
    await close_session(nc, sc)
    return exit_code()


if __name__ == "__main__":
    arguments = parse_args()
    arm_hard_deadline(arguments.deadline + 5000)
    hard_exit(asyncio.run(main(arguments)))
