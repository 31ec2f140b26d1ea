"""The npm `nats` client (nats.js, run by node) as a second judge, alone and with nats-py.

Node runs ``tests/js/judge.mjs``: it takes the server URL and a JSON object of
parameters on argv, prints JSON lines, and always exits on its own before its
deadline. Long-lived node roles (subscriber, responder) say ``ready`` once their
subscriptions are known to the server, and report when a message arrives on a
control subject: published after the data by the same connection, it arrives
after everything that connection sent before it.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.support.clients import (NatsPool, NodeJudge, barrier, node_available, run_judge,
                                   take_pending, wait_until)

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not node_available(),
                                 reason="node or tests/js/node_modules/nats missing (make js)")]


@pytest.fixture
def server(runnel_factory):
    return runnel_factory(http=False)


@pytest.fixture
async def pool():
    pool = NatsPool()
    yield pool
    await pool.close_all()


# --------------------------------------------------------------------------
# node alone


async def test_node_pub_sub_and_wildcards(server):
    result = await run_judge("pubsub", server.url, prefix="js.ps", count=25)
    assert result["literal"] == [f"m{i}" for i in range(25)]
    assert result["star"] == ["js.ps.data"] * 25  # `*` is one token: not js.ps.a.b
    # `>` is one or more tokens: js.ps.a.b yes, the bare `js.ps` no.
    assert result["tail"] == ["js.ps.data"] * 25 + ["js.ps.a.b"]


async def test_node_queue_group(server):
    result = await run_judge("queue", server.url, subject="js.work", group="g",
                             count=300, members=3)
    assert sum(result["member_counts"]) == 300
    assert result["distinct"] == 300 and result["duplicates"] == 0
    assert all(result["member_counts"]), result["member_counts"]
    assert result["plain"] == 300


async def test_node_auth(runnel_factory):
    node = runnel_factory("--user", "bob", "--pass", "pw", http=False)
    ok, bad, missing = await asyncio.gather(
        run_judge("connect", node.url, user="bob", **{"pass": "pw"}),
        run_judge("connect", node.url, user="bob", **{"pass": "nope"}),
        run_judge("connect", node.url))
    assert ok["connected"] is True
    for failed in (bad, missing):
        assert failed["connected"] is False
        assert failed["error_code"] == "AUTHORIZATION_VIOLATION", failed


# --------------------------------------------------------------------------
# across the two clients


async def test_python_publishes_node_subscribes(server, pool):
    async with NodeJudge("sub", server.url, subject="x.py2js.>", ctl="x.py2js-ctl") as node:
        await node.ready()
        nc = await pool.connect(server.url)
        for i in range(100):
            await nc.publish(f"x.py2js.{i % 3}", f"py-{i}".encode())
        await nc.publish("x.py2js.r", b"with reply", reply="some.reply")
        await nc.publish("x.py2js-ctl", b"stop")
        await barrier(nc)
        messages = (await node.result())["messages"]
    assert [m["data"] for m in messages] == [f"py-{i}" for i in range(100)] + ["with reply"]
    assert [m["subject"] for m in messages[:3]] == ["x.py2js.0", "x.py2js.1", "x.py2js.2"]
    assert messages[-1]["reply"] == "some.reply"


async def test_node_publishes_python_subscribes(server, pool):
    nc = await pool.connect(server.url)
    sub = await nc.subscribe("x.js2py")
    ctl = await nc.subscribe("x.js2py-ctl")
    await barrier(nc)
    await run_judge("pub", server.url, subject="x.js2py", count=100, payload="js-",
                    ctl="x.js2py-ctl")
    await asyncio.wait_for(ctl.next_msg(timeout=5), 6)
    await barrier(nc)
    msgs = await take_pending(sub)
    assert [m.data for m in msgs] == [f"js-{i}".encode() for i in range(100)]


async def test_queue_group_spanning_both_clients(server, pool):
    count = 400
    async with NodeJudge("sub", server.url, subject="x.shared", queue="mixed",
                         ctl="x.shared-ctl") as node:
        await node.ready()
        member_nc = await pool.connect(server.url)
        py_member = await member_nc.subscribe("x.shared", queue="mixed")
        plain_nc = await pool.connect(server.url)
        plain = await plain_nc.subscribe("x.shared")
        await barrier(member_nc, plain_nc)

        pub_nc = await pool.connect(server.url)
        expected = [f"m{i}" for i in range(count)]
        for payload in expected:
            await pub_nc.publish("x.shared", payload.encode())
        await pub_nc.publish("x.shared-ctl", b"stop")
        await barrier(pub_nc, member_nc, plain_nc)
        node_got = [m["data"] for m in (await node.result())["messages"]]

    py_got = [m.data.decode() for m in await take_pending(py_member)]
    assert len(node_got) + len(py_got) == count, (len(node_got), len(py_got))
    assert sorted(node_got + py_got) == sorted(expected)  # each message once in the group
    assert not set(node_got) & set(py_got)
    assert node_got and py_got, "both members must get some messages"
    assert [m.data.decode() for m in await take_pending(plain)] == expected


async def test_python_requests_node_responds(server, pool):
    async with NodeJudge("reply", server.url, subject="svc.node", ctl="svc.node-ctl",
                         prefix="node:") as node:
        await node.ready()
        nc = await pool.connect(server.url)
        muxed = await asyncio.gather(*(nc.request("svc.node", f"r{i}".encode(), timeout=5,
                                                  headers={"X-Req": str(i)})
                                       for i in range(10)))
        old = await nc.request("svc.node", b"old", timeout=5, old_style=True)
        await nc.publish("svc.node-ctl", b"stop")
        await barrier(nc)
        result = await node.result()
    assert [m.data for m in muxed] == [f"node:r{i}".encode() for i in range(10)]
    for i, m in enumerate(muxed):
        assert m.headers == {"X-Req": str(i), "Responder": "node"}
    assert old.data == b"node:old"
    assert result["served"] == 11


async def test_node_requests_python_responds(server, pool):
    nc = await pool.connect(server.url)

    async def answer(msg):
        headers = dict(msg.headers or {})
        headers["Responder"] = "python"
        await nc.publish(msg.reply, b"py:" + msg.data, headers=headers)

    await nc.subscribe("svc.py", cb=answer)
    await barrier(nc)
    muxed, no_mux = await asyncio.gather(
        run_judge("request", server.url, subject="svc.py", payload="hello",
                  headers={"X-Req": "one"}),
        run_judge("request", server.url, subject="svc.py", payload="classic", no_mux=True))
    assert "reply" in muxed and "reply" in no_mux, (muxed, no_mux)
    assert muxed["reply"]["data"] == "py:hello"
    assert muxed["reply"]["headers"]["map"] == {"X-Req": ["one"], "Responder": ["python"]}
    assert no_mux["reply"]["data"] == "py:classic"
    assert no_mux["reply"]["headers"]["map"] == {"Responder": ["python"]}


async def test_node_no_responders_fails_fast(server):
    result = await run_judge("request", server.url, subject="svc.nobody", timeout_ms=5000)
    assert result["error_code"] == "503", result
    assert result["elapsed_ms"] < 1000


async def test_headers_across_clients(server, pool):
    # node -> node and node -> nats-py, with repeated header names
    nc = await pool.connect(server.url)
    py_sub = await nc.subscribe("x.hdr.js")
    py_ctl = await nc.subscribe("x.hdr.js-ctl")
    await barrier(nc)
    multi = {"X-Multi": ["a", "b", "c"], "Content-Type": ["text/plain"], "x-lower": ["keep"]}
    async with NodeJudge("sub", server.url, subject="x.hdr.js", ctl="x.hdr.js-ctl") as node:
        await node.ready()
        await run_judge("pub", server.url, subject="x.hdr.js", payload="hdr", count=1,
                        exact=True, headers=multi, ctl="x.hdr.js-ctl")
        (received,) = (await node.result())["messages"]
    assert received["data"] == "hdr"
    assert received["headers"]["map"] == multi
    await asyncio.wait_for(py_ctl.next_msg(timeout=5), 6)
    await barrier(nc)
    (py_msg,) = await take_pending(py_sub)
    assert py_msg.data == b"hdr"
    # nats-py keeps one value per name (the last); names keep their case.
    assert py_msg.headers == {"X-Multi": "c", "Content-Type": "text/plain", "x-lower": "keep"}

    # nats-py -> node
    async with NodeJudge("sub", server.url, subject="x.hdr.py", expect=2) as node:
        await node.ready()
        await nc.publish("x.hdr.py", b"with", headers={"X-From": "python", "X-Case": "MiXeD"})
        await nc.publish("x.hdr.py", b"without")
        await barrier(nc)
        first, second = (await node.result())["messages"]
    assert first["data"] == "with"
    assert first["headers"]["map"] == {"X-From": ["python"], "X-Case": ["MiXeD"]}
    assert second["data"] == "without" and second["headers"] is None


async def test_python_reconnects_while_node_keeps_publishing(runnel_factory, pool):
    """After a restart, a nats-py subscriber re-established by itself gets node's messages."""
    node_server = runnel_factory(http=False)
    nc = await pool.connect(node_server.url, allow_reconnect=True, max_reconnect_attempts=-1,
                            reconnect_time_wait=0.1, connect_timeout=1)
    sub = await nc.subscribe("x.restart")
    await barrier(nc)
    await asyncio.to_thread(node_server.stop)
    await asyncio.wait_for(pool.events_of(nc).disconnected.wait(), 10)
    await asyncio.to_thread(node_server.start)
    await asyncio.wait_for(pool.events_of(nc).reconnected.wait(), 15)
    await barrier(nc)
    await run_judge("pub", node_server.url, subject="x.restart", count=10, payload="n")
    await barrier(nc)
    await wait_until(lambda: sub.pending_msgs == 10, what="node's messages after restart")
    assert [m.data for m in await take_pending(sub)] == [b"n%d" % i for i in range(10)]
