"""Manual acks, redelivery after AckWait, and the MaxInflight stall (reference §2.7, §2.8)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)


def test_unacknowledged_messages_are_redelivered_after_ack_wait_with_the_flag_set(client, stan, judges, name):
    channel = name("redeliver")
    sub = judges.sub(client, stan.url, name("sub"), channel, ack="none", ack_wait=1)
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    sub.wait_msgs(3)
    assert [(m["seq"], m["redelivered"]) for m in sub.msgs] == [(1, False), (2, False), (3, False)]

    # AckWait is 1 s: each one comes back, flagged, within a few seconds.
    sub.wait_msgs(6, timeout=5)
    again = sub.msgs[3:6]
    assert sorted(m["seq"] for m in again) == [1, 2, 3], sub.describe()
    assert all(m["redelivered"] for m in again), sub.describe()
    # stan.py 0.4.0 does not decode redeliveryCount (None); node-nats-streaming does
    assert all(m["redeliveryCount"] in (1, None) for m in again), sub.describe()
    if client == "node":
        assert all(m["redeliveryCount"] == 1 for m in again), sub.describe()
    assert [m["data"] for m in sorted(again, key=lambda m: m["seq"])] == ["msg-1", "msg-2", "msg-3"]

    # Once acknowledged, nothing comes back.
    sub.send("ack")
    sub.wait_event("acked")
    settled = len(sub.msgs)
    sub.quiet(1.5)
    assert len(sub.msgs) == settled


def test_manually_acknowledged_messages_are_not_redelivered(stan, judges, name):
    channel = name("manual")
    sub = judges.sub("node", stan.url, name("sub"), channel, ack="manual", ack_wait=1)
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    sub.wait_msgs(3)
    sub.quiet(1.8)
    assert sub.seqs == [1, 2, 3] and not any(m["redelivered"] for m in sub.msgs), sub.describe()


@pytest.mark.parametrize("inflight,count", [(1, 3), (3, 7)])
def test_max_inflight_stalls_delivery_until_acks_arrive(inflight, count, client, stan, judges, name):
    channel = name("stall")
    sub = judges.sub(client, stan.url, name("sub"), channel, ack="none", max_inflight=inflight)
    judges.publish("node", stan.url, name("pub"), channel, count=count)
    expected, rounds = 0, 0
    while expected < count:
        expected = min(expected + inflight, count)
        sub.wait_msgs(expected)
        sub.quiet(0.4)  # stalled: exactly `inflight` unacknowledged messages are out
        assert sub.seqs == list(range(1, expected + 1)), sub.describe()
        sub.send("ack")
        rounds += 1
        sub.wait_until(lambda j, r=rounds: len(j.of("acked")) >= r, what="the ack command to be done")
    assert not any(m["redelivered"] for m in sub.msgs), sub.describe()
