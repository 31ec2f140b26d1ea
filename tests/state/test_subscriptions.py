"""Subscribe, start positions, MaxInflight, acks, durables, unsubscribe and sub close
(reference §2.3 StartPosition, §2.6, §2.7, §2.10, §2.11), on both stores."""
from __future__ import annotations

import pytest

from broker.protocol.stan import (First, LastReceived, NewOnly, SequenceStart, TimeDeltaStart,
                                  errors)
from broker.state import effects as fx
from tests.state.statekit import NS, T0, delivered, limits, seqs_of


def _channel_1_to_5(h, ts_step: int = NS):
    """foo holds 1..5 published at T0+1s .. T0+5s."""
    h.connect("c1")
    for i in range(1, 6):
        h.publish("c1", "foo", b"m%d" % i, now=T0 + i * ts_step)


def _first_delivered(h, **sub) -> int | None:
    a = h.subscribe("c1", "foo", "s", now=T0 + 100 * NS, **sub)
    assert a.result is None
    got = seqs_of(a)
    return got[0] if got else None


# -- start positions (checked by the first delivered sequence) ----------------------------

@pytest.mark.parametrize("sub, first", [
    (dict(sp=NewOnly), None),
    (dict(sp=LastReceived), 5),
    (dict(sp=First), 1),
    (dict(sp=SequenceStart, seq=3), 3),
    (dict(sp=SequenceStart, seq=5), 5),
    (dict(sp=SequenceStart, seq=0), 1),        # 0 on a non-empty channel: from first
    (dict(sp=SequenceStart, seq=6), None),     # above last: NewOnly
    (dict(sp=SequenceStart, seq=1000), None),
    # TimeDeltaStart: start = now - delta; now is T0+100s, message i at T0+i s
    (dict(sp=TimeDeltaStart, delta=97 * NS), 3),            # exactly message 3's time
    (dict(sp=TimeDeltaStart, delta=97 * NS + 1), 3),        # just before it
    (dict(sp=TimeDeltaStart, delta=97 * NS - 1), 4),        # just after it
    (dict(sp=TimeDeltaStart, delta=1000 * NS), 1),          # before everything
    (dict(sp=TimeDeltaStart, delta=NS), None),              # after the last: NewOnly
])
def test_start_position_first_delivery(h, sub, first):
    _channel_1_to_5(h)
    assert _first_delivered(h, **sub) == first
    # NewOnly-like positions get the next publish first
    a = h.publish("c1", "foo", b"m6", now=T0 + 200 * NS)
    if first is None:
        assert seqs_of(a) == [6]


@pytest.mark.parametrize("sub, first", [
    (dict(sp=First), 3),
    (dict(sp=SequenceStart, seq=1), 3),        # below first available: from first
    (dict(sp=SequenceStart, seq=4), 4),
    (dict(sp=LastReceived), 5),
    (dict(sp=TimeDeltaStart, delta=1000 * NS), 3),
])
def test_start_positions_after_messages_dropped(make_harness, sub, first):
    h = make_harness(limits(max_msgs=3))
    _channel_1_to_5(h)
    assert h.sm.channels["foo"].first_seq == 3
    assert _first_delivered(h, **sub) == first


@pytest.mark.parametrize("sp", [NewOnly, LastReceived, First, SequenceStart, TimeDeltaStart])
def test_start_positions_on_empty_channel(h, sp):
    """On an empty channel every position behaves like NewOnly (LastReceived included)."""
    h.connect("c1")
    a = h.subscribe("c1", "foo", "s", sp=sp, seq=0, delta=10 * NS)
    assert a.result is None and seqs_of(a) == []
    assert h.sm.ack_inboxes["ack.s"].last_sent == 0
    assert seqs_of(h.publish("c1", "foo", b"x")) == [1]


def test_last_received_on_fully_expired_channel(make_harness):
    """Every message expired (first = last + 1): LastReceived is NewOnly."""
    h = make_harness(limits(max_age_s=10))
    _channel_1_to_5(h)
    h.expire(now=T0 + 60 * NS)
    ch = h.sm.channels["foo"]
    assert (ch.first_seq, ch.last_seq, ch.msgs) == (6, 5, 0)
    assert _first_delivered(h, sp=LastReceived) is None
    assert seqs_of(h.publish("c1", "foo", b"x", now=T0 + 200 * NS)) == [6]


def test_subscribe_unknown_client(h):
    a = h.subscribe("ghost", "foo", "s")
    assert a.result == errors.UNKNOWN_CLIENT_ID and a.effects == []
    assert "foo" not in h.sm.channels  # nothing was created


def test_subscribe_creates_channel_and_opens(h):
    h.connect("c1")
    a = h.subscribe("c1", "foo", "s", mif=7, aw=3)
    assert a.effects == [fx.SubOpened(1, "foo", "c1", "", "in.s", "ack.s", 7, 3, "", False)]
    assert "foo" in h.sm.channels
    with h.store.read() as r:
        assert r.get_channel("foo") is not None


# -- MaxInflight and acks -------------------------------------------------------------------

def test_max_inflight_exactly_n_pending_then_more_after_acks(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "s", mif=3)
    a = h.publish("c1", "foo", *[b"%d" % i for i in range(1, 11)])
    assert seqs_of(a) == [1, 2, 3]
    assert h.pending("foo", "ack.s") == [1, 2, 3]
    a = h.ack("ack.s", "foo", [2])
    assert a.effects[0] == fx.MsgsAcked(1, (2,))
    assert seqs_of(a) == [4]
    assert h.pending("foo", "ack.s") == [1, 3, 4]
    a = h.ack("ack.s", "foo", [1, 3, 4])
    assert seqs_of(a) == [5, 6, 7]
    assert h.pending("foo", "ack.s") == [5, 6, 7]
    # nothing more while stalled
    assert seqs_of(h.publish("c1", "foo", b"11")) == []


def test_max_inflight_backlog_on_subscribe(h):
    _channel_1_to_5(h)
    a = h.subscribe("c1", "foo", "s", sp=First, mif=2)
    assert seqs_of(a) == [1, 2]
    assert [type(e) for e in a.effects] == [fx.SubOpened, fx.MsgsDelivered]


def test_acks_unknown_seq_and_other_channel_are_ignored(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "s", mif=2)
    h.subscribe("c1", "bar", "b", mif=2)
    h.publish_batch([["c1", b"conn-c1", ch, "", b"x"] for ch in ("foo", "foo", "bar")])
    a = h.acks([["ack.s", "foo", [7, 99]],          # not pending
                ["ack.s", "bar", [1]],              # the sub is on foo, not bar
                ["ack.unknown", "foo", [1]],        # no such ack inbox
                ["ack.s", "nochannel", [1]]])
    assert a.effects == []
    assert h.pending("foo", "ack.s") == [1, 2]
    assert h.pending("bar", "ack.b") == [1]
    assert "nochannel" not in h.sm.channels   # acks never create a channel
    # acking the same seq twice: the second is ignored
    assert h.ack("ack.s", "foo", [1]).effects[0] == fx.MsgsAcked(1, (1,))
    a = h.ack("ack.s", "foo", [1])
    assert a.of(fx.MsgsAcked) == []


# -- durables ----------------------------------------------------------------------------------

def test_durable_close_offline_resume_keeps_position_and_redelivers(h):
    h.connect("c1")
    a = h.subscribe("c1", "foo", "d1", dur="dur", mif=10)
    sub_id = a.effects[0].sub_id
    h.publish("c1", "foo", b"1", b"2", b"3")
    h.ack("ack.d1", "foo", [1])
    a = h.unsubscribe("c1", "foo", "ack.d1", close=True)
    assert a.result is None and a.effects == [fx.SubClosed(sub_id, "ack.d1")]
    sub = h.sm.channels["foo"].subs[sub_id]
    assert sub.offline and sorted(sub.pending) == [2, 3] and sub.last_sent == 3
    assert "ack.d1" not in h.sm.ack_inboxes
    # published while offline: kept for the durable
    assert delivered(h.publish("c1", "foo", b"4", b"5")) == []
    # resume: start position ignored, new inboxes and flow settings taken
    a = h.subscribe("c1", "foo", "d2", dur="dur", sp=NewOnly, mif=4, aw=9)
    assert a.result is None
    assert a.effects[0] == fx.SubOpened(sub_id, "foo", "c1", "", "in.d2", "ack.d2", 4, 9, "dur",
                                        True)
    assert delivered(a) == [(sub_id, 2, True), (sub_id, 3, True),
                            (sub_id, 4, False), (sub_id, 5, False)]
    assert h.pending("foo", "ack.d2") == [2, 3, 4, 5]


def test_durable_survives_client_close(h):
    h.connect("c1")
    sub_id = h.subscribe("c1", "foo", "d1", dur="dur").effects[0].sub_id
    h.publish("c1", "foo", b"1")
    h.close_client("c1")
    assert h.sm.channels["foo"].subs[sub_id].offline
    h.connect("c1", b"other-conn")
    a = h.subscribe("c1", "foo", "d2", dur="dur")
    assert a.effects[0].sub_id == sub_id
    assert delivered(a) == [(sub_id, 1, True)]


def test_durable_resume_redelivers_pending_within_max_inflight(h):
    """A durable resumed with a smaller MaxInflight gets its pending messages resent as
    far as the new MaxInflight allows; the rest follows as acks free room (Runnel keeps
    MaxInflight on every path; nats-streaming-server resends them all at once)."""
    h.connect("c1")
    sub_id = h.subscribe("c1", "foo", "d1", dur="dur", mif=5).effects[0].sub_id
    h.publish("c1", "foo", *[b"x"] * 6)
    h.unsubscribe("c1", "foo", "ack.d1", close=True)
    a = h.subscribe("c1", "foo", "d2", dur="dur", mif=2)
    assert delivered(a) == [(sub_id, 1, True), (sub_id, 2, True)]
    assert seqs_of(h.ack("ack.d2", "foo", [1, 2, 3])) == [4, 5]   # 3 acked before its resend
    assert seqs_of(h.ack("ack.d2", "foo", [4])) == [6]


def test_duplicate_durable(h):
    h.connect("c1")
    h.connect("c2")
    h.subscribe("c1", "foo", "d1", dur="dur")
    a = h.subscribe("c1", "foo", "d2", dur="dur")
    assert a.result == errors.DUPLICATE_DURABLE and a.effects == []
    assert "ack.d2" not in h.sm.ack_inboxes
    # the same name under another client ID is another durable
    assert h.subscribe("c2", "foo", "d3", dur="dur").result is None
    # and the same name on another channel too
    assert h.subscribe("c1", "bar", "d4", dur="dur").result is None


def test_durable_unsubscribe_frees_the_name(h):
    _channel_1_to_5(h)
    first = h.subscribe("c1", "foo", "d1", dur="dur", sp=First, mif=2)
    old_id = first.effects[0].sub_id
    a = h.unsubscribe("c1", "foo", "ack.d1")
    assert a.result is None and a.effects == [fx.SubClosed(old_id, "ack.d1")]
    assert h.sm.channels["foo"].subs == {} and h.sm.channels["foo"].durables == {}
    # a new durable of that name starts fresh at its own start position
    a = h.subscribe("c1", "foo", "d2", dur="dur", sp=LastReceived)
    assert a.effects[0].sub_id != old_id
    assert delivered(a) == [(a.effects[0].sub_id, 5, False)]


def test_plain_close_deletes(h):
    _channel_1_to_5(h)
    h.subscribe("c1", "foo", "s", sp=First)
    a = h.unsubscribe("c1", "foo", "ack.s", close=True)
    assert a.result is None
    assert h.sm.channels["foo"].subs == {}
    with h.store.read() as r:
        assert r.list_subscriptions(h.sm.channels["foo"].channel_id) == []


def test_unsubscribe_by_delivery_inbox(h):
    """stan.go sends the delivery inbox when its subscribe timed out."""
    h.connect("c1")
    h.subscribe("c1", "foo", "s")
    assert h.unsubscribe("c1", "foo", "in.s").result is None
    assert h.sm.channels["foo"].subs == {}


def test_unsubscribe_errors(h):
    h.connect("c1")
    h.connect("c2")
    h.subscribe("c1", "foo", "s")
    h.subscribe("c1", "bar", "b")
    assert h.unsubscribe("c1", "nochannel", "ack.s").result == errors.UNKNOWN_CHANNEL
    assert "nochannel" not in h.sm.channels
    assert h.unsubscribe("c1", "foo", "ack.nope").result == errors.INVALID_SUBSCRIPTION
    assert h.unsubscribe("c1", "foo", "ack.b").result == errors.INVALID_SUBSCRIPTION
    for close in (False, True):
        a = h.unsubscribe("c2", "foo", "ack.s", close=close)
        assert a.result == errors.UNKNOWN_CLIENT_ID and a.effects == []
    assert "ack.s" in h.sm.ack_inboxes
    # a second call after a full close: invalid subscription
    h.unsubscribe("c1", "foo", "ack.s", close=True)
    assert h.unsubscribe("c1", "foo", "ack.s", close=True).result == errors.INVALID_SUBSCRIPTION


def test_offline_durable_cannot_be_unsubscribed_by_old_inbox(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "d1", dur="dur")
    h.unsubscribe("c1", "foo", "ack.d1", close=True)
    assert h.unsubscribe("c1", "foo", "ack.d1").result == errors.INVALID_SUBSCRIPTION
    assert h.ack("ack.d1", "foo", [1]).effects == []   # acks after close are lost


def test_max_subs(make_harness):
    h = make_harness(limits(max_subs=2))
    h.connect("c1")
    h.subscribe("c1", "foo", "d1", dur="dur")
    h.unsubscribe("c1", "foo", "ack.d1", close=True)     # offline durables count
    h.subscribe("c1", "foo", "s2")
    a = h.subscribe("c1", "foo", "s3")
    assert a.result == errors.TOO_MANY_SUBSCRIPTIONS and a.effects == []
    assert h.subscribe("c1", "foo", "q", q="g").result == errors.TOO_MANY_SUBSCRIPTIONS
    # resuming the offline durable is not a new subscription
    assert h.subscribe("c1", "foo", "d2", dur="dur").result is None
    # another channel has its own count
    assert h.subscribe("c1", "bar", "s4").result is None
    h.unsubscribe("c1", "foo", "ack.s2")
    assert h.subscribe("c1", "foo", "s5").result is None
