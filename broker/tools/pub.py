"""`runnel pub [flags] CHANNEL MESSAGE...`: stan.go's example ``stan-pub``, on broker/client.

Flags are parsed as Go's ``flag`` package does (``-id x``, ``--id=x``; flags end at the
first argument that is not one), with the example's names:

    -s,  --server   URL   NATS server URL; repeat it or separate with commas
    -c,  --cluster  ID    cluster ID (default test-cluster)
    -id, --clientid ID    client ID (default stan-pub)
    -a,  --async          publish asynchronously, then wait for the PubAcks

Each MESSAGE is published as one message, in order. Output is the example's:
``Published [foo] : 'hello'`` (with ``-a``: ``... [guid: G]`` and then
``Received ACK for guid G``). Errors go to stderr; the exit status is 0 when every
message was stored, 1 when one was not or the connection failed, 2 for bad usage.

The flag table and the connect helper are shared with `broker.tools.sub`.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from ..client import DEFAULT_NATS_URL, Connection, StanError, connect
from ..config.flags import ConfigError, parse_args, parse_list

USAGE = """usage: runnel pub [options] <channel> <message>...

Options:
	-s,  --server   <url>            NATS server URL(s) (repeat, or separate with commas)
	-c,  --cluster  <cluster name>   NATS Streaming cluster ID (default: test-cluster)
	-id, --clientid <client ID>      NATS Streaming client ID (default: stan-pub)
	-a,  --async                     Asynchronous publish mode
"""


@dataclass(frozen=True)
class Flag:
    """One row of a flag table (what `broker.config.flags.parse_args` needs, plus where
    the value goes)."""

    flags: tuple[str, ...]
    kind: str
    dest: str
    supported: bool = True


COMMON_FLAGS = (Flag(("s", "server"), "string", "servers"),
                Flag(("c", "cluster"), "string", "cluster_id"),
                Flag(("id", "clientid"), "string", "client_id"),
                Flag(("h", "help"), "bool", "help"))

PUB_FLAGS = COMMON_FLAGS + (Flag(("a", "async"), "bool", "async_mode"),)


class UsageError(Exception):
    """Bad command line: the text, then the usage, on stderr; exit status 2."""


def parse_flags(argv: Sequence[str], table: Sequence[Flag],
                defaults: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Go-style flags into a dict (``servers`` accumulates), and the arguments left."""
    try:
        found, rest = parse_args(argv, table)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    values = dict(defaults, servers=[])
    for flag in found:
        if flag.spec.dest == "servers":
            values["servers"] += parse_list(flag.value)
        else:
            values[flag.spec.dest] = flag.value
    values["servers"] = values["servers"] or [DEFAULT_NATS_URL]
    return values, rest


async def open_connection(tool: str, options: dict[str, Any], **kwargs) -> Connection | None:
    """Connect, or print the example's "Can't connect" text and return None."""
    try:
        return await connect(options["cluster_id"], options["client_id"],
                             servers=options["servers"], **kwargs)
    except StanError as exc:
        print(f"Can't connect: {exc}.\nMake sure a NATS Streaming Server is running at: "
              f"{','.join(options['servers'])}", file=sys.stderr)
        return None


async def close_quietly(tool: str, conn: Connection) -> None:
    try:
        await conn.close()
    except StanError as exc:
        print(f"runnel {tool}: closing the connection: {exc}", file=sys.stderr)


def setup_logging(tool: str) -> None:
    """The client's warnings (reconnects) on stderr, one plain line each."""
    logging.basicConfig(level=logging.WARNING, format=f"runnel {tool}: %(message)s",
                        stream=sys.stderr)


def print_line(text: str) -> None:
    print(text, flush=True)


def run_tool(coroutine_factory) -> int:
    """Run the tool's coroutine. A Ctrl-C that the tool does not handle itself (pub, or
    sub before its handler is installed) is exit status 130, without a traceback."""
    try:
        return asyncio.run(coroutine_factory())
    except KeyboardInterrupt:
        return 130


# -- pub -----------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    try:
        options, args = parse_flags(argv, PUB_FLAGS, dict(cluster_id="test-cluster",
                                                          client_id="stan-pub", async_mode=False,
                                                          help=False))
    except UsageError as exc:
        print(f"runnel pub: {exc}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    if options["help"]:
        print(USAGE, end="")
        return 0
    if len(args) < 2:
        print(f"runnel pub: a channel and at least one message are needed\n\n{USAGE}", end="",
              file=sys.stderr)
        return 2
    setup_logging("pub")
    channel = args[0]
    # argv came from bytes through surrogateescape: give the server the bytes typed
    messages = [text.encode("utf-8", "surrogateescape") for text in args[1:]]
    return run_tool(lambda: _publish(options, channel, messages))


async def _publish(options: dict[str, Any], channel: str, messages: list[bytes]) -> int:
    conn = await open_connection("pub", options)
    if conn is None:
        return 1
    try:
        if options["async_mode"]:
            return await _publish_async(conn, channel, messages)
        for data in messages:
            await conn.publish(channel, data)
            print_line(f"Published [{channel}] : '{_text(data)}'")
        return 0
    except StanError as exc:
        print(f"Error during publish: {exc}", file=sys.stderr)
        return 1
    finally:
        await close_quietly("pub", conn)


async def _publish_async(conn: Connection, channel: str, messages: list[bytes]) -> int:
    loop = asyncio.get_running_loop()
    acks: list[asyncio.Future] = []
    for data in messages:
        done = loop.create_future()
        acks.append(done)
        guid = await conn.publish_async(
            channel, data, lambda g, e, done=done: done.done() or done.set_result((g, e)))
        print_line(f"Published [{channel}] : '{_text(data)}' [guid: {guid}]")
    status = 0
    for done in acks:            # each is bounded by pub_ack_wait (or the close)
        guid, error = await done
        print_line(f"Received ACK for guid {guid}")
        if error is not None:
            print(f"Error in server ack for guid {guid}: {error}", file=sys.stderr)
            status = 1
    return status


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
