"""Routes: plain core NATS traffic between the nodes of a cluster.

This module holds `RouteManager` (listener, solicitors, handshake decisions,
interest, delivery of routed messages); `route_link.py` holds one connection.

One TCP connection per pair of nodes (a *link*) carries both directions, as in
nats-server. It speaks the core protocol plus MSG/HMSG in both directions:

* The soliciting node dials the peer's route listener (``--cluster``), reads its
  INFO, and answers with ``CONNECT {"route": true, "server_id", "node",
  "client_urls", ...}``. Both sides then send ``SUB <subject> [queue] <sid>`` for
  each distinct (subject, queue) their LOCAL clients hold (`ClientConnection`
  subscriptions; not internal clients, never a subject beginning with ``_STAN.``),
  and ``UNSUB <sid>`` when the last local subscription of that pair goes.
* A node keeps the peer's SUBs in its router as subscriptions of the link, so a
  publish by a local client reaches the link like any subscriber (one member of a
  queue group: the group's choice stays "exactly one across the cluster"). The
  link writes it as ``MSG <subject> <peer sid> [reply] <size>`` (HMSG with headers).
* The receiving node delivers a message that arrived for its sid S only to its
  local subscriptions of exactly S's (subject, queue): every plain one, or one
  member of the queue group. It never routes it again, so nothing loops and a
  full mesh delivers once. Messages of internal clients (``publish(None, ...)``:
  STAN deliveries, replies, heartbeats) are never forwarded (``local_only``).

Why one link per pair and not a client connection each way: interest and data
must travel on the same ordered stream. A requester's inbox SUB and its request
leave on one socket, so the responder's node knows the inbox before it can reply.

Duplicate links (both nodes dial each other, or two URLs reach one node): a
soliciting node that is already linked to the server_id in INFO sends no CONNECT
and closes the new link. A node sends CONNECT only when it holds no link to that
peer, so an accepting node that already has a link accepted from the same peer
replaces it (the peer knows its own dials best). When both nodes dialled and
each sent CONNECT before seeing the other's, both ends keep the link dialled by
the node with the smaller server_id. A soliciting node that finds itself (its own
server_id in INFO) stops dialling that URL. A solicitor whose link was refused as
a duplicate waits until the link that won closes, then dials again.

Gossip: after a link is registered every node sends its links an INFO with
``known_routes`` (route URL and server_id of every peer); a node dials the ones it
is not linked to, so seed-style configs (everyone routes to one node) become a
full mesh. Dials from gossip give up after a few failed attempts; configured
routes are retried forever with a capped exponential backoff.

INFO ``connect_urls`` for clients: every linked peer's client URL(s), kept up to
date; clients that sent ``protocol: 1`` get an async INFO when the set changes.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import TYPE_CHECKING, Iterable

from ..protocol.nats import errors as nats_errors, writer
from ..protocol.nats.events import Msg
from .route_link import RouteLink, hostport, parse_route_url, specific_host
from .router import Subscription

if TYPE_CHECKING:
    from .server import NatsServer

__all__ = ["RouteLink", "RouteManager", "parse_route_url"]

log = logging.getLogger("runnel.server.routes")

STAN_PREFIX = b"_STAN."
DUPLICATE_ROUTE = "Duplicate Route"
IMPLICIT_ATTEMPTS = 5  # dials of a gossiped URL before giving up on it


class _Interest:
    """The local subscriptions of one (subject, queue), sent to peers under one sid.

    Members sit in a list with an index map: O(1) add, remove and random pick."""

    __slots__ = ("subject", "queue", "sid", "members", "_index")

    def __init__(self, subject: bytes, queue: bytes | None, sid: bytes):
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.members: list[Subscription] = []
        self._index: dict[Subscription, int] = {}

    def add(self, sub: Subscription) -> None:
        if sub not in self._index:
            self._index[sub] = len(self.members)
            self.members.append(sub)

    def remove(self, sub: Subscription) -> bool:
        index = self._index.pop(sub, None)
        if index is None:
            return False
        last = self.members.pop()
        if last is not sub:
            self.members[index] = last
            self._index[last] = index
        return True

    def sub_line(self) -> bytes:
        if self.queue is None:
            return b"SUB %s %s\r\n" % (self.subject, self.sid)
        return b"SUB %s %s %s\r\n" % (self.subject, self.queue, self.sid)


class RouteManager:
    """The route listener, the solicitors and the links of one node."""

    def __init__(self, server: NatsServer, listen: str = "", routes: Iterable[str] = (), *,
                 reconnect_min_s: float = 0.05, reconnect_max_s: float = 2.0,
                 connect_timeout_s: float = 2.0, handshake_timeout_s: float = 2.0,
                 ping_interval_s: float | None = None):
        self.server = server
        server.routes = self
        self.listen = listen
        self.listen_host, self.listen_port = parse_route_url(listen) if listen else ("", 0)
        self.configured = [url for url in routes if url.strip()]
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.connect_timeout_s = connect_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.ping_interval_s = ping_interval_s or server.limits.ping_interval_s
        self.loop: asyncio.AbstractEventLoop | None = None
        self.links: dict[str, RouteLink] = {}  # registered, by peer server_id
        self.pending: set[RouteLink] = set()  # connected, not (yet) registered
        self.route_subs = 0  # peers' subscriptions in the router
        self.dropped = 0  # route messages for an interest that was gone meanwhile
        self._interest: dict[tuple[bytes, bytes | None], _Interest] = {}
        self._by_sid: dict[bytes, _Interest] = {}
        self._next_sid = 0
        self._solicitors: dict[str, asyncio.Task] = {}
        self._self_urls: set[str] = set()
        self._listener: asyncio.AbstractServer | None = None
        self._stopping = False
        self._local_cache: dict[bytes, tuple] = {}
        self._client_urls: list[str] = []

    # -- life cycle --

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for conn in list(self.server.connections.values()):  # clients that came first
            for sub in conn.subs.values():
                self.local_sub_added(sub)
        if self.listen:
            host = self.listen_host or "0.0.0.0"
            self._listener = await self.loop.create_server(
                lambda: RouteLink(self), host, self.listen_port, reuse_address=True)
            self.listen_port = self._listener.sockets[0].getsockname()[1]
            log.info("Listening for route connections on %s", hostport(host, self.listen_port))
        for url in self.configured:
            self.solicit(url)

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._solicitors.values())
        self._solicitors.clear()
        for task in tasks:
            task.cancel()
        if self._listener is not None:
            self._listener.close()
        for link in list(self.links.values()) + list(self.pending):
            link.close(None, "server shutdown")
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    def solicit(self, url: str, explicit: bool = True) -> None:
        """Keep a route to ``url`` (explicit: forever; from gossip: a few attempts)."""
        host, port = parse_route_url(url)
        key = hostport(host or "127.0.0.1", port)
        if self._stopping or key in self._solicitors or key in self._self_urls:
            return
        if self._listener is not None and port == self.listen_port and (
                host == self.listen_host or host in ("127.0.0.1", "localhost", "::1")
                and not specific_host(self.listen_host)):
            self._self_urls.add(key)  # our own listener: skip without dialling
            return
        task = asyncio.ensure_future(self._solicit(key, host or "127.0.0.1", port, explicit))
        self._solicitors[key] = task
        task.add_done_callback(lambda _t, key=key: self._solicitors.get(key) is _t
                               and self._solicitors.pop(key, None))

    async def _solicit(self, key: str, host: str, port: int, explicit: bool) -> None:
        delay = self.reconnect_min_s
        failures = 0
        warned = False
        while not self._stopping:
            link = RouteLink(self, key)
            try:
                await asyncio.wait_for(self.loop.create_connection(lambda: link, host, port),
                                       self.connect_timeout_s)
            except (OSError, asyncio.TimeoutError) as exc:
                failures += 1
                if not explicit and failures >= IMPLICIT_ATTEMPTS:
                    log.debug("route %s: giving up after %d attempts (%s)", key, failures, exc)
                    return
                if not warned:
                    log.info("Waiting for route connection to %s (%s)", key, exc or "timeout")
                    warned = True
                await asyncio.sleep(delay * (0.75 + random.random() * 0.5))
                delay = min(delay * 2, self.reconnect_max_s)
                continue
            await asyncio.shield(link.done)
            if link.refused == "self":
                self._self_urls.add(key)
                log.debug("route %s is this node, not soliciting it", key)
                return
            winner = self.links.get(link.peer_id) if link.peer_id else None
            if winner is not None and winner is not link:
                # linked by another connection (the peer's dial won, or a duplicate):
                # dial again only once that one is gone
                failures = 0
                await asyncio.shield(winner.done)
                delay = self.reconnect_min_s
            elif link.registered:
                failures = 0
                warned = False
                delay = self.reconnect_min_s
            else:  # connected, but no route came of it (not a route port, timeout...)
                failures += 1
                if not explicit and failures >= IMPLICIT_ATTEMPTS:
                    return
                delay = min(delay * 2, self.reconnect_max_s)
            if self._stopping:
                return
            await asyncio.sleep(delay * (0.75 + random.random() * 0.5))

    # -- handshake --

    def _identity(self) -> dict:
        server = self.server
        advertised = [hostport(server.host, server.port)] if specific_host(server.host) else []
        return {"server_id": server.server_id, "server_name": server.server_name,
                "node": server.server_name, "client_urls": advertised,
                "client_port": server.port,
                "route_host": self.listen_host if self._listener and specific_host(self.listen_host)
                else "",
                "route_port": self.listen_port if self._listener else 0}

    def handshake_info(self) -> dict:
        from .server import NATS_COMPAT_VERSION
        info = {"route": True, "version": NATS_COMPAT_VERSION, "proto": 1, "headers": True,
                "max_payload": self.server.limits.max_payload}
        info.update(self._identity())
        return info

    def on_info(self, link: RouteLink, options: dict) -> None:
        if link.registered or not link.solicited:
            if link.registered:
                self._on_gossip(options)
            return
        if not options.get("route"):
            link.refused = "not a route port"
            log.warning("route %s: the peer is not a route listener", link.url)
            link.close(None, "not a route listener")
            return
        self._learn_peer(link, options)
        link.route_url = link.url or ""
        if link.peer_id == self.server.server_id:
            link.refused = "self"
            link.close(None, "route to self")
            return
        existing = self.links.get(link.peer_id)
        if existing is not None and not existing.closed:
            # already linked (both ends registered it): keep it, send no CONNECT
            link.refused = "duplicate"
            link.close(None, "duplicate route")
            return
        connect = {"verbose": False, "pedantic": False, "route": True, "headers": True,
                   "protocol": 1}
        connect.update(self._identity())
        link.send(writer.connect(connect))
        self._register(link)

    def on_connect(self, link: RouteLink, options: dict) -> None:
        if link.solicited or link.registered:
            link.close(nats_errors.UNKNOWN_PROTOCOL_OPERATION, "unexpected CONNECT")
            return
        if not options.get("route") or not options.get("server_id"):
            link.close(nats_errors.AUTHORIZATION_VIOLATION, "CONNECT on the route port")
            return
        self._learn_peer(link, options)
        route_port = int(options.get("route_port") or 0)
        if route_port:
            host = options.get("route_host") or link.peer_ip
            link.route_url = hostport(host, route_port)
        if link.peer_id == self.server.server_id:
            link.refused = "self"
            link.close(None, "route to self")
            return
        if not self._admit(link):
            link.refused = "duplicate"
            link.close(DUPLICATE_ROUTE, "duplicate route")
            return
        self._register(link)

    @staticmethod
    def _learn_peer(link: RouteLink, options: dict) -> None:
        link.peer_id = str(options.get("server_id") or "")
        link.peer_name = str(options.get("node") or options.get("server_name") or link.peer_id)
        urls = [str(url) for url in options.get("client_urls") or () if url]
        if not urls and options.get("client_port") and link.peer_ip:
            urls = [hostport(link.peer_ip, int(options["client_port"]))]
        link.client_urls = urls

    def _admit(self, link: RouteLink) -> bool:
        """Whether the accepted ``link`` (its CONNECT just arrived) becomes the link
        to its peer. The peer sends CONNECT only when it holds no other link to us."""
        existing = self.links.get(link.peer_id)
        if existing is None or existing.closed:
            return True
        if not existing.solicited:  # the peer dialled again: its old link is dead to it
            existing.close(None, "replaced by a newer route from the same peer")
            return True
        # Both nodes dialled and each sent CONNECT before seeing the other's: both
        # ends keep the link dialled by the node with the smaller server_id.
        if self.server.server_id < link.peer_id:
            return False
        existing.close(None, "replaced by the preferred route")
        return True

    def _register(self, link: RouteLink) -> None:
        self.pending.discard(link)
        self.links[link.peer_id] = link
        link.registered_now()
        lines = [interest.sub_line() for interest in self._interest.values()]
        if lines:
            link.send(b"".join(lines))
        log.info("Route connection created for %s (%s, %s)", link.peer_name,
                 "solicited" if link.solicited else "accepted", link.route_url or link.peer_ip)
        self._gossip()
        self._refresh_client_urls()

    def link_closed(self, link: RouteLink) -> None:
        self.pending.discard(link)
        if self.links.get(link.peer_id) is link:
            del self.links[link.peer_id]
            log.info("Route connection to %s closed (%s)", link.peer_name, link.close_reason)
            self._refresh_client_urls()

    # -- gossip --

    def _gossip(self) -> None:
        known = [{"url": link.route_url, "id": peer} for peer, link in self.links.items()
                 if link.route_url]
        if not known:
            return
        line = writer.info({"route": True, "known_routes": known})
        for link in self.links.values():
            link.send(line)

    def _on_gossip(self, options: dict) -> None:
        for entry in options.get("known_routes") or ():
            if not isinstance(entry, dict):
                continue
            peer, url = entry.get("id"), entry.get("url")
            if not url or peer == self.server.server_id or peer in self.links:
                continue
            self.solicit(str(url), explicit=False)

    # -- client URLs --

    def client_urls(self) -> list[str]:
        return list(self._client_urls)

    def _refresh_client_urls(self) -> None:
        if self._stopping:
            return
        urls: list[str] = []
        for link in self.links.values():
            urls.extend(url for url in link.client_urls if url not in urls)
        if urls != self._client_urls:
            self._client_urls = urls
            self.server.refresh_info()

    # -- local interest (hooks from ClientConnection) --

    def local_sub_added(self, sub: Subscription) -> None:
        subject = sub.subject
        if subject.startswith(STAN_PREFIX):
            return
        key = (subject, sub.queue)
        interest = self._interest.get(key)
        if interest is None:
            self._next_sid += 1
            interest = _Interest(subject, sub.queue, b"%d" % self._next_sid)
            self._interest[key] = interest
            self._by_sid[interest.sid] = interest
            line = interest.sub_line()
            for link in self.links.values():
                link.send(line)
        interest.add(sub)

    def local_sub_removed(self, sub: Subscription) -> None:
        key = (sub.subject, sub.queue)
        interest = self._interest.get(key)
        if interest is None or not interest.remove(sub) or interest.members:
            return
        del self._interest[key]
        del self._by_sid[interest.sid]
        line = b"UNSUB %s\r\n" % interest.sid
        for link in self.links.values():
            link.send(line)

    def interest_count(self) -> int:
        """Distinct (subject, queue) pairs this node announces to its peers."""
        return len(self._interest)

    # -- delivery --

    def deliver_remote(self, event: Msg) -> None:
        """A message a peer forwarded for our sid: only the exact (subject, queue)."""
        interest = self._by_sid.get(event.sid)
        if interest is None or not interest.members:
            self.dropped += 1
            return
        members = interest.members
        subject, reply, headers, payload = event.subject, event.reply, event.headers, event.payload
        if interest.queue is None:
            if len(members) == 1:
                sub = members[0]
                sub.conn.deliver(sub, subject, reply, headers, payload)
            else:  # a copy: a delivery may auto-unsubscribe (UNSUB sid max)
                for sub in tuple(members):
                    sub.conn.deliver(sub, subject, reply, headers, payload)
            return
        count = len(members)
        start = random.randrange(count) if count > 1 else 0
        for offset in range(count):
            sub = members[(start + offset) % count]
            if not sub.conn.closed:
                sub.conn.deliver(sub, subject, reply, headers, payload)
                return
        self.dropped += 1

    def local_only(self, subject: bytes, plain: tuple, groups: tuple) -> tuple[tuple, tuple]:
        """A match result without the peers' subscriptions (for internal publishes).

        Cached per subject and checked by identity: the router hands out the same
        tuples until its subscription set changes."""
        if not self.route_subs:
            return plain, groups
        cached = self._local_cache.get(subject)
        if cached is not None and cached[0] is plain and cached[1] is groups:
            return cached[2], cached[3]
        local_plain = tuple(sub for sub in plain if sub.conn.__class__ is not RouteLink)
        local_groups = tuple(members for members in (
            tuple(sub for sub in group if sub.conn.__class__ is not RouteLink) for group in groups)
            if members)
        if len(self._local_cache) >= 4096:
            self._local_cache.clear()
        self._local_cache[subject] = (plain, groups, local_plain, local_groups)
        return local_plain, local_groups

    # -- introspection (tests, monitoring) --

    def peers(self) -> list[dict]:
        return [{"server_id": peer, "name": link.peer_name, "solicited": link.solicited,
                 "route_url": link.route_url, "client_urls": list(link.client_urls),
                 "subscriptions": len(link.subs), "in_msgs": link.in_msgs,
                 "out_msgs": link.out_msgs} for peer, link in self.links.items()]

    def snapshot(self) -> str:
        return json.dumps({"links": self.peers(), "interest": len(self._interest)})
