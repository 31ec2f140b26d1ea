"""Publishing with PubAcks and every subscription start position (reference §2.5, §2.6)."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.timeout(90)


def data_of(judge) -> list[str]:
    return [m["data"] for m in judge.msgs]


def test_every_publish_gets_a_pub_ack_without_error(client, stan, judges, name):
    channel = name("acks")
    judge = judges.publish(client, stan.url, name("pub"), channel, count=20)
    acks = judge.acks
    assert sorted(a["i"] for a in acks) == list(range(1, 21)), judge.describe()
    assert all(a["error"] is None for a in acks), judge.describe()
    guids = [a["guid"] for a in acks]
    assert all(guids) and len(set(guids)) == 20, judge.describe()
    assert judge.of("published")[0]["ok"] == 20


def test_messages_of_one_publisher_are_stored_in_order_with_sequences_from_1(client, stan, judges, name):
    channel = name("order")
    judges.publish(client, stan.url, name("pub"), channel, count=10, data="m{i}", sync=True)
    sub = judges.sub(client, stan.url, name("sub"), channel, start="first", count=10)
    msgs = sub.wait_msgs(10)
    assert [m["seq"] for m in msgs] == list(range(1, 11)), sub.describe()
    assert [m["data"] for m in msgs] == [f"m{i}" for i in range(1, 11)], sub.describe()
    assert all(m["subject"] == channel and not m["redelivered"] for m in msgs), sub.describe()
    stamps = [m["timestamp"] for m in msgs]
    assert stamps == sorted(stamps) and stamps[0] > 1_500_000_000 * 10**9, sub.describe()


def test_new_only_delivers_only_messages_published_after_subscribing(client, stan, judges, name):
    channel = name("newonly")
    judges.publish("node", stan.url, name("pub"), channel, count=5)
    sub = judges.sub(client, stan.url, name("sub"), channel, start="new")
    judges.publish("node", stan.url, name("pub"), channel, count=2, first=6)
    sub.wait_msgs(2)
    sub.quiet(0.5)
    assert sub.seqs == [6, 7], sub.describe()
    assert data_of(sub) == ["msg-6", "msg-7"]


def test_last_received_starts_with_the_newest_stored_message(client, stan, judges, name):
    channel = name("last")
    judges.publish("node", stan.url, name("pub"), channel, count=5)
    sub = judges.sub(client, stan.url, name("sub"), channel, start="last")
    sub.wait_msgs(1)
    sub.quiet(0.3)
    judges.publish("node", stan.url, name("pub"), channel, count=1, first=6)
    sub.wait_msgs(2)
    assert sub.seqs == [5, 6], sub.describe()
    assert data_of(sub) == ["msg-5", "msg-6"]


def test_last_received_on_an_empty_channel_behaves_like_new_only(stan, judges, name):
    channel = name("lastempty")
    sub = judges.sub("node", stan.url, name("sub"), channel, start="last")
    sub.quiet(0.3)
    judges.publish("node", stan.url, name("pub"), channel, count=2)
    sub.wait_msgs(2)
    assert sub.seqs == [1, 2], sub.describe()


def test_sequence_start_delivers_from_that_sequence(client, stan, judges, name):
    channel = name("seq")
    judges.publish("node", stan.url, name("pub"), channel, count=5)
    sub = judges.sub(client, stan.url, name("sub"), channel, start="seq:3")
    sub.wait_msgs(3)
    sub.quiet(0.3)
    assert sub.seqs == [3, 4, 5], sub.describe()
    assert data_of(sub) == ["msg-3", "msg-4", "msg-5"]


def test_sequence_start_beyond_the_last_sequence_behaves_like_new_only(stan, judges, name):
    channel = name("seqbeyond")
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    sub = judges.sub("node", stan.url, name("sub"), channel, start="seq:100")
    sub.quiet(0.3)
    judges.publish("node", stan.url, name("pub"), channel, count=1, first=4)
    sub.wait_msgs(1)
    assert sub.seqs == [4], sub.describe()


def test_first_delivers_every_stored_message_then_new_ones(client, stan, judges, name):
    channel = name("first")
    judges.publish("node", stan.url, name("pub"), channel, count=5)
    sub = judges.sub(client, stan.url, name("sub"), channel, start="first")
    sub.wait_msgs(5)
    judges.publish("node", stan.url, name("pub"), channel, count=1, first=6)
    sub.wait_msgs(6)
    assert sub.seqs == [1, 2, 3, 4, 5, 6], sub.describe()
    assert data_of(sub) == [f"msg-{i}" for i in range(1, 7)]


def test_time_delta_start_delivers_messages_newer_than_the_delta(stan, judges, name):
    """Three old messages, a gap of over 2 s, two fresh ones: a subscription starting 1 s in
    the past gets only the fresh ones (node sends ms, stan.py whole seconds: 1 s suits both)."""
    channel = name("delta")
    old = judges.publish("node", stan.url, name("pub"), channel, count=3, data="old-{i}")
    old_done = time.monotonic()
    # The gap is the subject under test: wait until the old messages are > 2 s old.
    waiter = judges.sub("node", stan.url, name("clock"), channel, start="new")
    waiter.quiet(max(0.0, 2.2 - (time.monotonic() - old_done)))
    judges.publish("node", stan.url, name("pub"), channel, count=2, first=4, data="new-{i}")
    subs = [judges.sub(kind, stan.url, name(f"sub-{kind}"), channel, start="delta:1000")
            for kind in ("node", "py")]
    for sub in subs:
        sub.wait_msgs(2)
    for sub in subs:
        sub.quiet(0.3)
        assert sub.seqs == [4, 5], sub.describe()
        assert data_of(sub) == ["new-4", "new-5"], sub.describe()
    assert old.proc.returncode == 0
    # the waiter (NewOnly) saw the fresh ones too
    assert waiter.wait_msgs(2) and waiter.seqs == [4, 5], waiter.describe()
