"""The server's error strings, as the official clients report them (reference §2.18).

(Invalid client IDs and duplicate IDs: test_connect.py; too many channels: test_limits.py.)
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("channel", ["foo.*", "foo.>", "*", ">", "foo..bar", ".foo", "foo."])
def test_subscribe_to_an_invalid_channel_gets_invalid_subject(channel, stan, judges, name):
    sub = judges.sub("node", stan.url, name("sub"), channel, ready=False)
    sub.expect_error("stan: invalid subject", stage="subscribe")
    assert not sub.of("ready"), sub.describe()


def test_stanpy_subscribe_to_a_wildcard_channel_gets_invalid_subject(stan, judges, name):
    sub = judges.sub("py", stan.url, name("sub"), "orders.*", ready=False)
    sub.expect_error("stan: invalid subject", stage="subscribe")


@pytest.mark.parametrize("channel", ["foo.*", "foo.>", "foo..bar"])
def test_publish_to_an_invalid_channel_gets_invalid_publish_request(channel, client, stan, judges, name):
    pub = judges.pub(client, stan.url, name("pub"), channel, count=1).finish()
    assert [a["error"] for a in pub.acks] == ["stan: invalid publish request"], pub.describe()


def test_invalid_channel_publish_creates_no_channel(stan, judges, name):
    base = name("nochan")
    judges.pub("node", stan.url, name("pub"), base + ".*", count=1).finish()
    # A valid sibling still starts at sequence 1: nothing was stored anywhere.
    judges.publish("node", stan.url, name("pub"), base, count=1)
    sub = judges.sub("node", stan.url, name("sub"), base, start="first")
    sub.wait_msgs(1)
    assert sub.seqs == [1], sub.describe()


def test_unsubscribing_an_unknown_subscription_gets_invalid_subscription(stan, judges, name):
    """stan.py sends a second UnsubscribeRequest for a subscription already removed (node and
    Go catch that client-side), so the server's answer is visible."""
    sub = judges.sub("py", stan.url, name("sub"), name("unsub"))
    sub.send("unsub")
    sub.wait_event("unsubscribed")
    sub.send("unsub")
    sub.expect_error("stan: invalid subscription", stage="unsubscribe")


def test_closing_an_unknown_subscription_gets_invalid_subscription(stan, judges, name):
    sub = judges.sub("py", stan.url, name("sub"), name("subclose"), durable="d")
    sub.send("subclose")
    sub.wait_event("sub-closed")
    sub.send("subclose")
    sub.expect_error("stan: invalid subscription", stage="close")


@pytest.mark.parametrize("options,error", [
    ({"ack_wait": 0}, "stan: invalid ack wait time, should be >= 1s"),
    ({"max_inflight": 0}, "stan: invalid MaxInflight, should be >= 1"),
    ({"queue": "g", "durable": "has:colon"},
     "stan: durable name of a durable queue subscriber can't contain the character ':'"),
])
def test_invalid_subscription_options_are_rejected(options, error, client, stan, judges, name):
    sub = judges.sub(client, stan.url, name("sub"), name("opts"), ready=False, **options)
    sub.expect_error(error, stage="subscribe")
    assert sub.errors == [error], sub.describe()


def test_second_subscription_to_an_online_durable_gets_duplicate_durable_registration(stan, judges, name):
    """Durables belong to a client ID, so the duplicate comes from the same connection: the
    judge's `again` command subscribes a second time with the same options."""
    sub = judges.sub("node", stan.url, name("sub"), name("dupdur"), durable="d")
    sub.send("again")
    sub.expect_error("stan: duplicate durable registration", stage="subscribe-again")
