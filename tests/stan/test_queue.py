"""Queue groups and durable queue groups (reference §2.10, §2.12)."""
from __future__ import annotations

from collections import Counter

import pytest

pytestmark = pytest.mark.timeout(90)


def total(members) -> int:
    return sum(len(m.msgs) for m in members)


def wait_total(members, n: int) -> None:
    members[0].wait_until(lambda _: total(members) >= n, what=f"{n} messages across the group")


def test_queue_group_delivers_each_message_to_exactly_one_member(stan, judges, name):
    channel = name("q")
    members = [judges.sub(kind, stan.url, name(f"qm-{kind}"), channel, queue="workers")
               for kind in ("node", "node", "py")]
    judges.publish("node", stan.url, name("pub"), channel, count=30)
    wait_total(members, 30)
    members[0].quiet(0.5)
    counts = Counter(seq for m in members for seq in m.seqs)
    assert sorted(counts) == list(range(1, 31)), [m.describe() for m in members]
    assert set(counts.values()) == {1}, f"delivered more than once: {counts}"
    assert all(m.msgs for m in members), "a member got nothing: " + "\n".join(m.describe() for m in members)


def test_queue_group_and_plain_subscriber_each_get_every_message(stan, judges, name):
    channel = name("qplain")
    members = [judges.sub("node", stan.url, name("qm"), channel, queue="g") for _ in range(2)]
    plain = judges.sub("py", stan.url, name("plain"), channel)
    judges.publish("node", stan.url, name("pub"), channel, count=10)
    wait_total(members, 10)
    plain.wait_msgs(10)
    assert sorted(s for m in members for s in m.seqs) == list(range(1, 11))
    assert plain.seqs == list(range(1, 11)), plain.describe()


def test_later_queue_member_joins_at_the_group_position_not_its_own_start(stan, judges, name):
    channel = name("qjoin")
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    first = judges.sub("node", stan.url, name("qm"), channel, queue="g", start="first")
    first.wait_msgs(3)
    late = judges.sub("node", stan.url, name("qm"), channel, queue="g", start="first")
    late.quiet(0.5)
    assert late.seqs == [], late.describe()


def test_durable_queue_group_survives_all_members_closing(stan, judges, name):
    channel = name("dq")
    members = [judges.sub(kind, stan.url, name(f"dqm-{kind}"), channel, queue="dq", durable="dur",
                          start="first", ack="manual")
               for kind in ("node", "py")]
    judges.publish("node", stan.url, name("pub"), channel, count=10)
    wait_total(members, 10)
    for m in members:
        m.send("disconnect")
    for m in members:
        m.expect_ok()
    assert sorted(s for m in members for s in m.seqs) == list(range(1, 11))

    judges.publish("node", stan.url, name("pub"), channel, count=5, first=11)
    # A new member, from a new client, takes the group over where it stopped.
    newcomer = judges.sub("node", stan.url, name("dqm-new"), channel, queue="dq", durable="dur",
                          start="first", ack="manual")
    newcomer.wait_msgs(5)
    newcomer.quiet(0.5)
    assert newcomer.seqs == [11, 12, 13, 14, 15], newcomer.describe()


def test_non_durable_queue_group_ends_with_its_last_member(stan, judges, name):
    channel = name("ndq")
    member = judges.sub("node", stan.url, name("qm"), channel, queue="g", start="first", ack="manual")
    judges.publish("node", stan.url, name("pub"), channel, count=4)
    member.wait_msgs(4)
    member.send("disconnect")
    member.expect_ok()
    # The group is gone: a new member creates it again, at its own start position.
    again = judges.sub("node", stan.url, name("qm"), channel, queue="g", start="first")
    again.wait_msgs(4)
    assert again.seqs == [1, 2, 3, 4], again.describe()


def test_unsubscribed_durable_queue_group_is_removed(stan, judges, name):
    channel = name("dqunsub")
    member = judges.sub("node", stan.url, name("qm"), channel, queue="g", durable="d",
                        start="first", ack="manual")
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    member.wait_msgs(3)
    member.send("unsubscribe")
    member.expect_ok()
    assert member.of("unsubscribed"), member.describe()
    again = judges.sub("node", stan.url, name("qm"), channel, queue="g", durable="d", start="first")
    again.wait_msgs(3)
    assert again.seqs == [1, 2, 3], again.describe()
