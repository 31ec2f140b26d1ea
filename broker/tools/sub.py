"""`runnel sub [flags] CHANNEL`: stan.go's example ``stan-sub``, on broker/client.

Flags as the example's, parsed as Go's ``flag`` package does (before the channel):

    -s,  --server   URL   NATS server URL; repeat it or separate with commas
    -c,  --cluster  ID    cluster ID (default test-cluster)
    -id, --clientid ID    client ID (default stan-sub)
    --seq N               start at sequence N
    --all                 deliver all available messages
    --last                start with the last published message
    --since DURATION      deliver messages of the last DURATION (Go syntax: 1h30m, 90s)
    --new_only            only new messages (the default; overrides --all)
    --durable NAME        durable subscription
    --qgroup NAME         queue group
    --unsubscribe         unsubscribe the durable on exit (it is only closed otherwise)
    -t                    prefix each line with the local date and time

The start flags are tried in the example's order: --seq, --last, --all, --since.
One line per message on stdout, flushed at once, in the example's form (the text form
of the MsgProto), with ``data`` and ``redelivered`` always shown:

    [#1] Received: sequence:1 subject:"foo" data:"hello" timestamp:1700000000000000000 redelivered:false

The status lines (connected, listening, interrupted) and errors go to stderr, so that
stdout holds only messages. SIGINT (Ctrl-C) or SIGTERM: unsubscribe (unless durable
without --unsubscribe), close the connection, exit 0. A lost connection is exit 1.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

from ..client import Connection, Msg, StanError, StartPosition, Subscription
from ..config.flags import parse_duration_ns
from .pub import (COMMON_FLAGS, Flag, UsageError, close_quietly, open_connection, parse_flags,
                  run_tool, setup_logging)

USAGE = """usage: runnel sub [options] <channel>

Options:
	-s,  --server   <url>            NATS server URL(s) (repeat, or separate with commas)
	-c,  --cluster  <cluster name>   NATS Streaming cluster ID (default: test-cluster)
	-id, --clientid <client ID>      NATS Streaming client ID (default: stan-sub)
	-t                               Display timestamps

Subscription Options:
	--qgroup <name>                  Queue group
	--seq    <seq>                   Start at seqno
	--all                            Deliver all available messages
	--last                           Deliver starting with last published message
	--since  <duration>              Deliver messages in last interval (e.g. 1s, 1h30m)
	--durable <name>                 Durable subscriber name
	--unsubscribe                    Unsubscribe the durable on exit
"""

SUB_FLAGS = COMMON_FLAGS + (
    Flag(("t",), "bool", "show_time"),
    Flag(("seq",), "int", "seq"),
    Flag(("all",), "bool", "all"),
    Flag(("new_only",), "bool", "new_only"),
    Flag(("last",), "bool", "last"),
    Flag(("since",), "string", "since"),
    Flag(("durable",), "string", "durable"),
    Flag(("qgroup",), "string", "qgroup"),
    Flag(("unsubscribe",), "bool", "unsubscribe"),
)

DEFAULTS = dict(cluster_id="test-cluster", client_id="stan-sub", help=False, show_time=False,
                seq=0, all=False, new_only=False, last=False, since="", durable="", qgroup="",
                unsubscribe=False)


def main(argv: list[str]) -> int:
    try:
        options, args = parse_flags(argv, SUB_FLAGS, DEFAULTS)
        if options["help"]:
            print(USAGE, end="")
            return 0
        if len(args) != 1:
            raise UsageError("exactly one channel is needed" if not args else
                             f"unexpected arguments after the channel: {' '.join(args[1:])} "
                             "(flags go before the channel)")
        start = start_options(options)
    except UsageError as exc:
        print(f"runnel sub: {exc}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    setup_logging("sub")
    return run_tool(lambda: _Sub(options, args[0], start).run())


def start_options(options: dict[str, Any]) -> dict[str, Any]:
    """The example's choice of start (``--seq``, ``--last``, ``--all``, ``--since``), as
    keyword arguments of `Connection.subscribe`."""
    if options["seq"] < 0:
        raise UsageError(f"invalid value \"{options['seq']}\" for flag -seq: value out of range")
    if options["seq"]:
        return {"start_sequence": options["seq"]}
    if options["last"]:
        return {"start_at": StartPosition.LAST_RECEIVED}
    if options["all"] and not options["new_only"]:
        return {"start_at": StartPosition.FIRST}
    if options["since"]:
        try:
            return {"start_time_delta": parse_duration_ns(options["since"]) / 1e9}
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return {"start_at": StartPosition.NEW_ONLY}


def format_msg(msg: Msg, index: int, show_time: bool = False) -> str:
    """``[#n] Received: <MsgProto in protobuf text form>`` as stan-sub's ``printMsg``."""
    fields = [f"sequence:{msg.sequence}", f"subject:{proto_quote(msg.channel.encode())}",
              f"data:{proto_quote(msg.data)}", f"timestamp:{msg.timestamp_ns}",
              f"redelivered:{'true' if msg.redelivered else 'false'}"]
    if msg.redelivery_count:
        fields.append(f"redeliveryCount:{msg.redelivery_count}")
    prefix = time.strftime("%Y/%m/%d %H:%M:%S ") if show_time else ""
    return f"{prefix}[#{index}] Received: {' '.join(fields)}"


_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"',
            ord("\\"): "\\\\"}


def proto_quote(data: bytes) -> str:
    """A bytes field as Go's protobuf text format writes it: printable ASCII as is, the
    usual backslash escapes, every other byte as a 3-digit octal escape."""
    out = []
    for byte in data:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


class _Sub:
    def __init__(self, options: dict[str, Any], channel: str, start: dict[str, Any]):
        self.options = options
        self.channel = channel
        self.start = start
        self.count = 0
        self.conn: Connection | None = None
        self.sub: Subscription | None = None
        self.stop: asyncio.Event | None = None
        self.lost: StanError | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop.set)
        starting = asyncio.ensure_future(self._start())
        stopping = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():               # interrupted while connecting
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            if self.conn is not None:
                await close_quietly("sub", self.conn)
            return 130
        stopping.cancel()
        if not starting.result():
            return 1
        await self.stop.wait()
        if self.lost is not None:
            print(f"Connection lost, reason: {self.lost}", file=sys.stderr)
            return 1
        await self._shutdown()
        return 0

    async def _start(self) -> bool:
        options = self.options
        self.conn = await open_connection("sub", options, on_connection_lost=self._on_lost)
        if self.conn is None:
            return False
        print(f"Connected to {','.join(options['servers'])} clusterID: [{options['cluster_id']}] "
              f"clientID: [{options['client_id']}]", file=sys.stderr)
        try:
            self.sub = await self.conn.subscribe(
                self.channel, self._on_msg, queue=options["qgroup"] or None,
                durable_name=options["durable"] or None, manual_acks=True, **self.start)
        except StanError as exc:
            print(f"Can't subscribe: {exc}", file=sys.stderr)
            await close_quietly("sub", self.conn)
            return False
        print(f"Listening on [{self.channel}], clientID=[{options['client_id']}], "
              f"qgroup=[{options['qgroup']}] durable=[{options['durable']}]", file=sys.stderr)
        return True

    async def _on_msg(self, msg: Msg) -> None:
        """Print, then ack: a message that could not be printed stays unacked."""
        self.count += 1
        try:
            print(format_msg(msg, self.count, self.options["show_time"]), flush=True)
        except BrokenPipeError:  # `runnel sub foo | head -3`: the reader is gone
            _silence_stdout()
            self.stop.set()
            return
        try:
            await msg.ack()
        except StanError:
            pass  # closing meanwhile: the server redelivers it to whoever comes next

    def _on_lost(self, conn: Connection, error: StanError) -> None:
        self.lost = error
        self.stop.set()

    async def _shutdown(self) -> None:
        print("\nReceived an interrupt, unsubscribing and closing connection...\n",
              file=sys.stderr)
        durable, unsubscribe = self.options["durable"], self.options["unsubscribe"]
        if self.sub is not None and self.sub.is_valid and (not durable or unsubscribe):
            try:
                await self.sub.unsubscribe()
            except StanError as exc:
                print(f"runnel sub: unsubscribing: {exc}", file=sys.stderr)
        await close_quietly("sub", self.conn)


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so that the flush at exit is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
