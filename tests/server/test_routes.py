"""Routes between nodes, in process: several NatsServer + RouteManager on loopback
ports in this test's event loop, judged by real nats-py clients (and raw sockets).

Interest travels asynchronously between nodes (as in nats-server): after a client
subscribes, a test waits until the other nodes hold the route subscription before
publishing. Absence is proven with ordering markers: a link is one ordered stream,
so once a later marker has arrived, an earlier message would have too.
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass

import pytest
from nats import errors as nats_errors

from broker.server import InternalClient, NatsServer
from broker.server.routes import RouteLink, RouteManager, parse_route_url
from tests.support.clients import (NatsPool, NodeJudge, RawClient, barrier, node_available,
                                   run_judge, sync, take_pending, wait_until)
from tests.support.procs import free_port

pytestmark = pytest.mark.timeout(30)


@dataclass
class Node:
    server: NatsServer
    routes: RouteManager

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.server.port}"

    @property
    def route_url(self) -> str:
        return f"nats://127.0.0.1:{self.routes.listen_port}"

    @property
    def id(self) -> str:
        return self.server.server_id

    def remote_subs(self) -> list[tuple[bytes, bytes | None]]:
        """(subject, queue) of the peers' subscriptions in this node's router."""
        return [(s.subject, s.queue) for s in self.server.router.all_subscriptions()
                if isinstance(s.conn, RouteLink)]

    async def stop(self) -> None:
        await self.routes.stop()
        await self.server.stop()


async def start_node(routes=(), *, port: int = 0, route_port: int = 0) -> Node:
    server = NatsServer("127.0.0.1", port)
    await server.start()
    manager = RouteManager(server, f"nats://127.0.0.1:{route_port}", routes,
                           reconnect_min_s=0.02, reconnect_max_s=0.2)
    await manager.start()
    return Node(server, manager)


def fully_linked(nodes: list[Node]) -> bool:
    """One registered link per pair, and both ends are the same TCP connection."""
    for node in nodes:
        if len(node.routes.links) != len(nodes) - 1 or node.routes.pending:
            return False
        for other in nodes:
            if other is node:
                continue
            mine, theirs = node.routes.links.get(other.id), other.routes.links.get(node.id)
            if mine is None or theirs is None or mine.closed or theirs.closed:
                return False
            if (mine.transport.get_extra_info("sockname")
                    != theirs.transport.get_extra_info("peername")):
                return False
    return True


async def linked(nodes: list[Node], timeout: float = 5.0) -> None:
    await wait_until(lambda: fully_linked(nodes), timeout, what="a full mesh of routes")


async def interest(nodes: list[Node], holder: Node, subject: str, queue: str | None = None,
                   present: bool = True) -> None:
    """Wait until every node but ``holder`` knows (or no longer knows) its interest."""
    key = (subject.encode(), queue.encode() if queue else None)
    await wait_until(lambda: all((key in n.remote_subs()) == present
                                 for n in nodes if n is not holder),
                     what=f"route interest {key} present={present}")


@pytest.fixture
async def pool():
    pool = NatsPool()
    yield pool
    await pool.close_all()


@pytest.fixture
async def cluster():
    """``await cluster(3)``: a full mesh where every node lists every route URL,
    its own included (as one shared config file would)."""
    started: list[Node] = []

    async def make(count: int) -> list[Node]:
        ports = [free_port() for _ in range(count)]
        urls = [f"nats://127.0.0.1:{p}" for p in ports]
        nodes = [await start_node(urls, route_port=p) for p in ports]
        started.extend(nodes)
        await linked(nodes)
        return nodes

    yield make
    for node in started:
        await node.stop()


@pytest.fixture
async def nodes(cluster):
    return await cluster(3)


async def collect(sub, count: int, timeout: float = 5.0) -> list:
    return [await sub.next_msg(timeout=timeout) for _ in range(count)]


# --------------------------------------------------------------------------
# topology


def test_parse_route_url():
    assert parse_route_url("nats://127.0.0.1:6222") == ("127.0.0.1", 6222)
    assert parse_route_url("nats-route://u:p@host.example:7000/") == ("host.example", 7000)
    assert parse_route_url("0.0.0.0:-1") == ("0.0.0.0", 0)
    assert parse_route_url("nats://[::1]:6223") == ("::1", 6223)
    assert parse_route_url("nats://seed") == ("seed", 6222)


async def test_full_mesh_with_self_routes_has_one_link_per_pair(nodes):
    for node in nodes:
        assert len(node.routes.links) == 2
        assert f"127.0.0.1:{node.routes.listen_port}" in node.routes._self_urls
    await asyncio.sleep(0.3)  # solicitors that lost the duplicate race stay quiet
    assert fully_linked(nodes)


async def test_seed_routes_become_a_full_mesh_by_gossip():
    seed = await start_node()
    others = [await start_node([seed.route_url]) for _ in range(2)]
    nodes = [seed, *others]
    try:
        await linked(nodes)
        b, c = others
        assert b.routes.links[c.id].route_url or c.routes.links[b.id].route_url
    finally:
        for node in nodes:
            await node.stop()


async def test_route_port_refuses_a_plain_client(nodes):
    raw = await RawClient.connect("127.0.0.1", nodes[0].routes.listen_port, handshake=False)
    assert raw.info["route"] is True and raw.info["server_id"] == nodes[0].id
    await raw.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    assert await raw.expect_error_and_close() == "Authorization Violation"
    await raw.close()


# --------------------------------------------------------------------------
# messages across nodes


async def test_pub_on_one_node_reaches_subscribers_on_the_others(nodes, pool):
    a, b, c = nodes
    sub_b = await (await pool.connect(b.url)).subscribe("orders.new")
    sub_c = await (await pool.connect(c.url)).subscribe("orders.new")
    await barrier(*pool.conns)
    await interest(nodes, b, "orders.new")
    await interest(nodes, c, "orders.new")
    pub = await pool.connect(a.url)
    payloads = [f"o-{i}".encode() for i in range(100)] + [b"", b"\x00\r\n\xffbin"]
    for payload in payloads:
        await pub.publish("orders.new", payload, reply="reply.to")
    await sync(pub)
    for sub in (sub_b, sub_c):
        msgs = await collect(sub, len(payloads))
        assert [m.data for m in msgs] == payloads
        assert {(m.subject, m.reply) for m in msgs} == {("orders.new", "reply.to")}


async def test_headers_cross_routes_and_are_stripped_for_plain_clients(nodes, pool):
    a, b, _ = nodes
    sub = await (await pool.connect(b.url)).subscribe("h.x")
    raw = await RawClient.connect("127.0.0.1", b.server.port, headers=False)
    await raw.sub("h.x", 7)
    await raw.ping()
    await barrier(*pool.conns)
    await wait_until(lambda: Counter(a.remote_subs())[(b"h.x", None)] == 1,
                     what="one route sub for two local subs")
    pub = await pool.connect(a.url)
    await pub.publish("h.x", b"body", headers={"Trace-Id": "abc", "Multi": "1"})
    await sync(pub)
    msg = await sub.next_msg(timeout=5)
    assert msg.data == b"body" and msg.headers == {"Trace-Id": "abc", "Multi": "1"}
    raw_msg = await raw.next_msg()
    assert (raw_msg.op, raw_msg.sid, raw_msg.payload) == ("MSG", "7", b"body")
    await raw.close()


async def test_wildcards_across_nodes_one_message_per_matching_sid(nodes, pool):
    a, b, c = nodes
    nc_b = await pool.connect(b.url)
    star = await nc_b.subscribe("metrics.*")
    tail = await nc_b.subscribe("metrics.>")
    exact = await nc_b.subscribe("metrics.cpu")
    other = await (await pool.connect(c.url)).subscribe("metrics.*.load")
    await barrier(*pool.conns)
    for subject in ("metrics.*", "metrics.>", "metrics.cpu"):
        await interest(nodes, b, subject)
    await interest(nodes, c, "metrics.*.load")
    pub = await pool.connect(a.url)
    for subject in ("metrics.cpu", "metrics.mem", "metrics.host1.load", "metrics", "other.cpu"):
        await pub.publish(subject, subject.encode())
    marker_subjects = ("metrics.end", "metrics.end.load")
    for subject in marker_subjects:
        await pub.publish(subject, b"end")
    await sync(pub)
    got = {name: [m.subject for m in await collect(sub, n)]
           for name, sub, n in (("star", star, 3), ("tail", tail, 5), ("exact", exact, 1),
                                ("other", other, 2))}
    assert got == {"star": ["metrics.cpu", "metrics.mem", "metrics.end"],
                   "tail": ["metrics.cpu", "metrics.mem", "metrics.host1.load", "metrics.end",
                            "metrics.end.load"],
                   "exact": ["metrics.cpu"],
                   "other": ["metrics.host1.load", "metrics.end.load"]}
    await barrier(nc_b)
    assert (star.pending_msgs, tail.pending_msgs, exact.pending_msgs) == (0, 0, 0)


async def test_full_mesh_delivers_each_message_exactly_once(nodes, pool):
    subs, pubs = [], []
    for node in nodes:
        nc = await pool.connect(node.url)
        subs.append(await nc.subscribe("mesh.>"))
        pubs.append(await pool.connect(node.url))
    await barrier(*pool.conns)
    for node in nodes:
        await interest(nodes, node, "mesh.>")
    per_node = 60
    for index, pub in enumerate(pubs):
        for i in range(per_node):
            await pub.publish(f"mesh.n{index}", f"{index}-{i}".encode())
        await pub.publish(f"mesh.n{index}", f"{index}-end".encode())
    for pub in pubs:
        await sync(pub)
    expected = [f"{n}-{i}" for n in range(3) for i in list(range(per_node)) + ["end"]]
    for sub in subs:
        msgs = await collect(sub, len(expected))
        data = [m.data.decode() for m in msgs]
        assert sorted(data) == sorted(expected)
        for n in range(3):  # in order per publisher
            assert [d for d in data if d.startswith(f"{n}-")] == [f"{n}-{i}" for i in
                                                                  list(range(per_node)) + ["end"]]
    await asyncio.sleep(0.2)  # a loop or duplicate would still be arriving
    assert [sub.pending_msgs for sub in subs] == [0, 0, 0]
    for node in nodes:
        assert node.routes.dropped == 0


async def test_queue_group_spanning_three_nodes_delivers_each_message_once(nodes, pool):
    a, b, c = nodes
    received: list[list[bytes]] = [[] for _ in range(4)]

    def member(index):
        async def on_msg(msg):
            received[index].append(msg.data)
        return on_msg

    for index, node in enumerate(nodes):
        nc = await pool.connect(node.url)
        await nc.subscribe("jobs.run", queue="workers", cb=member(index))
    # a member of the same group on another pattern, and a plain subscriber
    await (await pool.connect(c.url)).subscribe("jobs.*", queue="workers", cb=member(3))
    plain = await (await pool.connect(b.url)).subscribe("jobs.run")
    await barrier(*pool.conns)
    for node in nodes:
        await interest(nodes, node, "jobs.run", "workers")
    await interest(nodes, c, "jobs.*", "workers")
    await interest(nodes, b, "jobs.run")
    pubs = [await pool.connect(node.url) for node in nodes]
    sent = []
    for round_ in range(100):
        for index, pub in enumerate(pubs):
            payload = f"{index}-{round_}".encode()
            sent.append(payload)
            await pub.publish("jobs.run", payload)
    for pub in pubs:
        await sync(pub)
    assert sorted(m.data for m in await collect(plain, len(sent))) == sorted(sent)
    await wait_until(lambda: sum(map(len, received)) >= len(sent), what="every queued message")
    await asyncio.sleep(0.2)  # a duplicate would still be arriving
    everything = [payload for got in received for payload in got]
    assert sorted(everything) == sorted(sent), "each message exactly once across the cluster"
    assert all(received), f"every member gets some: {[len(r) for r in received]}"


async def test_request_reply_across_nodes_both_styles(nodes, pool):
    a, b, c = nodes
    responder = await pool.connect(b.url)

    async def echo(msg):
        await msg.respond(b"echo:" + msg.data)

    await responder.subscribe("svc.echo", cb=echo)
    await barrier(responder)
    await interest(nodes, b, "svc.echo")
    for node in (a, c):
        nc = await pool.connect(node.url)
        for i in range(20):
            reply = await nc.request("svc.echo", b"new-%d" % i, timeout=2)
            assert reply.data == b"echo:new-%d" % i
        for i in range(5):
            reply = await nc.request("svc.echo", b"old-%d" % i, timeout=2, old_style=True)
            assert reply.data == b"echo:old-%d" % i
    # the old-style inboxes (UNSUB sid 1) no longer hold interest anywhere
    await wait_until(lambda: not any(s.startswith(b"_INBOX.") and not s.endswith(b".*")
                                     for node in nodes for s, _ in node.remote_subs()),
                     what="auto-unsubscribed inboxes to leave the peers")


async def test_no_responders_is_cluster_wide(nodes, pool):
    a, b, _ = nodes
    requester = await pool.connect(a.url)
    with pytest.raises(nats_errors.NoRespondersError):
        await requester.request("lonely.subject", b"?", timeout=2)
    responder = await pool.connect(b.url)

    async def answer(msg):
        await msg.respond(b"here")

    await responder.subscribe("lonely.subject", cb=answer)
    await barrier(responder)
    await interest(nodes, b, "lonely.subject")
    assert (await requester.request("lonely.subject", b"?", timeout=2)).data == b"here"


async def test_queue_responders_on_every_node_answer_once(nodes, pool):
    for node in nodes:
        nc = await pool.connect(node.url)

        async def answer(msg, name=node.server.server_name):
            await msg.respond(name.encode())

        await nc.subscribe("svc.q", queue="responders", cb=answer)
    await barrier(*pool.conns)
    for node in nodes:
        await interest(nodes, node, "svc.q", "responders")
    requester = await pool.connect(nodes[0].url)
    inbox = await requester.subscribe("_INBOX.manual.*")
    await barrier(requester)
    await interest(nodes, nodes[0], "_INBOX.manual.*")
    for i in range(30):
        await requester.publish("svc.q", b"", reply=f"_INBOX.manual.{i}")
    await sync(requester)
    replies = await collect(inbox, 30)
    await asyncio.sleep(0.2)
    assert inbox.pending_msgs == 0
    assert sorted(m.subject for m in replies) == sorted(f"_INBOX.manual.{i}" for i in range(30))


@pytest.mark.skipif(not node_available(), reason="node or npm nats missing")
async def test_nats_js_clients_across_nodes(nodes, pool):
    a, b, c = nodes
    async with NodeJudge("sub", b.url, subject="js.x", expect=5) as sub:
        await sub.ready()
        await interest(nodes, b, "js.x")
        pub = await pool.connect(a.url)
        for i in range(5):
            await pub.publish("js.x", b"m%d" % i, headers={"H": "v"})
        await sync(pub)
        result = await sub.result()
    assert [m["data"] for m in result["messages"]] == [f"m{i}" for i in range(5)]
    assert result["messages"][0]["headers"]["map"] == {"H": ["v"]}
    async with NodeJudge("reply", b.url, subject="js.svc", ctl="js.ctl", prefix="re:") as rep:
        await rep.ready()
        await interest(nodes, b, "js.svc")
        await interest(nodes, b, "js.ctl")
        for no_mux in (False, True):  # the muxed inbox and the old-style inbox
            answer = await run_judge("request", c.url, subject="js.svc", payload="q",
                                     no_mux=no_mux, headers={"Trace": "t"})
            assert answer["reply"]["data"] == "re:q", answer
            assert answer["reply"]["headers"]["map"] == {"Trace": ["t"], "Responder": ["node"]}
        ctl = await pool.connect(a.url)
        await ctl.publish("js.ctl", b"stop")
        await sync(ctl)
        assert (await rep.result())["served"] == 2


# --------------------------------------------------------------------------
# what stays local


async def test_stan_requests_are_answered_once_by_the_local_node(nodes, pool):
    """Each node's STAN service subscribes _STAN.* as an internal client: those
    subscriptions and the replies (internal publishes) never cross a route."""
    for node in nodes:
        client = InternalClient("stan")

        def on_request(subject, reply, headers, payload, server=node.server):
            server.publish(None, reply, None, None, server.server_id.encode())

        node.server.subscribe_internal(client, b"_STAN.discover.tc", None, on_request)
    # a client on another node subscribed to _STAN.> and to the requester's inbox
    # wildcard's parent: neither makes the request or its reply cross a route
    watcher = await pool.connect(nodes[1].url)
    stan_watch = await watcher.subscribe("_STAN.>")
    await barrier(watcher)
    requester = await pool.connect(nodes[0].url)
    inbox = await requester.subscribe("_INBOX.r.*")
    await barrier(requester)
    await interest(nodes, nodes[0], "_INBOX.r.*")
    assert all((b"_STAN.>", None) not in node.remote_subs() for node in nodes)
    for i in range(10):
        await requester.publish("_STAN.discover.tc", b"connect", reply=f"_INBOX.r.{i}")
    await sync(requester)
    replies = await collect(inbox, 10)
    assert {m.data.decode() for m in replies} == {nodes[0].id}
    await requester.publish("marker", b"")  # nothing else is on its way
    await asyncio.sleep(0.2)
    await barrier(requester, watcher)
    assert inbox.pending_msgs == 0 and stan_watch.pending_msgs == 0


async def test_internal_publishes_and_subscriptions_stay_local(nodes, pool):
    a, b, _ = nodes
    nc_a = await pool.connect(a.url)
    nc_b = await pool.connect(b.url)
    sub_a = await nc_a.subscribe("local.x")
    sub_b = await nc_b.subscribe("local.x")
    await barrier(nc_a, nc_b)
    await interest(nodes, b, "local.x")
    assert a.server.has_subscribers(b"local.x")  # its own client
    a.server.publish(None, b"local.x", None, None, b"internal")
    await nc_a.publish("local.x", b"client")
    await barrier(nc_a, nc_b)
    assert [m.data for m in await collect(sub_a, 2)] == [b"internal", b"client"]
    assert [m.data for m in await collect(sub_b, 1)] == [b"client"]
    assert sub_b.pending_msgs == 0
    # an internal publish reaches nobody when only another node listens
    await sub_a.unsubscribe()
    await barrier(nc_a)
    assert not a.server.has_subscribers(b"local.x")
    # an internal subscription is not announced to other nodes
    a.server.subscribe_internal(InternalClient("svc"), b"internal.only", None,
                                lambda *args: None)
    await nc_b.publish("internal.sync", b"")
    await barrier(nc_b)
    await asyncio.sleep(0.1)
    assert all((b"internal.only", None) not in node.remote_subs() for node in nodes)


async def test_interest_is_reference_counted(nodes, pool):
    a, b, _ = nodes
    first = await pool.connect(b.url)
    second = await pool.connect(b.url)
    s1 = await first.subscribe("rc.x")
    s2 = await second.subscribe("rc.x")
    s3 = await second.subscribe("rc.x", queue="q")
    stan = await second.subscribe("_STAN.private")
    await barrier(first, second)
    await interest(nodes, b, "rc.x")
    await interest(nodes, b, "rc.x", "q")
    assert Counter(a.remote_subs()) == {(b"rc.x", None): 1, (b"rc.x", b"q"): 1}
    await s1.unsubscribe()
    await barrier(first)
    await asyncio.sleep(0.1)
    assert (b"rc.x", None) in a.remote_subs()
    await s3.unsubscribe()
    await barrier(second)
    await interest(nodes, b, "rc.x", "q", present=False)
    await second.close()  # the connection's last subscriptions go with it
    await interest(nodes, b, "rc.x", present=False)
    assert a.remote_subs() == [] and b.routes.interest_count() == 0
    del s2, stan


# --------------------------------------------------------------------------
# cluster membership for clients


async def test_connect_urls_list_every_node_and_protocol_1_clients_get_async_info(pool):
    a = await start_node()
    nodes = [a]
    try:
        nc = await pool.connect(a.url)
        assert nc.discovered_servers == []
        raw0 = await RawClient.connect("127.0.0.1", a.server.port, protocol=0)
        raw1 = await RawClient.connect("127.0.0.1", a.server.port, protocol=1)
        nodes += [await start_node([a.route_url]) for _ in range(2)]
        await linked(nodes)
        every = sorted(f"127.0.0.1:{n.server.port}" for n in nodes)
        for node in nodes:
            assert sorted(node.server.connect_urls()) == every
        await wait_until(lambda: len(nc.discovered_servers) == 2, what="nats-py discovery")
        assert sorted(u.netloc for u in nc.discovered_servers) == sorted(every[i] for i in range(3)
                                                                         if every[i] != a.url[7:])

        async def infos(raw):
            seen = []
            await raw.send(b"PING\r\n")
            while True:
                op = await raw.read_op(5)
                if op[0] == "PONG":
                    return seen
                if op[0] == "INFO":
                    seen.append(op[1])

        got1 = await infos(raw1)
        assert got1 and sorted(got1[-1]["connect_urls"]) == every
        assert got1[-1]["client_id"] and got1[-1]["server_id"] == a.id
        assert await infos(raw0) == []
        # a node that leaves is dropped from connect_urls
        await nodes[2].stop()
        nodes.pop()
        await wait_until(lambda: len(a.server.connect_urls()) == 2, what="connect_urls shrink")
        await raw0.close()
        await raw1.close()
    finally:
        for node in nodes:
            await node.stop()


async def test_a_client_in_its_handshake_gets_the_info_it_missed_after_its_first_pong():
    """nats-py reads exactly one line (the PONG) after CONNECT+PING, so an async
    INFO must not come before it; a change during the handshake follows the PONG."""
    a = await start_node()
    nodes = [a]
    try:
        raw = await RawClient.connect("127.0.0.1", a.server.port, handshake=False)
        assert "connect_urls" not in raw.info or len(raw.info["connect_urls"]) == 1
        nodes.append(await start_node([a.route_url]))
        await linked(nodes)
        await raw.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
        assert (await raw.read_op())[0] == "PONG"
        op = await raw.read_op()
        assert op[0] == "INFO" and f"127.0.0.1:{nodes[1].server.port}" in op[1]["connect_urls"]
        await raw.send(b"PING\r\n")
        assert (await raw.read_op())[0] == "PONG"  # once only
        await raw.close()
    finally:
        for node in nodes:
            await node.stop()


async def test_route_is_reestablished_after_a_peer_restart(pool):
    a_port, b_port, b_client_port = free_port(), free_port(), free_port()
    a = await start_node([f"nats://127.0.0.1:{b_port}"], route_port=a_port)
    b = await start_node([f"nats://127.0.0.1:{a_port}"], route_port=b_port, port=b_client_port)
    nodes = [a, b]
    try:
        await linked(nodes)
        sub = await (await pool.connect(a.url)).subscribe("after.restart")
        await barrier(*pool.conns)
        await interest(nodes, a, "after.restart")
        old_id = b.id
        await b.stop()
        await wait_until(lambda: not a.routes.links, what="A to notice B is gone")
        b = await start_node([f"nats://127.0.0.1:{a_port}"], route_port=b_port,
                             port=b_client_port)
        nodes[1] = b
        assert b.id != old_id
        await linked(nodes)
        await interest(nodes, a, "after.restart")  # A re-announced its interest
        pub = await pool.connect(b.url)
        await pub.publish("after.restart", b"back")
        await sync(pub)
        assert (await sub.next_msg(timeout=5)).data == b"back"
    finally:
        for node in nodes:
            await node.stop()


async def test_route_link_replaced_when_dropped_mid_stream(nodes, pool):
    """A route cut without a shutdown is redialled and interest is re-sent."""
    a, b, _ = nodes
    sub = await (await pool.connect(b.url)).subscribe("cut.x")
    await barrier(*pool.conns)
    await interest(nodes, b, "cut.x")
    old = a.routes.links[b.id]
    old.transport.abort()
    await wait_until(lambda: old.closed and a.routes.links.get(b.id) not in (None, old),
                     what="a new link from A to B")
    await linked(nodes)
    await interest(nodes, b, "cut.x")
    pub = await pool.connect(a.url)
    await pub.publish("cut.x", b"again")
    await sync(pub)
    assert (await sub.next_msg(timeout=5)).data == b"again"
    await asyncio.sleep(0.1)
    await barrier(*pool.conns)
    assert sub.pending_msgs == 0


# --------------------------------------------------------------------------
# the route protocol on the wire, against a fake peer


class FakePeer:
    """One end of a route link driven by the test: raw lines in both directions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, timeout: float = 5.0) -> bytes:
        """The next control line that is not a PING (answered) ; b"" at EOF."""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if line == b"PING\r\n":
                await self.send(b"PONG\r\n")
                continue
            return line.rstrip(b"\r\n")

    async def msg(self, timeout: float = 5.0) -> tuple[list[bytes], bytes]:
        """The next MSG/HMSG: its control line's fields and its body."""
        parts = (await self.line(timeout)).split()
        assert parts[0] in (b"MSG", b"HMSG"), parts
        body = await asyncio.wait_for(self.reader.readexactly(int(parts[-1]) + 2), timeout)
        return parts, body[:-2]

    async def eof(self, timeout: float = 5.0) -> bool:
        try:
            while await asyncio.wait_for(self.reader.read(4096), timeout):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def fake_identity(peer_id: str) -> dict:
    return {"route": True, "server_id": peer_id, "node": "fake", "client_urls": [],
            "client_port": 0, "route_port": 0}


async def test_route_wire_protocol_interest_and_messages(pool):
    node = await start_node()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.routes.listen_port)
        fake = FakePeer(reader, writer)
        verb, _, info = (await fake.line()).partition(b" ")
        info = json.loads(info)
        assert verb == b"INFO" and info["route"] is True and info["server_id"] == node.id
        assert info["client_urls"] == [f"127.0.0.1:{node.server.port}"]
        await fake.send(b"CONNECT " + json.dumps(fake_identity("F" * 56)).encode() + b"\r\n")
        # the node's local interest arrives as SUB lines; the fake announces its own
        nc = await pool.connect(node.url)
        plain = await nc.subscribe("to.node")
        queued = await nc.subscribe("to.node", queue="grp")
        await nc.subscribe("_STAN.never")
        await barrier(nc)
        subs = {}
        for _ in range(2):
            parts = (await fake.line()).split()
            assert parts[0] == b"SUB"
            subs[tuple(parts[1:-1])] = parts[-1]
        assert set(subs) == {(b"to.node",), (b"to.node", b"grp")}
        await fake.send(b"SUB to.fake 91\r\nSUB to.* grp 92\r\nPING\r\n")
        assert await fake.line() == b"PONG"
        # a local publish goes to the fake once per matching (subject, queue)
        await nc.publish("to.fake", b"hi", headers={"A": "b"})
        await sync(nc)
        got = sorted([await fake.msg() for _ in range(2)])
        assert [parts[:3] for parts, _ in got] == [[b"HMSG", b"to.fake", b"91"],
                                                   [b"HMSG", b"to.fake", b"92"]]
        assert {body for _, body in got} == {b"NATS/1.0\r\nA: b\r\n\r\nhi"}
        # a routed message reaches exactly the (subject, queue) of its sid
        await fake.send(b"MSG to.node %s 5\r\nplain\r\n" % subs[(b"to.node",)])
        await fake.send(b"MSG to.node %s reply.x 6\r\nqueued\r\n" % subs[(b"to.node", b"grp")])
        await fake.send(b"MSG to.node 999999 4\r\nlost\r\n")  # unknown sid: dropped
        await fake.send(b"PING\r\n")
        assert await fake.line() == b"PONG"
        await barrier(nc)
        assert [(m.data, m.reply) for m in await take_pending(plain)] == [(b"plain", "")]
        assert [(m.data, m.reply) for m in await take_pending(queued)] == [(b"queued", "reply.x")]
        assert node.routes.dropped == 1
        # an internal publish is not forwarded
        node.server.publish(None, b"to.fake", None, None, b"internal")
        await fake.send(b"PING\r\n")
        assert await fake.line() == b"PONG"
        # the last local subscription of a pair goes: UNSUB
        await nc.close()
        unsubs = sorted([await fake.line() for _ in range(2)])
        assert unsubs == sorted(b"UNSUB " + sid for sid in subs.values())
        fake.close()
    finally:
        await node.stop()


@pytest.mark.parametrize("fake_is_smaller", [True, False])
async def test_simultaneous_dials_keep_the_link_of_the_smaller_server_id(fake_is_smaller):
    """The node dials the fake and the fake dials the node; each end sent CONNECT
    before it saw the other's. Both must keep the link dialled by the smaller ID."""
    fake_id = ("A" if fake_is_smaller else "Z") * 56
    dialled: asyncio.Queue = asyncio.Queue()

    async def on_dial(reader, writer):
        await dialled.put(FakePeer(reader, writer))

    listener = await asyncio.start_server(on_dial, "127.0.0.1", 0)
    fake_port = listener.sockets[0].getsockname()[1]
    node = await start_node([f"nats://127.0.0.1:{fake_port}"])
    try:
        inbound = await asyncio.wait_for(dialled.get(), 5)  # the node's dial
        await inbound.send(b"INFO " + json.dumps(fake_identity(fake_id)).encode() + b"\r\n")
        verb, _, connect = (await inbound.line()).partition(b" ")
        assert verb == b"CONNECT" and json.loads(connect)["server_id"] == node.id
        assert node.routes.links[fake_id].solicited

        reader, writer = await asyncio.open_connection("127.0.0.1", node.routes.listen_port)
        outbound = FakePeer(reader, writer)  # the fake's dial
        assert (await outbound.line()).startswith(b"INFO ")
        await outbound.send(b"CONNECT " + json.dumps(fake_identity(fake_id)).encode()
                            + b"\r\nPING\r\n")
        if fake_is_smaller:  # the fake's dial wins; the node drops its own
            assert await outbound.line() == b"PONG"
            assert await inbound.eof()
            await wait_until(lambda: fake_id in node.routes.links
                             and not node.routes.links[fake_id].solicited, what="switch")
            # the node does not dial again while that link lives ...
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(dialled.get(), 0.3)
            outbound.close()
            # ... and does once it is gone
            again = await asyncio.wait_for(dialled.get(), 5)
            again.close()
        else:  # the node's dial wins; the fake's is refused
            assert await outbound.line() == b"-ERR 'Duplicate Route'"
            assert await outbound.eof()
            assert node.routes.links[fake_id].solicited
            inbound.close()
    finally:
        await node.stop()
        listener.close()
        await listener.wait_closed()


async def test_a_newer_link_from_the_same_peer_replaces_the_older():
    node = await start_node()
    try:
        peers = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", node.routes.listen_port)
            peer = FakePeer(reader, writer)
            assert (await peer.line()).startswith(b"INFO ")
            await peer.send(b"CONNECT " + json.dumps(fake_identity("F" * 56)).encode()
                            + b"\r\nPING\r\n")
            assert await peer.line() == b"PONG"
            peers.append(peer)
        assert await peers[0].eof()
        assert len(node.routes.links) == 1 and not node.routes.links["F" * 56].closed
        peers[1].close()
    finally:
        await node.stop()
