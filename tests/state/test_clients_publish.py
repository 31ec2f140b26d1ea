"""Connect / close and publish batches, applied to the state machine (reference §2.4,
§2.5, §2.13, §2.17, §3.2), on a MemoryStore and an LmdbStore."""
from __future__ import annotations

import zlib

from broker.protocol.stan import First, MsgProto, errors
from broker.state import effects as fx
from tests.state.statekit import NS, T0, limits, seqs_of, store_dump


def _stored(h, channel: str) -> list[tuple[int, MsgProto]]:
    ch = h.sm.channels[channel]
    with h.store.read() as r:
        return [(seq, MsgProto.FromString(rec))
                for seq, rec in r.read_messages(ch.channel_id, 0, 10_000)]


# -- connect / close -------------------------------------------------------------------

def test_connect_registers_client(h):
    a = h.connect("c1", b"C1", hb="_INBOX.hb1", node="nodeA")
    assert a.result is None
    assert a.effects == [fx.ClientOpened("c1", "_INBOX.hb1", b"C1", 1, "nodeA")]
    assert h.sm.conn_ids == {b"C1": "c1"}
    with h.store.read() as r:
        assert [cid for cid, _ in r.list_clients()] == ["c1"]


def test_duplicate_connect_refused_without_replace(h):
    h.connect("c1", b"C1")
    h.subscribe("c1", "foo", "s1")
    a = h.connect("c1", b"C2")
    assert a.result == errors.CLIENT_ID_ALREADY_REGISTERED
    assert a.effects == []
    assert h.sm.clients["c1"].conn_id == b"C1"
    assert h.sm.conn_ids == {b"C1": "c1"}
    assert "ack.s1" in h.sm.ack_inboxes  # the old client's subscription is untouched


def test_replace_closes_the_old_client_first(h):
    h.connect("c1", b"C1")
    h.subscribe("c1", "foo", "plain")
    h.subscribe("c1", "foo", "dur", dur="d")
    a = h.connect("c1", b"C2", replace=True)
    assert a.result is None
    kinds = [type(e) for e in a.effects]
    assert kinds == [fx.SubClosed, fx.SubClosed, fx.ClientClosed, fx.ClientOpened]
    assert h.sm.conn_ids == {b"C2": "c1"}
    ch = h.sm.channels["foo"]
    assert [(s.ack_inbox, s.offline) for s in ch.subs.values()] == [("ack.dur", True)]
    assert h.sm.clients["c1"].subs == {}
    # the old connID no longer publishes, the new one does
    assert h.publish("c1", "foo", b"x", conn=b"C1").result == [errors.INVALID_PUBLISH_REQUEST]
    assert h.publish("c1", "foo", b"x", conn=b"C2").result == [None]


def test_close_client(h):
    h.connect("c1", b"C1")
    h.subscribe("c1", "foo", "s1")
    a = h.close_client("c1")
    assert a.result is None
    assert a.effects == [fx.SubClosed(1, "ack.s1"), fx.ClientClosed("c1")]
    assert h.sm.clients == {} and h.sm.conn_ids == {} and h.sm.ack_inboxes == {}
    assert h.sm.channels["foo"].subs == {}
    with h.store.read() as r:
        assert r.list_clients() == []


def test_close_unknown_client(h):
    a = h.close_client("nobody")
    assert a.result == errors.UNKNOWN_CLIENT_ID and a.effects == []
    h.connect("c1")
    h.close_client("c1")
    assert h.close_client("c1").result == errors.UNKNOWN_CLIENT_ID


def test_protocol_zero_client_publishes_by_client_id(h):
    h.connect("c0", b"", proto=0)
    assert h.sm.conn_ids == {}
    assert h.publish("c0", "foo", b"x", conn=b"").result == [None]


# -- publish -----------------------------------------------------------------------------

def test_publish_sequences_start_at_one_per_channel(h):
    h.connect("c1")
    a = h.publish_batch([["c1", b"conn-c1", ch, "", b"m"] for ch in ("a", "b", "a", "a", "b")])
    assert a.result == [None] * 5
    assert [s for s, _ in _stored(h, "a")] == [1, 2, 3]
    assert [s for s, _ in _stored(h, "b")] == [1, 2]
    assert h.publish("c1", "a", b"next").result == [None]
    assert [s for s, _ in _stored(h, "a")] == [1, 2, 3, 4]
    seq, msg = _stored(h, "a")[-1]
    assert (msg.sequence, msg.subject, msg.data) == (4, "a", b"next")


def test_publish_record_is_the_msgproto(h):
    h.connect("c1")
    h.publish("c1", "foo", b"hello", reply="r.1", now=T0 + 5)
    [(seq, msg)] = _stored(h, "foo")
    body = MsgProto(sequence=1, subject="foo", reply="r.1", data=b"hello", timestamp=T0 + 5)
    assert msg.CRC32 == zlib.crc32(body.SerializeToString())  # the record's checksum
    msg.ClearField("CRC32")
    assert msg == body


def test_timestamps_never_decrease(h):
    h.connect("c1")
    h.publish("c1", "foo", b"1", now=T0 + 100)
    h.publish("c1", "foo", b"2", now=T0 + 50)     # the clock went back: clamped
    h.publish("c1", "foo", b"3", now=T0 + 200)
    h.publish("c1", "bar", b"4", now=T0 + 10)     # another channel has its own clamp
    assert [m.timestamp for _, m in _stored(h, "foo")] == [T0 + 100, T0 + 100, T0 + 200]
    assert [m.timestamp for _, m in _stored(h, "bar")] == [T0 + 10]
    assert h.sm.channels["foo"].last_ts == T0 + 200


def test_publish_unknown_client_or_conn_id(h):
    h.connect("c1", b"C1")
    a = h.publish_batch([
        ["c1", b"C1", "foo", "", b"ok"],
        ["ghost", b"", "foo", "", b"unknown client id"],
        ["c1", b"NOPE", "foo", "", b"unknown conn id"],
        ["c1", b"", "foo", "", b"by client id"],
    ])
    bad = errors.INVALID_PUBLISH_REQUEST
    assert a.result == [None, bad, bad, None]
    assert [(s, m.data) for s, m in _stored(h, "foo")] == [(1, b"ok"), (2, b"by client id")]
    # a rejected publish creates no channel
    assert h.publish("ghost", "other", b"x", conn=b"").result == [bad]
    assert "other" not in h.sm.channels


def test_too_many_channels(make_harness):
    h = make_harness(limits(max_channels=2))
    h.connect("c1")
    a = h.publish_batch([["c1", b"conn-c1", ch, "", b"m"] for ch in ("a", "b", "c", "a")])
    assert a.result == [None, None, errors.TOO_MANY_CHANNELS, None]
    assert sorted(h.sm.channels) == ["a", "b"]
    a = h.subscribe("c1", "d", "s")
    assert a.result == errors.TOO_MANY_CHANNELS


def test_channel_case_conflict(h):
    h.connect("c1")
    h.publish("c1", "foo", b"x")
    a = h.publish("c1", "Foo", b"y")
    text = 'rejecting channel "Foo" because channel "foo" alreay exists (different cases not allowed)'
    assert errors.channel_case_conflict("Foo", "foo") == text
    assert a.result == [text]
    assert sorted(h.sm.channels) == ["foo"]
    assert h.subscribe("c1", "FOO", "s").result == errors.channel_case_conflict("FOO", "foo")


def test_max_msgs_drops_oldest_keeps_newest(make_harness):
    h = make_harness(limits(max_msgs=3))
    h.connect("c1")
    h.publish("c1", "foo", b"1", b"2")
    assert h.publish("c1", "foo", b"3", b"4", b"5").result == [None] * 3  # still a success
    assert [(s, m.data) for s, m in _stored(h, "foo")] == [(3, b"3"), (4, b"4"), (5, b"5")]
    ch = h.sm.channels["foo"]
    assert (ch.first_seq, ch.last_seq, ch.msgs) == (3, 5, 3)
    h.publish("c1", "foo", *[b"%d" % i for i in range(6, 20)])
    assert [s for s, _ in _stored(h, "foo")] == [17, 18, 19]


def test_max_bytes_drops_oldest_keeps_newest_even_if_too_big(make_harness):
    h = make_harness(limits(max_bytes=100))
    h.connect("c1")
    h.publish("c1", "foo", b"a" * 20, b"b" * 20)
    size = h.sm.channels["foo"].bytes
    assert h.sm.channels["foo"].msgs == 2 and size <= 100
    h.publish("c1", "foo", b"c" * 20)
    assert [m.data[:1] for _, m in _stored(h, "foo")] == [b"b", b"c"]
    h.publish("c1", "foo", b"d" * 500)   # alone above max_bytes: still kept
    assert [(s, m.data[:1]) for s, m in _stored(h, "foo")] == [(4, b"d")]
    assert h.sm.channels["foo"].bytes > 100


def test_dropped_messages_are_no_longer_pending(make_harness):
    h = make_harness(limits(max_msgs=2))
    h.connect("c1")
    a = h.subscribe("c1", "foo", "s", sp=First)
    sub_id = a.effects[0].sub_id
    a = h.publish("c1", "foo", b"1", b"2")
    assert seqs_of(a) == [1, 2]
    a = h.publish("c1", "foo", b"3")
    # 1 was dropped: it is acked internally, and only 3 is delivered
    assert fx.MsgsAcked(sub_id, (1,)) in a.effects
    assert seqs_of(a) == [3]
    assert h.pending("foo", "ack.s") == [2, 3]


def test_subscriber_behind_skips_dropped(make_harness):
    h = make_harness(limits(max_msgs=3))
    h.connect("c1")
    sub_id = h.subscribe("c1", "foo", "s", sp=First, mif=1).effects[0].sub_id
    assert seqs_of(h.publish("c1", "foo", b"1")) == [1]
    a = h.publish("c1", "foo", *[b"%d" % i for i in range(2, 8)])   # 5..7 stay stored
    assert fx.MsgsAcked(sub_id, (1,)) in a.effects     # 1 was dropped: no longer pending
    assert seqs_of(a) == [5]                           # the subscriber skips to the first
    assert h.pending("foo", "ack.s") == [5]
    assert seqs_of(h.ack("ack.s", "foo", [5])) == [6]


def test_publish_updates_activity_and_store_record(h):
    h.connect("c1")
    h.publish("c1", "foo", b"x", now=T0 + 7 * NS)
    assert h.sm.channels["foo"].last_activity == T0 + 7 * NS
    dump = store_dump(h.store)
    assert dump["channels"][0]["name"] == "foo"


def test_zero_limits_mean_unlimited(make_harness):
    h = make_harness(limits(max_channels=0, max_msgs=0, max_bytes=0, max_subs=0))
    h.connect("c1")
    for i in range(120):                       # above the default of 100 channels
        assert h.publish("c1", f"ch{i}", b"x" * 100).result == [None]
    h.publish("c1", "ch0", *[b"y" * 1000] * 50)
    assert h.sm.channels["ch0"].msgs == 51
    for i in range(30):
        assert h.subscribe("c1", "ch0", f"s{i}").result is None
