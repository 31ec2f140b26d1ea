"""`connect` and `Connection`: one STAN session over one nats-py connection.

The handshake (reference §2.4, client side, as stan.go's ``Connect``):
subscribe the heartbeat inbox, the PING inbox and the PubAck inbox, send a
``ConnectRequest`` to ``_STAN.discover.<cluster ID>``, take every other subject from
the ``ConnectResponse``, then start the PINGs. nats-py does the rest of the transport:
reconnects (forever by default, as stan.go), server lists, TLS, resubscribing every
inbox after a reconnect. A reconnect is therefore invisible here: the server still
knows the client (its registration is persisted), heartbeats reach the same inbox,
PINGs keep being answered, and subscriptions keep receiving.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Mapping, Sequence, Union

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg as NatsMsg
from nats.nuid import NUID

from ..protocol.stan import (CloseRequest, CloseResponse, ConnectRequest, ConnectResponse,
                             DecodeError, Ping, PubAck, PubMsg, SubscriptionRequest,
                             SubscriptionResponse, UnsubscribeRequest, decode, names)
from .errors import (ConnectionClosed, ConnectionLost, ConnectRefused, ConnectRequestTimeout,
                     NatsError,
                     NoServersError, ProtocolError, RequestTimeout, ServerError, StanError,
                     close_timeout, subscribe_timeout, texts)
from .options import (DEFAULT_ACK_WAIT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DISCOVER_PREFIX,
                      DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_PUB_ACKS_INFLIGHT, DEFAULT_NATS_URL,
                      DEFAULT_PING_INTERVAL, DEFAULT_PING_MAX_OUT, DEFAULT_PUB_ACK_WAIT,
                      PROTOCOL_ONE, ConnectOptions, StartPosition, ack_wait_wire,
                      ping_interval_from_wire, ping_interval_wire, resolve_start)
from .pinger import Pinger
from .publisher import AckHandler, PubAckTracker
from .subscription import MsgHandler, Subscription

log = logging.getLogger("runnel.client")

#: ``on_connection_lost(conn, error)``; may be a coroutine function.
LostHandler = Callable[["Connection", StanError], Union[None, Awaitable[None]]]

_nuid = NUID()


def _next_nuid() -> str:
    return _nuid.next().decode()


@dataclass(frozen=True)
class Subjects:
    """The request subjects a ConnectResponse names (reference §2.2)."""

    pub_prefix: str
    sub: str
    unsub: str
    close: str
    sub_close: str
    pings: str


async def connect(cluster_id: str, client_id: str, *,
                  servers: str | Sequence[str] = DEFAULT_NATS_URL,
                  nats_conn: NatsClient | None = None,
                  connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                  pub_ack_wait: float = DEFAULT_PUB_ACK_WAIT,
                  max_pub_acks_inflight: int = DEFAULT_MAX_PUB_ACKS_INFLIGHT,
                  ping_interval: float = DEFAULT_PING_INTERVAL,
                  ping_max_out: int = DEFAULT_PING_MAX_OUT,
                  on_connection_lost: LostHandler | None = None,
                  discover_prefix: str = DEFAULT_DISCOVER_PREFIX,
                  nats_options: Mapping[str, Any] | None = None) -> "Connection":
    """Open a STAN session with the cluster ``cluster_id`` as ``client_id``.

    ``servers``: NATS URLs (a list, or one string, comma-separated allowed). Ignored
    when ``nats_conn`` is given: a connected nats-py client this session borrows and
    never closes. ``nats_options`` go to ``nats.connect`` as they are (TLS, user,
    ``reconnect_time_wait``, ...); by default the client reconnects forever.

    Durations are seconds. ``connect_timeout`` bounds reaching a NATS server and each
    request (connect, subscribe, unsubscribe, close). ``pub_ack_wait`` bounds each
    publish, ``max_pub_acks_inflight`` the PubAcks awaited at once. A PING goes every
    ``ping_interval``; more than ``ping_max_out`` unanswered in a row and the session is
    lost: ``on_connection_lost(conn, error)`` is called and the connection is closed.

    Raises NoServersError (no NATS server reachable), ConnectRequestTimeout (no STAN
    server with that cluster ID answered) or ConnectRefused (the server's text, e.g.
    ``stan: clientID already registered``; also a ServerError); all are ConnectError.
    """
    options = ConnectOptions(connect_timeout, pub_ack_wait, max_pub_acks_inflight,
                             ping_interval, ping_max_out, discover_prefix)
    conn = Connection(cluster_id, client_id, options, on_connection_lost)
    await conn._open(_server_list(servers), nats_conn, dict(nats_options or {}))
    return conn


def _server_list(servers: str | Sequence[str]) -> list[str]:
    items = [servers] if isinstance(servers, str) else list(servers)
    urls = [url.strip() for item in items for url in item.split(",") if url.strip()]
    if not urls:
        raise ValueError("no server URL given")
    return urls


class Connection:
    """A STAN session. Created by `connect`; use ``async with`` or `close`."""

    def __init__(self, cluster_id: str, client_id: str, options: ConnectOptions,
                 on_lost: LostHandler | None):
        self.cluster_id = cluster_id
        self.client_id = client_id
        self.options = options
        self.conn_id = _next_nuid().encode()
        self._on_lost = on_lost
        self._nc: NatsClient | None = None
        self._owns_nc = False
        self._nats_subs: list = []
        self._subjects: Subjects | None = None
        self._pub_ack_inbox = ""
        self._pubs = PubAckTracker(options.max_pub_acks_inflight, options.pub_ack_wait)
        self._pinger: Pinger | None = None
        self._subs: dict[str, Subscription] = {}
        self._closed: StanError | None = None   # set once: closed by us, or lost
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        state = "open" if self._closed is None else "closed"
        return f"<Connection {self.cluster_id}/{self.client_id} {state}>"

    # -- public properties --

    @property
    def nats_conn(self) -> NatsClient:
        """The nats-py connection underneath (for plain NATS traffic beside STAN)."""
        assert self._nc is not None
        return self._nc

    @property
    def is_closed(self) -> bool:
        return self._closed is not None

    @property
    def pub_acks_pending(self) -> int:
        """PubAcks awaited right now (at most max_pub_acks_inflight)."""
        return len(self._pubs)

    @property
    def ping_interval(self) -> float:
        """The PING interval in use (the one the server echoed), seconds."""
        return self._pinger.interval_s if self._pinger else 0.0

    @property
    def pings_outstanding(self) -> int:
        """PINGs sent since the last good reply (the session is lost above ping_max_out)."""
        return self._pinger.state.out if self._pinger else 0

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            await self.close()
            return
        try:            # do not hide the exception that ends the block
            await self.close()
        except StanError as error:
            log.warning("client %s: close after %r failed: %s", self.client_id, exc, error)

    # -- connect --

    async def _open(self, servers: list[str], nats_conn: NatsClient | None,
                    nats_options: dict) -> None:
        if nats_conn is not None:
            self._nc = nats_conn
        else:
            self._nc = await self._connect_nats(servers, nats_options)
            self._owns_nc = True
        try:
            await self._handshake()
        except BaseException:
            await self._teardown()
            raise

    async def _connect_nats(self, servers: list[str], extra: dict) -> NatsClient:
        last_error: list[BaseException] = []
        # nats-py callbacks given in nats_options are called after the client's own.
        theirs = {name: extra.pop(name, None) for name in
                  ("error_cb", "disconnected_cb", "reconnected_cb", "closed_cb")}

        async def chain(name: str, *args) -> None:
            if theirs[name] is not None:
                await theirs[name](*args)

        async def error_cb(exc: Exception) -> None:
            last_error[:] = [exc]
            # before the session exists, the error raised by connect() says it all
            level = logging.WARNING if self._subjects is not None else logging.DEBUG
            log.log(level, "nats (client %s): %s", self.client_id, exc or type(exc).__name__)
            await chain("error_cb", exc)

        async def disconnected_cb() -> None:
            log.info("client %s: disconnected from NATS", self.client_id)
            await chain("disconnected_cb")

        async def reconnected_cb() -> None:
            log.info("client %s: reconnected to %s", self.client_id, nc.connected_url)
            await chain("reconnected_cb")

        async def closed_cb() -> None:
            if self._closed is None and self._subjects is not None:
                self._lose(ConnectionLost("nats: connection closed"))
            await chain("closed_cb")

        kwargs: dict[str, Any] = dict(
            servers=servers, name=self.client_id, connect_timeout=self.options.connect_timeout,
            allow_reconnect=True, max_reconnect_attempts=-1, error_cb=error_cb,
            disconnected_cb=disconnected_cb, reconnected_cb=reconnected_cb, closed_cb=closed_cb)
        kwargs.update(extra)
        nc = NatsClient()
        # nats-py retries an unreachable server forever (max_reconnect_attempts=-1), also
        # on the first connect: bound it, one connect timeout per server of the list.
        bound_s = self.options.connect_timeout * len(servers)
        try:
            await asyncio.wait_for(nc.connect(**kwargs), bound_s)
        except (asyncio.TimeoutError, OSError, nats.errors.Error) as exc:
            await _close_quietly(nc)
            cause = last_error[0] if last_error else exc
            raise NoServersError(detail=(
                f"cannot reach {', '.join(servers)} within {bound_s:g}s to connect to "
                f"cluster ID {self.cluster_id!r} ({cause or type(cause).__name__})")) from exc
        return nc

    async def _handshake(self) -> None:
        nc = self._nc
        hb_inbox, ping_inbox = nc.new_inbox(), nc.new_inbox()
        self._pub_ack_inbox = f"_STAN.acks.{_next_nuid()}"
        self._nats_subs.append(await nc.subscribe(hb_inbox, cb=self._on_heartbeat))
        self._nats_subs.append(await nc.subscribe(ping_inbox, cb=self._on_ping_reply))
        self._nats_subs.append(await nc.subscribe(self._pub_ack_inbox, cb=self._on_pub_ack))
        request = ConnectRequest(clientID=self.client_id, heartbeatInbox=hb_inbox,
                                 protocol=PROTOCOL_ONE, connID=self.conn_id,
                                 pingInterval=ping_interval_wire(self.options.ping_interval),
                                 pingMaxOut=self.options.ping_max_out)
        discover = names.discover_subject(self.cluster_id, self.options.discover_prefix)

        def timeout(detail: str) -> StanError:
            return ConnectRequestTimeout(detail=f"cluster ID {self.cluster_id!r}: {detail}")

        payload = await self._request(discover, request.SerializeToString(), timeout)
        response = self._decode(ConnectResponse, payload, "ConnectResponse")
        if response.error:
            raise ConnectRefused(response.error)
        self._subjects = Subjects(response.pubPrefix, response.subRequests,
                                  response.unsubRequests, response.closeRequests,
                                  response.subCloseRequests, response.pingRequests)
        if response.protocol >= PROTOCOL_ONE and response.pingRequests:
            interval = ping_interval_from_wire(response.pingInterval, self.options.ping_interval)
            max_out = response.pingMaxOut if response.pingMaxOut > 0 else self.options.ping_max_out
            self._pinger = Pinger(nc, response.pingRequests, ping_inbox,
                                  Ping(connID=self.conn_id).SerializeToString(),
                                  interval, max_out, self._lose)
            self._pinger.start()

    # -- the three inboxes of the connection --

    async def _on_heartbeat(self, msg: NatsMsg) -> None:
        if msg.reply and self._closed is None:
            try:
                await self._nc.publish(msg.reply, b"")
            except nats.errors.Error as exc:
                log.debug("heartbeat reply not sent: %r", exc)

    async def _on_ping_reply(self, msg: NatsMsg) -> None:
        if self._pinger is not None and self._closed is None:
            self._pinger.on_reply(msg)

    async def _on_pub_ack(self, msg: NatsMsg) -> None:
        if msg.headers or not msg.data:  # a 503 status: it names no guid
            return
        try:
            ack = decode(PubAck, msg.data)
        except DecodeError:
            log.warning("client %s: %s (dropped)", self.client_id, texts.MALFORMED_ACK)
            return
        self._pubs.on_ack(ack.guid, ack.error)

    # -- publish --

    async def publish(self, channel: str, data: bytes | bytearray | memoryview | str) -> str:
        """Publish and wait for the PubAck; return the guid.

        Raises ServerError with the server's text (``stan: invalid publish request`` for
        an invalid channel), PublishAckTimeout after pub_ack_wait, ConnectionClosed.
        """
        done: asyncio.Future = asyncio.get_running_loop().create_future()

        def handler(guid: str, error: StanError | None) -> None:
            if not done.done():
                done.set_result(error)

        guid = await self.publish_async(channel, data, handler)
        error = await done
        if error is not None:
            raise error
        return guid

    async def publish_async(self, channel: str, data: bytes | bytearray | memoryview | str,
                            ack_handler: AckHandler | None = None) -> str:
        """Send a message and return its guid without waiting for the PubAck;
        ``ack_handler(guid, error)`` is called when it arrives (error None: stored), when
        pub_ack_wait expires (PublishAckTimeout) or when the connection closes first.

        Waits while max_pub_acks_inflight PubAcks are pending: that is the publisher's
        rate limit.
        """
        subjects = self._check_open()
        payload = data.encode() if isinstance(data, str) else bytes(data)
        guid = _next_nuid()
        message = PubMsg(clientID=self.client_id, guid=guid, subject=channel, data=payload,
                         connID=self.conn_id).SerializeToString()
        await self._pubs.reserve(guid, ack_handler)
        try:
            await self._nc.publish(names.pub_subject(subjects.pub_prefix, channel), message,
                                   reply=self._pub_ack_inbox)
        except nats.errors.BadSubjectError as exc:  # spaces or CR/LF: not sendable at all
            self._pubs.forget(guid)
            raise StanError(texts.INVALID_PUBLISH_REQUEST, f"channel {channel!r} is not a valid "
                            "NATS subject (refused by the client)") from exc
        except nats.errors.ConnectionClosedError as exc:
            self._pubs.forget(guid)
            raise ConnectionClosed(detail="the NATS connection is closed") from exc
        except nats.errors.Error as exc:
            self._pubs.forget(guid)
            raise NatsError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._pubs.forget(guid)
            raise
        self._pubs.arm(guid)
        return guid

    # -- subscribe --

    async def subscribe(self, channel: str, cb: MsgHandler, *, queue: str | None = None,
                        durable_name: str | None = None,
                        start_at: StartPosition | int | None = None,
                        start_sequence: int | None = None,
                        start_time: datetime | float | None = None,
                        start_time_delta: timedelta | float | None = None,
                        max_inflight: int = DEFAULT_MAX_INFLIGHT,
                        ack_wait: float = DEFAULT_ACK_WAIT,
                        manual_acks: bool = False) -> Subscription:
        """Subscribe to ``channel``; ``cb(msg)`` (sync or async) gets each message, one
        at a time, in arrival order.

        Start: ``start_at`` (default NEW_ONLY), or ``start_sequence=N`` (SEQUENCE_START),
        ``start_time`` (datetime or Unix seconds) or ``start_time_delta`` (seconds or
        timedelta into the past), both TIME_DELTA_START. ``queue`` joins a queue group,
        ``durable_name`` makes it durable (both: a durable queue group). ``max_inflight``
        messages may be unacked at once; one not acked within ``ack_wait`` seconds
        (whole seconds, >= 1) is redelivered. With ``manual_acks`` the callback calls
        ``await msg.ack()``; otherwise the message is acked when the callback returns
        (not if it raises).

        Raises ServerError with the server's text, RequestTimeout
        (``stan: subscribe request timeout``), ConnectionClosed.
        """
        subjects = self._check_open()
        start = resolve_start(start_at, start_sequence, start_time, start_time_delta,
                              time.time_ns())
        sub = Subscription(self, channel, cb, self._nc.new_inbox(), queue=queue or "",
                           durable_name=durable_name or "", manual_acks=manual_acks,
                           max_inflight=max_inflight, ack_wait=ack_wait)
        request = SubscriptionRequest(
            clientID=self.client_id, subject=channel, qGroup=sub.queue, inbox=sub.inbox,
            maxInFlight=max_inflight, ackWaitInSecs=ack_wait_wire(ack_wait),
            durableName=sub.durable_name, startPosition=int(start.position),
            startSequence=start.sequence, startTimeDelta=start.time_delta_ns)
        await sub._listen(self._nc)
        try:
            payload = await self._request(subjects.sub, request.SerializeToString(),
                                          subscribe_timeout)
            response = self._decode(SubscriptionResponse, payload, "SubscriptionResponse")
        except RequestTimeout:
            await sub._abandon()
            # The server may have made it anyway: close it by its delivery inbox (§2.6).
            self._publish_quietly(subjects.sub_close, _sub_close_by_inbox(self.client_id,
                                                                          channel, sub.inbox))
            raise
        except BaseException:
            await sub._abandon()
            raise
        if response.error:
            await sub._abandon()
            raise ServerError(response.error)
        if self._closed is not None:          # closed or lost while we waited
            await sub._abandon()
            raise self._closed_error()
        self._subs[sub.inbox] = sub
        sub._accepted(response.ackInbox)
        return sub

    def _forget(self, sub: Subscription) -> None:
        self._subs.pop(sub.inbox, None)

    # -- close --

    async def close(self) -> None:
        """Close the session: the server forgets the client, plain subscriptions are
        removed and durables go offline. Pending publishes fail with ConnectionClosed.
        A second call does nothing. Raises RequestTimeout
        (``stan: close request timeout``) or ServerError; the NATS connection (if this
        session made it) is closed in every case."""
        if self._closed is not None:
            return
        self._shut(ConnectionClosed())
        try:
            request = CloseRequest(clientID=self.client_id).SerializeToString()
            payload = await self._request(self._subjects.close, request, close_timeout)
            response = self._decode(CloseResponse, payload, "CloseResponse")
            if response.error:
                raise ServerError(response.error)
        finally:
            await self._teardown()

    def _lose(self, error: StanError) -> None:
        """The session is gone without a Close (PING failure, replaced, NATS closed)."""
        if self._closed is not None:
            return
        # The callback is the report; without one, the log is.
        log.log(logging.INFO if self._on_lost else logging.WARNING,
                "client %s: connection lost: %s", self.client_id, error)
        self._shut(error)
        self._spawn(self._after_loss(error))

    async def _after_loss(self, error: StanError) -> None:
        await self._teardown()
        if self._on_lost is not None:
            try:
                result = self._on_lost(self, error)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("connection-lost handler raised")

    def _shut(self, error: StanError) -> None:
        self._closed = error
        if self._pinger is not None:
            self._pinger.stop()
        self._pubs.fail_all(self._closed_error())
        for sub in self._subs.values():
            sub._stop()

    async def _teardown(self) -> None:
        """Release the NATS side: close the NATS connection if it is ours, otherwise
        unsubscribe every inbox this session made on the borrowed one."""
        self._closed = self._closed or ConnectionClosed()
        if self._pinger is not None:
            self._pinger.stop()
        nc = self._nc
        if nc is None or nc.is_closed:
            return
        if self._owns_nc:
            await _close_quietly(nc)
            return
        for sub in list(self._subs.values()):
            await sub._stop_listening()
        self._subs.clear()
        for nats_sub in self._nats_subs:
            try:
                await nats_sub.unsubscribe()
            except nats.errors.Error:
                pass
        self._nats_subs.clear()

    # -- helpers --

    def _check_open(self) -> Subjects:
        if self._closed is not None:
            raise self._closed_error()
        assert self._subjects is not None
        return self._subjects

    def _closed_error(self) -> ConnectionClosed:
        """``stan: connection closed``, saying why when the session was lost."""
        if self._closed is None or isinstance(self._closed, ConnectionClosed):
            return ConnectionClosed()
        return ConnectionClosed(detail=str(self._closed))

    async def _request(self, subject: str, payload: bytes,
                       timeout_error: Callable[[str], StanError]) -> bytes:
        wait_s = self.options.connect_timeout
        try:
            reply = await self._nc.request(subject, payload, timeout=wait_s)
        except nats.errors.NoRespondersError as exc:
            raise timeout_error(f"no responders on {subject}") from exc
        except nats.errors.TimeoutError as exc:
            raise timeout_error(f"no reply on {subject} within {wait_s:g}s") from exc
        except nats.errors.ConnectionClosedError as exc:
            raise ConnectionClosed(detail="the NATS connection is closed") from exc
        except nats.errors.Error as exc:
            raise NatsError(str(exc) or type(exc).__name__) from exc
        return reply.data

    async def _request_sub_response(self, subject: str, payload: bytes,
                                    timeout_error: Callable[[str], StanError]) -> None:
        reply = await self._request(subject, payload, timeout_error)
        response = self._decode(SubscriptionResponse, reply, "SubscriptionResponse")
        if response.error:
            raise ServerError(response.error)

    @staticmethod
    def _decode(message_type, payload: bytes, what: str):
        try:
            return decode(message_type, payload)
        except DecodeError as exc:
            raise ProtocolError(f"stan: malformed {what}", str(exc)) from exc

    def _publish_quietly(self, subject: str, payload: bytes) -> None:
        async def send() -> None:
            try:
                await self._nc.publish(subject, payload)
            except nats.errors.Error as exc:
                log.debug("publish to %s failed: %r", subject, exc)
        if subject:
            self._spawn(send())

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _sub_close_by_inbox(client_id: str, channel: str, inbox: str) -> bytes:
    return UnsubscribeRequest(clientID=client_id, subject=channel,
                              inbox=inbox).SerializeToString()


async def _close_quietly(nc: NatsClient) -> None:
    try:
        await nc.close()
    except Exception as exc:  # closing a half-open nats-py client may raise anything
        log.debug("closing the NATS connection: %r", exc)
