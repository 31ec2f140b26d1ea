"""Queue groups and durable queue groups (reference §2.10, §2.12), on both stores."""
from __future__ import annotations

import pytest

from broker.protocol.stan import First, LastReceived, NewOnly, errors
from broker.state import effects as fx
from tests.state.statekit import delivered, limits, seqs_of


def _ids(h, *names):
    return [h.sm.ack_inboxes[f"ack.{n}"].sub_id for n in names]


def test_each_message_to_exactly_one_member(h):
    h.connect("c1")
    h.connect("c2")
    h.subscribe("c1", "foo", "a", q="g")
    h.subscribe("c2", "foo", "b", q="g")
    h.subscribe("c1", "foo", "p")                      # a plain sub gets everything
    a_id, b_id, p_id = _ids(h, "a", "b", "p")
    a = h.publish("c1", "foo", *[b"x"] * 6)
    got = delivered(a)
    plain = [seq for sub, seq, _ in got if sub == p_id]
    queue = sorted(seq for sub, seq, _ in got if sub in (a_id, b_id))
    assert plain == queue == [1, 2, 3, 4, 5, 6]
    assert h.pending("foo", "ack.a") == [1, 3, 5]       # the least recently chosen on a tie
    assert h.pending("foo", "ack.b") == [2, 4, 6]
    assert h.sm.channels["foo"].groups["g"].last_sent == 6


def test_fewest_pending_member_is_chosen(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g")
    h.publish("c1", "foo", b"1", b"2", b"3")          # all to a (alone)
    h.subscribe("c1", "foo", "b", q="g")
    a_id, b_id = _ids(h, "a", "b")
    a = h.publish("c1", "foo", b"4", b"5", b"6", b"7")
    # b has 0 pending against a's 3: b gets 4, 5, 6 then the tie goes to a (chosen longer ago)
    assert delivered(a) == [(a_id, 7, False), (b_id, 4, False), (b_id, 5, False),
                            (b_id, 6, False)]


def test_stalled_members_are_skipped_and_group_stalls(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g", mif=1)
    h.subscribe("c1", "foo", "b", q="g", mif=2)
    a_id, b_id = _ids(h, "a", "b")
    a = h.publish("c1", "foo", *[b"x"] * 5)
    assert sorted(seqs_of(a)) == [1, 2, 3]
    assert h.pending("foo", "ack.a") == [1] and h.pending("foo", "ack.b") == [2, 3]
    assert h.sm.channels["foo"].groups["g"].last_sent == 3
    a = h.ack("ack.b", "foo", [2])
    assert delivered(a) == [(b_id, 4, False)]


def test_ack_of_a_seq_pending_on_another_member(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g")
    h.subscribe("c1", "foo", "b", q="g")
    a_id, b_id = _ids(h, "a", "b")
    h.publish("c1", "foo", b"1", b"2")
    a = h.ack("ack.a", "foo", [2])                      # 2 is pending on b
    assert a.of(fx.MsgsAcked) == [fx.MsgsAcked(b_id, (2,))]
    assert h.pending("foo", "ack.b") == []


def test_later_member_joins_at_group_position(h):
    h.connect("c1")
    h.publish("c1", "foo", b"1", b"2", b"3")
    a = h.subscribe("c1", "foo", "a", q="g", sp=First, mif=1)
    assert seqs_of(a) == [1]
    a = h.subscribe("c1", "foo", "b", q="g", sp=First)    # start position ignored
    assert seqs_of(a) == [2, 3]
    assert h.sm.ack_inboxes["ack.b"].last_sent == 3


def test_member_leaving_hands_pending_to_others(h):
    h.connect("c1")
    h.connect("c2")
    h.subscribe("c1", "foo", "a", q="g")
    h.subscribe("c2", "foo", "b", q="g")
    h.subscribe("c2", "foo", "c", q="g")
    a_id, b_id, c_id = _ids(h, "a", "b", "c")
    h.publish("c1", "foo", *[b"x"] * 9)
    assert h.pending("foo", "ack.a") == [1, 4, 7]
    h.ack("ack.a", "foo", [4])
    a = h.unsubscribe("c1", "foo", "ack.a")
    assert a.result is None
    assert a.effects[0] == fx.SubClosed(a_id, "ack.a")
    # round robin over the others, marked redelivered
    assert delivered(a) == [(b_id, 1, True), (c_id, 7, True)]
    assert h.pending("foo", "ack.b") == [1, 2, 5, 8]
    assert h.pending("foo", "ack.c") == [3, 6, 7, 9]
    assert a_id not in h.sm.channels["foo"].subs


def test_member_leaving_by_client_close_hands_pending(h):
    h.connect("c1")
    h.connect("c2")
    h.subscribe("c1", "foo", "a", q="g")
    h.subscribe("c2", "foo", "b", q="g")
    a_id, b_id = _ids(h, "a", "b")
    h.publish("c1", "foo", b"1", b"2", b"3")
    a = h.close_client("c1")
    assert delivered(a) == [(b_id, 1, True), (b_id, 3, True)]
    assert h.pending("foo", "ack.b") == [1, 2, 3]


def test_handed_over_messages_respect_max_inflight(h):
    """ARCHITECTURE §4: MaxInflight holds on every path. A leaving member's unacked
    messages go to the others only as far as their MaxInflight allows; the rest is
    owed (backlog) and sent, marked redelivered, before new messages as room frees.
    (nats-streaming-server forces them past MaxInflight; Runnel does not.)"""
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g", mif=2)
    h.subscribe("c1", "foo", "b", q="g", mif=2)
    h.publish("c1", "foo", *[b"x"] * 6)
    assert h.pending("foo", "ack.a") == [1, 3] and h.pending("foo", "ack.b") == [2, 4]
    h.unsubscribe("c1", "foo", "ack.a")
    assert h.pending("foo", "ack.b") == [2, 4]          # b is full: a's 1 and 3 are owed
    assert h.sub("foo", "ack.b").backlog == [1, 3]
    assert seqs_of(h.ack("ack.b", "foo", [2])) == [1]     # room for one: what is owed first
    assert seqs_of(h.ack("ack.b", "foo", [4])) == [3]
    assert seqs_of(h.ack("ack.b", "foo", [1, 3])) == [5, 6]


def test_a_resumed_durable_gets_its_pending_within_max_inflight(h):
    h.connect("c1")
    h.publish("c1", "foo", *[b"x"] * 5)
    h.subscribe("c1", "foo", "d", dur="dd", sp=First, mif=5)
    h.unsubscribe("c1", "foo", "ack.d", close=True)           # offline with 1..5 pending
    resumed = h.subscribe("c1", "foo", "d2", dur="dd", sp=First, mif=2)
    assert seqs_of(resumed) == [1, 2]                          # resent: as many as fit
    assert h.sub("foo", "ack.d2").backlog == [3, 4, 5]
    assert seqs_of(h.ack("ack.d2", "foo", [1, 2])) == [3, 4]
    assert seqs_of(h.ack("ack.d2", "foo", [3, 4, 5])) == []   # 5 acked before it was resent
    assert h.sub("foo", "ack.d2").backlog == [] and h.pending("foo", "ack.d2") == []


def test_last_member_of_non_durable_group_leaves_group_gone(h):
    h.connect("c1")
    h.publish("c1", "foo", b"1", b"2", b"3")
    h.subscribe("c1", "foo", "a", q="g", sp=First)
    a = h.unsubscribe("c1", "foo", "ack.a", close=True)
    assert a.result is None
    assert h.sm.channels["foo"].groups == {} and h.sm.channels["foo"].subs == {}
    # a new first member uses its own start position again
    a = h.subscribe("c1", "foo", "b", q="g", sp=LastReceived)
    assert seqs_of(a) == [3]


@pytest.mark.parametrize("close", [False, True])
def test_last_member_by_client_close_non_durable(h, close):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g")
    if close:
        h.close_client("c1")
    else:
        h.unsubscribe("c1", "foo", "ack.a")
    assert h.sm.channels["foo"].groups == {}
    with h.store.read() as r:
        assert r.list_subscriptions(h.sm.channels["foo"].channel_id) == []


def test_non_durable_group_with_colon_in_name_is_gone_after_close(h):
    h.connect("c1")
    h.connect("c2")
    h.publish("c1", "foo", b"1")
    h.subscribe("c1", "foo", "a", q="x:y", sp=First)
    h.unsubscribe("c1", "foo", "ack.a", close=True)
    assert h.sm.channels["foo"].groups == {}
    assert h.sm.channels["foo"].subs == {}
    # and a durable queue subscriber (dur "x", group "y": key "x:y") starts fresh
    a = h.subscribe("c2", "foo", "b", q="y", dur="x", sp=NewOnly)
    assert delivered(a) == []


def test_durable_group_last_member_close_keeps_shadow_next_member_takes_over(h):
    h.connect("c1")
    h.connect("c2")
    a = h.subscribe("c1", "foo", "a", q="g", dur="d", mif=10)
    a_id = a.effects[0].sub_id
    assert a.effects[0].queue == "d:g" and a.effects[0].durable_name == ""
    assert a.effects[0].is_durable
    h.publish("c1", "foo", b"1", b"2", b"3")
    h.ack("ack.a", "foo", [2])
    a = h.close_client("c1")
    group = h.sm.channels["foo"].groups["d:g"]
    assert group.members == [] and group.shadow is not None
    shadow = group.shadow
    assert (shadow.sub_id, shadow.offline, sorted(shadow.pending), shadow.last_sent) == \
        (a_id, True, [1, 3], 3)
    assert delivered(h.publish("c2", "foo", b"4")) == []   # nobody online
    # the next member, from another client, takes the shadow over: pending redelivered first
    a = h.subscribe("c2", "foo", "b", q="g", dur="d", sp=NewOnly, mif=5)
    assert a.result is None
    assert a.effects[0].sub_id == a_id and a.effects[0].client_id == "c2"
    assert delivered(a) == [(a_id, 1, True), (a_id, 3, True), (a_id, 4, False)]
    assert group.shadow is None and [m.sub_id for m in group.members] == [a_id]
    assert h.sm.clients["c2"].subs[a_id].ack_inbox == "ack.b"


def test_durable_group_shadow_by_sub_close(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g", dur="d")
    h.publish("c1", "foo", b"1")
    h.unsubscribe("c1", "foo", "ack.a", close=True)
    assert h.sm.channels["foo"].groups["d:g"].shadow is not None
    a = h.subscribe("c1", "foo", "b", q="g", dur="d")
    assert delivered(a) == [(a.effects[0].sub_id, 1, True)]


def test_durable_group_member_leaving_with_others_hands_over(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g", dur="d")
    h.subscribe("c1", "foo", "b", q="g", dur="d")
    a_id, b_id = _ids(h, "a", "b")
    h.publish("c1", "foo", b"1", b"2")
    a = h.unsubscribe("c1", "foo", "ack.a", close=True)
    assert delivered(a) == [(b_id, 1, True)]
    assert h.sm.channels["foo"].groups["d:g"].shadow is None


def test_unsubscribe_of_last_durable_member_removes_group(h):
    h.connect("c1")
    h.publish("c1", "foo", b"1", b"2")
    h.subscribe("c1", "foo", "a", q="g", dur="d", sp=First)
    a = h.unsubscribe("c1", "foo", "ack.a")
    assert a.result is None
    assert h.sm.channels["foo"].groups == {} and h.sm.channels["foo"].subs == {}
    a = h.subscribe("c1", "foo", "b", q="g", dur="d", sp=LastReceived)
    assert seqs_of(a) == [2]             # a fresh group at its own start position


def test_durable_and_plain_groups_of_same_name_are_separate(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g")
    h.subscribe("c1", "foo", "b", q="g", dur="d")
    assert sorted(h.sm.channels["foo"].groups) == ["d:g", "g"]
    a = h.publish("c1", "foo", b"1")
    assert sorted(seqs_of(a)) == [1, 1]


def test_colon_in_durable_queue_name_rejected(h):
    h.connect("c1")
    a = h.subscribe("c1", "foo", "a", q="g", dur="bad:name")
    assert a.result == errors.INVALID_DURABLE_QUEUE_NAME and a.effects == []
    assert h.sm.channels["foo"].subs == {}
    # a plain durable may contain ':'
    assert h.subscribe("c1", "foo", "b", dur="ok:name").result is None


def test_max_subs_counts_shadows(make_harness):
    h = make_harness(limits(max_subs=1))
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g", dur="d")
    h.unsubscribe("c1", "foo", "ack.a", close=True)
    assert h.subscribe("c1", "foo", "p").result == errors.TOO_MANY_SUBSCRIPTIONS
    assert h.subscribe("c1", "foo", "b", q="g", dur="d").result is None   # takeover
    assert h.subscribe("c1", "foo", "c", q="g", dur="d").result == errors.TOO_MANY_SUBSCRIPTIONS


def test_client_close_with_two_members_hands_everything_to_the_rest(h):
    h.connect("c1")
    h.connect("c2")
    h.subscribe("c1", "foo", "a", q="g")
    h.subscribe("c1", "foo", "b", q="g")
    h.subscribe("c2", "foo", "c", q="g")
    c_id = _ids(h, "c")[0]
    h.publish("c1", "foo", *[b"x"] * 6)
    a = h.close_client("c1")
    assert h.pending("foo", "ack.c") == [1, 2, 3, 4, 5, 6]
    assert sorted(seq for sub, seq, redelivered in delivered(a) if sub == c_id and redelivered) \
        == [1, 2, 4, 5]
    assert [m.sub_id for m in h.sm.channels["foo"].groups["g"].members] == [c_id]


def test_client_close_with_all_members_of_durable_group_keeps_one_shadow(h):
    h.connect("c1")
    h.subscribe("c1", "foo", "a", q="g", dur="d")
    h.subscribe("c1", "foo", "b", q="g", dur="d")
    h.publish("c1", "foo", *[b"x"] * 4)
    h.close_client("c1")
    group = h.sm.channels["foo"].groups["d:g"]
    assert group.members == [] and sorted(group.shadow.pending) == [1, 2, 3, 4]
    assert list(h.sm.channels["foo"].subs) == [group.shadow.sub_id]
    h.connect("c2")
    a = h.subscribe("c2", "foo", "n", q="g", dur="d")
    assert seqs_of(a) == [1, 2, 3, 4]
