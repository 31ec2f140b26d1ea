"""The `runnel` command: `runnel serve [flags]` runs a node; the other commands are
tools in broker/tools (each a module with ``main(argv) -> int``).

`runnel serve` takes nats-streaming-server's flags with Go's syntax (see
broker/config). A bad flag is a clear message on stderr and exit status 2.
"""
from __future__ import annotations

import importlib
import sys

_USAGE = """usage: runnel <command> [flags]

commands:
  serve     run a Runnel node (flags as nats-streaming-server: runnel serve -h)
  pub       publish messages to a channel (runnel pub -h)
  sub       print the messages of a channel (runnel sub -h)
  bench     measure publish and delivery throughput and latency (runnel bench -h)
  status    summarise a node or cluster from its monitoring endpoints (runnel status -h)
  version   print the version
"""

_TOOLS = ("pub", "sub", "bench", "status")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_USAGE, end="")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return serve_main(rest)
    if command in _TOOLS:
        return importlib.import_module(f"broker.tools.{command}").main(rest)
    if command in ("version", "-v", "--version"):
        from .server.server import VERSION
        print(f"runnel version {VERSION}")
        return 0
    print(f"runnel: unknown command {command!r}\n\n{_USAGE}", end="", file=sys.stderr)
    return 2


def serve_main(argv: list[str]) -> int:
    """Parse the flags, then run the node until SIGINT or SIGTERM."""
    from .config import ConfigError, load_options, usage
    try:
        options = load_options(argv)
    except ConfigError as exc:
        print(f"runnel: {exc}\n(see: runnel serve -h)", file=sys.stderr)
        return 2
    if options.show_help:
        print(usage(), end="")
        return 0
    if options.show_version:
        from .server.server import VERSION
        print(f"runnel version {VERSION}")
        return 0
    from .app import run
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
