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


_CHECK_CONFIG = ("-check-config", "--check-config", "-check-config=true", "--check-config=true")
_CHECK_CONFIG_HELP = """
Runnel Options:
    --check-config                         Validate the flags and configuration, then exit
                                           (prints "configuration OK": status 0; an error: 2)
"""


def serve_main(argv: list[str]) -> int:
    """Parse the flags, then run the node until SIGINT or SIGTERM.

    With ``--check-config``: load the options exactly as serving does, run the start-up
    checks that need no network and no file of the store, print ``configuration OK``
    (status 0) or the error (status 2), and serve nothing.
    """
    from .config import ConfigError, load_options, usage
    check_only = any(arg in _CHECK_CONFIG for arg in argv)
    argv = [arg for arg in argv if arg not in _CHECK_CONFIG
            and arg not in ("-check-config=false", "--check-config=false")]
    try:
        options = load_options(argv)
        if check_only and not (options.show_help or options.show_version):
            _check_startup(options)
    except ConfigError as exc:
        print(f"runnel: {exc}\n(see: runnel serve -h)", file=sys.stderr)
        return 2
    if options.show_help:
        print(usage() + _CHECK_CONFIG_HELP, end="")
        return 0
    if options.show_version:
        from .server.server import VERSION
        print(f"runnel version {VERSION}")
        return 0
    if check_only:
        print("configuration OK")
        return 0
    from .app import run
    return run(options)


def _check_startup(options) -> None:
    """The checks of broker.streaming that need no network: the cluster's peer list and
    this node's place in it. Raises ConfigError."""
    if not options.clustered:
        return
    from .config import ConfigError
    from .streaming import StartupError, parse_peers
    try:
        members = parse_peers(options.cluster_peers)
    except StartupError as exc:
        raise ConfigError(str(exc)) from None
    node_id = options.cluster_node_id
    if node_id not in members:  # the message of Streaming._cluster_raft_config
        raise ConfigError(f"--cluster_peers must list this node as {node_id or '<id>'}"
                          f"@host:port (got {','.join(options.cluster_peers) or 'none'})")


if __name__ == "__main__":
    sys.exit(main())
