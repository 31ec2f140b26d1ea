"""Every official client reads what every other one wrote: node-nats-streaming, stan.py, libnats."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)

COUNT = 5


def expect_all(judge, prefix: str) -> None:
    msgs = judge.wait_msgs(COUNT)
    assert [m["seq"] for m in msgs] == list(range(1, COUNT + 1)), judge.describe()
    assert [m["data"] for m in msgs] == [f"{prefix}{i}" for i in range(1, COUNT + 1)], judge.describe()
    assert all(not m["redelivered"] for m in msgs), judge.describe()


def test_node_publishes_and_stanpy_and_c_receive(stan, judges, name):
    channel = name("from-node")
    live = judges.sub("py", stan.url, name("py-live"), channel)  # subscribed before: gets them live
    judges.publish("node", stan.url, name("node-pub"), channel, count=COUNT, data="node-{i}")
    expect_all(live, "node-")
    c = judges.c(stan.url, name("c-sub"), channel, sub=COUNT, start="first").expect_ok()
    expect_all(c, "node-")


def test_stanpy_publishes_and_node_and_c_receive(stan, judges, name):
    channel = name("from-py")
    live = judges.sub("node", stan.url, name("node-live"), channel)
    judges.publish("py", stan.url, name("py-pub"), channel, count=COUNT, data="py-{i}", sync=True)
    expect_all(live, "py-")
    c = judges.c(stan.url, name("c-sub"), channel, sub=COUNT, start="first").expect_ok()
    expect_all(c, "py-")


def test_c_publishes_and_node_and_stanpy_receive(stan, judges, name):
    """The C judge publishes with stanConnection_Publish, subscribes with
    DeliverAllAvailable, receives its own messages, prints them and closes."""
    channel = name("from-c")
    live = judges.sub("node", stan.url, name("node-live"), channel)
    c = judges.c(stan.url, name("c-pubsub"), channel, pub=COUNT, data="c-{i}", sub=COUNT).expect_ok()
    assert [a["error"] for a in c.acks] == [None] * COUNT, c.describe()
    expect_all(c, "c-")
    expect_all(live, "c-")
    late = judges.sub("py", stan.url, name("py-late"), channel, start="first")
    expect_all(late, "c-")
