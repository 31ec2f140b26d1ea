"""Durable subscriptions across client restarts and `kill -9` of the node (reference §2.8, §2.11).

The node runs with the FILE store: whatever was acknowledged to a publisher must be there
after a SIGKILL and a restart, and a durable resumes where it left off.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)


def test_durable_resumes_after_client_restart_where_it_left_off(client, stan, judges, name):
    channel, cid, durable = name("dur"), name("durcli"), "dname"
    judges.publish("node", stan.url, name("pub"), channel, count=5)
    first = judges.sub(client, stan.url, cid, channel, start="first", durable=durable,
                       ack="manual", count=5, then="disconnect")
    first.wait_msgs(5)
    first.expect_ok()
    assert first.seqs == [1, 2, 3, 4, 5], first.describe()

    judges.publish("node", stan.url, name("pub"), channel, count=3, first=6)
    # Same client ID and durable name; the start position of a resume is ignored.
    again = judges.sub(client, stan.url, cid, channel, start="first", durable=durable, ack="manual")
    again.wait_msgs(3)
    again.quiet(0.5)
    assert again.seqs == [6, 7, 8], again.describe()
    assert not any(m["redelivered"] for m in again.msgs), again.describe()


def test_durable_resume_redelivers_unacknowledged_messages_first(stan, judges, name):
    channel, cid, durable = name("durpend"), name("durcli"), "dname"
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    first = judges.sub("node", stan.url, cid, channel, start="first", durable=durable,
                       ack="none", count=3, then="disconnect")
    first.wait_msgs(3)
    first.expect_ok()
    judges.publish("node", stan.url, name("pub"), channel, count=2, first=4)

    again = judges.sub("node", stan.url, cid, channel, durable=durable, ack="manual")
    again.wait_msgs(5)
    again.quiet(0.5)
    msgs = again.msgs
    assert [m["seq"] for m in msgs[:3]] == [1, 2, 3], again.describe()
    assert all(m["redelivered"] for m in msgs[:3]), again.describe()
    assert [(m["seq"], m["redelivered"]) for m in msgs[3:]] == [(4, False), (5, False)], again.describe()


def test_durable_is_per_client_id(stan, judges, name):
    """The same durable name under another client ID is another durable, with its own start."""
    channel, durable = name("durper"), "shared-name"
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    a = judges.sub("node", stan.url, name("a"), channel, start="first", durable=durable,
                   ack="manual", count=3)
    a.wait_msgs(3)
    a.expect_ok()
    b = judges.sub("node", stan.url, name("b"), channel, start="seq:2", durable=durable, ack="manual")
    b.wait_msgs(2)
    b.quiet(0.3)
    assert b.seqs == [2, 3], b.describe()


def test_unsubscribed_durable_starts_fresh_at_its_start_position(stan, judges, name):
    channel, cid, durable = name("durunsub"), name("durcli"), "dname"
    judges.publish("node", stan.url, name("pub"), channel, count=3)
    first = judges.sub("node", stan.url, cid, channel, start="first", durable=durable,
                       ack="manual", count=3, then="unsubscribe")
    first.wait_msgs(3)
    first.expect_ok()
    assert first.of("unsubscribed"), first.describe()
    again = judges.sub("node", stan.url, cid, channel, start="first", durable=durable)
    again.wait_msgs(3)
    assert again.seqs == [1, 2, 3], again.describe()


def test_acknowledged_publishes_and_durable_position_survive_kill_9(stan_factory, judges, name):
    node = stan_factory()
    channel, cid, durable = name("k9"), name("k9cli"), "k9dur"
    judges.publish("node", node.url, name("pub"), channel, count=6)
    sub = judges.sub("node", node.url, cid, channel, start="first", durable=durable,
                     ack="manual", count=6, then="disconnect")
    sub.wait_msgs(6)
    sub.expect_ok()
    judges.publish("py", node.url, name("pub"), channel, count=4, first=7)

    node.kill()
    stan_factory.restart(node)

    everything = judges.sub("node", node.url, name("all"), channel, start="first", count=10)
    everything.wait_msgs(10)
    assert everything.seqs == list(range(1, 11)), everything.describe()
    assert [m["data"] for m in everything.msgs] == [f"msg-{i}" for i in range(1, 11)]

    resumed = judges.sub("node", node.url, cid, channel, start="first", durable=durable, ack="manual")
    resumed.wait_msgs(4)
    resumed.quiet(0.5)
    assert resumed.seqs == [7, 8, 9, 10], resumed.describe()
    assert not any(m["redelivered"] for m in resumed.msgs), resumed.describe()


def test_unacknowledged_messages_are_redelivered_after_kill_9_and_restart(stan_factory, judges, name):
    """The node dies while a durable holds unacknowledged messages and its client is still
    connected; after the restart the client (restarted with the same ID, which takes over
    the dead session) gets them again, flagged redelivered, then new ones."""
    node = stan_factory()
    channel, cid, durable = name("k9p"), name("k9pcli"), "k9pdur"
    judges.publish("node", node.url, name("pub"), channel, count=5)
    holder = judges.sub("node", node.url, cid, channel, start="first", durable=durable, ack="none",
                        deadline=60000)
    holder.wait_msgs(5)

    node.kill()
    holder.kill()
    stan_factory.restart(node)

    resumed = judges.sub("node", node.url, cid, channel, durable=durable, ack="manual")
    resumed.wait_msgs(5)
    judges.publish("node", node.url, name("pub"), channel, count=1, first=6)
    resumed.wait_until(lambda j: 6 in j.seqs, what="message 6")
    resumed.quiet(0.5)
    by_seq = {}
    for m in resumed.msgs:
        by_seq.setdefault(m["seq"], m)
    assert sorted(by_seq) == [1, 2, 3, 4, 5, 6], resumed.describe()
    assert all(by_seq[s]["redelivered"] for s in range(1, 6)), resumed.describe()
    assert not by_seq[6]["redelivered"], resumed.describe()
    assert len(resumed.msgs) == 6, resumed.describe()
