"""EXPIRE (max_age) and DELETE_CHANNEL (max_inactivity), reference §3.2, on both stores."""
from __future__ import annotations

import pytest

from broker.protocol.stan import First, errors
from broker.state import ChannelLimits, LimitsResolver
from broker.state import effects as fx
from tests.state.statekit import NS, T0, limits, seqs_of


def _publish_at(h, channel, *seconds):
    for s in seconds:
        h.publish("c1", channel, b"t%d" % s, now=T0 + s * NS)


# -- expiry ----------------------------------------------------------------------------------

def test_expire_drops_messages_older_than_max_age(make_harness):
    h = make_harness(limits(max_age_s=10))
    h.connect("c1")
    _publish_at(h, "foo", 1, 2, 3, 4)
    a = h.expire(now=T0 + 12 * NS)          # 1 and 2 are 10 s old or more
    assert a.result == 2
    ch = h.sm.channels["foo"]
    assert (ch.first_seq, ch.last_seq, ch.msgs) == (3, 4, 2)
    assert h.expire(now=T0 + 12 * NS).result == 0
    a = h.expire(now=T0 + 100 * NS)
    assert a.result == 2 and (ch.first_seq, ch.last_seq, ch.msgs) == (5, 4, 0)
    # sequences go on after an expired channel
    h.publish("c1", "foo", b"next", now=T0 + 101 * NS)
    assert (ch.first_seq, ch.last_seq, ch.msgs) == (5, 5, 1)


def test_expire_clears_pending_of_expired_messages(make_harness):
    h = make_harness(limits(max_age_s=10))
    h.connect("c1")
    sub_id = h.subscribe("c1", "foo", "s", sp=First, mif=2, now=T0).effects[0].sub_id
    _publish_at(h, "foo", 1, 2, 3, 4, 5)
    assert h.pending("foo", "ack.s") == [1, 2]
    a = h.expire(now=T0 + 13 * NS)           # 1, 2, 3 expire
    assert fx.MsgsAcked(sub_id, (1, 2)) in a.effects
    assert 1 not in h.sub("foo", "ack.s").pending


def test_expire_unstalls_and_delivers_the_next_messages(make_harness):
    h = make_harness(limits(max_age_s=10))
    h.connect("c1")
    h.connect("c2")
    h.subscribe("c1", "foo", "s", sp=First, mif=2, now=T0)
    h.subscribe("c2", "foo", "q", q="g", sp=First, mif=2, now=T0)
    _publish_at(h, "foo", 1, 2, 3, 4, 5)
    assert h.pending("foo", "ack.s") == [1, 2] and h.pending("foo", "ack.q") == [1, 2]
    a = h.expire(now=T0 + 13 * NS)           # 1, 2, 3 expire: both have room again
    # delivery goes on at the first available, as after an ack (reference §2.7, §2.8)
    assert sorted(seqs_of(a)) == [4, 4, 5, 5]
    assert h.pending("foo", "ack.s") == [4, 5] and h.pending("foo", "ack.q") == [4, 5]


def test_expire_clears_offline_durable_pending(make_harness):
    h = make_harness(limits(max_age_s=10))
    h.connect("c1")
    sub_id = h.subscribe("c1", "foo", "d", dur="d", sp=First, now=T0).effects[0].sub_id
    _publish_at(h, "foo", 1, 2)
    h.unsubscribe("c1", "foo", "ack.d", close=True)
    h.expire(now=T0 + 11 * NS)
    assert sorted(h.sm.channels["foo"].subs[sub_id].pending) == [2]
    a = h.subscribe("c1", "foo", "d2", dur="d", now=T0 + 11 * NS)
    assert seqs_of(a) == [2]


def test_expire_only_channels_with_max_age(make_harness):
    per = {"old": ChannelLimits(max_age_s=5)}
    h = make_harness(LimitsResolver(for_channel=lambda name: per.get(name, ChannelLimits())))
    h.connect("c1")
    _publish_at(h, "old", 1)
    _publish_at(h, "keep", 1)
    assert h.expire(now=T0 + 100 * NS).result == 1
    assert h.sm.channels["old"].msgs == 0 and h.sm.channels["keep"].msgs == 1


def test_expire_without_max_age_does_nothing(h):
    h.connect("c1")
    _publish_at(h, "foo", 1)
    a = h.expire(now=T0 + 10**6 * NS)
    assert a.result == 0 and a.effects == []
    assert h.sm.channels["foo"].msgs == 1


# -- delete channel (max_inactivity) -----------------------------------------------------------

def test_delete_inactive_channel(make_harness):
    h = make_harness(limits(max_inactivity_s=60))
    h.connect("c1")
    _publish_at(h, "foo", 1)
    ch_id = h.sm.channels["foo"].channel_id
    assert h.delete_channel("foo", now=T0 + 30 * NS).result is False      # not long enough
    assert h.delete_channel("foo", now=T0 + 61 * NS).result is True
    assert "foo" not in h.sm.channels and h.sm.channel_names_lower == {}
    with h.store.read() as r:
        assert r.get_channel("foo") is None and r.get_channel_by_id(ch_id) is None
    # a replayed or late delete of the old id does not touch a new channel of that name
    _publish_at(h, "foo", 100)
    new_id = h.sm.channels["foo"].channel_id
    assert new_id != ch_id
    assert h.delete_channel("foo", ch_id, now=T0 + 1000 * NS).result is False
    assert h.sm.channels["foo"].msgs == 1
    assert h.delete_channel("gone", 99, now=T0 + 1000 * NS).result is False


def test_delete_channel_emits_effect_and_sequences_restart(make_harness):
    h = make_harness(limits(max_inactivity_s=1))
    h.connect("c1")
    _publish_at(h, "foo", 1, 2)
    a = h.delete_channel("foo", now=T0 + 10 * NS)
    assert a.effects == [fx.ChannelDeleted("foo")]
    _publish_at(h, "foo", 20)
    assert h.sm.channels["foo"].last_seq == 1


def test_no_delete_with_active_subscription(make_harness):
    h = make_harness(limits(max_inactivity_s=1))
    h.connect("c1")
    h.subscribe("c1", "foo", "s", now=T0)
    assert h.delete_channel("foo", now=T0 + 100 * NS).result is False
    h.unsubscribe("c1", "foo", "ack.s")
    assert h.delete_channel("foo", now=T0 + 100 * NS).result is True


def test_subscribe_counts_as_activity(make_harness):
    h = make_harness(limits(max_inactivity_s=60))
    h.connect("c1")
    _publish_at(h, "foo", 1)
    h.subscribe("c1", "foo", "s", now=T0 + 50 * NS)
    h.unsubscribe("c1", "foo", "ack.s")
    assert h.delete_channel("foo", now=T0 + 100 * NS).result is False
    assert h.delete_channel("foo", now=T0 + 110 * NS).result is True


def test_offline_durables_and_shadows_do_not_keep_a_channel(make_harness):
    h = make_harness(limits(max_inactivity_s=1))
    h.connect("c1")
    h.subscribe("c1", "foo", "d", dur="d", now=T0)
    h.subscribe("c1", "foo", "q", q="g", dur="d", now=T0)
    _publish_at(h, "foo", 1)
    h.close_client("c1")
    assert len(h.sm.channels["foo"].subs) == 2
    assert h.delete_channel("foo", now=T0 + 100 * NS).result is True
    # the durables died with the channel: they start fresh
    h.connect("c1")
    _publish_at(h, "foo", 200)
    a = h.subscribe("c1", "foo", "d2", dur="d", now=T0 + 201 * NS)
    assert seqs_of(a) == [] and a.effects[0].sub_id not in (1, 2)


def test_delete_disabled_without_max_inactivity(h):
    h.connect("c1")
    _publish_at(h, "foo", 1)
    assert h.delete_channel("foo", now=T0 + 10**9 * NS).result is False
    assert "foo" in h.sm.channels


def test_unsubscribe_after_delete_is_unknown_channel(make_harness):
    h = make_harness(limits(max_inactivity_s=1))
    h.connect("c1")
    h.subscribe("c1", "foo", "d", dur="d", now=T0)
    h.unsubscribe("c1", "foo", "ack.d", close=True)
    h.delete_channel("foo", now=T0 + 100 * NS)
    assert h.unsubscribe("c1", "foo", "ack.d").result == errors.UNKNOWN_CHANNEL
