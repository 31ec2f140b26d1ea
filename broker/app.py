"""The composition root: turn Options into running parts, run them, stop them.

Order matters for start-up latency: the NATS listener opens first (clients may
connect within milliseconds), then the monitoring endpoint, whose aiohttp import
is the slowest thing a node loads.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

from .config import Options
from .server import Authenticator, NatsServer, ServerLimits

log = logging.getLogger("runnel")

EXIT_SIGTERM = 143  # as nats-streaming-server: SIGINT exits 0, SIGTERM 143


class _NatsLogFormatter(logging.Formatter):
    """nats-server's log line: ``[pid] 2006/01/02 15:04:05.000000 [INF] text``."""

    _LEVELS = {"DEBUG": "DBG", "INFO": "INF", "WARNING": "WRN", "ERROR": "ERR",
               "CRITICAL": "FTL"}

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.created))
        micros = int((record.created % 1) * 1_000_000)
        level = self._LEVELS.get(record.levelname, record.levelname[:3])
        text = f"[{os.getpid()}] {stamp}.{micros:06d} [{level}] {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(options: Options) -> None:
    handler: logging.Handler
    handler = logging.FileHandler(options.log_file) if options.log_file else logging.StreamHandler()
    handler.setFormatter(_NatsLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    verbose = options.debug or options.trace or options.stan_debug or options.stan_trace
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def server_limits(options: Options) -> ServerLimits:
    return ServerLimits(
        max_payload=options.max_payload_bytes, max_control_line=options.max_control_line_bytes,
        max_pending=options.max_pending_bytes, max_connections=options.max_connections,
        ping_interval_s=options.ping_interval_s, ping_max=options.ping_max,
        write_deadline_s=options.write_deadline_s, auth_timeout_s=options.auth_timeout_s)


class Node:
    """Every part of one Runnel node, started and stopped in order."""

    def __init__(self, options: Options):
        self.options = options
        self.nats = NatsServer(
            options.host, options.port, limits=server_limits(options),
            auth=Authenticator(options.user, options.password, options.token),
            server_name=options.server_name)
        self.monitor = None
        self.streaming = None
        self.routes = None
        if options.cluster_listen or options.routes:  # a NATS cluster (reference §4.3)
            from .server.routes import RouteManager
            self.routes = RouteManager(self.nats, options.cluster_listen, options.routes)

    async def start(self) -> None:
        await self.nats.start()
        if self.routes is not None:
            await self.routes.start()
        from .streaming import Streaming
        self.streaming = Streaming(self.options, self.nats)
        await self.streaming.start()
        if self.options.http_port:
            from .monitor import Monitor
            from .monitor.streaming import StreamingProvider
            self.monitor_providers = [StreamingProvider(self)]
            self.monitor = Monitor(self)
            await self.monitor.start(self.options.http_host or self.options.host,
                                     self.options.http_port)
        log.info("Server is ready")

    async def stop(self) -> None:
        if self.monitor is not None:
            await self.monitor.stop()
        if self.streaming is not None:
            await self.streaming.stop()
        if self.routes is not None:
            await self.routes.stop()
        await self.nats.stop()


async def serve(options: Options) -> int:
    """Run a node until SIGINT (exit 0) or SIGTERM (exit 143)."""
    node = Node(options)
    await node.start()
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[int] = loop.create_future()
    for signum, code in ((signal.SIGINT, 0), (signal.SIGTERM, EXIT_SIGTERM)):
        loop.add_signal_handler(signum, lambda code=code: stopped.done() or stopped.set_result(code))
    code = await stopped
    log.info("Shutting down (signal received)")
    await node.stop()
    return code


def run(options: Options) -> int:
    configure_logging(options)
    if options.pid_file:
        with open(options.pid_file, "w") as pid_file:
            pid_file.write(str(os.getpid()))
    from raft import RaftError
    from .streaming import StartupError
    try:
        import uvloop
        return uvloop.run(serve(options))
    except (OSError, StartupError, RaftError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    finally:
        if options.pid_file and os.path.exists(options.pid_file):
            os.unlink(options.pid_file)
        sys.stdout.flush()
