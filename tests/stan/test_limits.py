"""Store limits from the command line (reference §3): -mm and -mc."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)

TOO_MANY_CHANNELS = "too many channels"


def test_max_msgs_keeps_only_the_last_n_messages(stan_factory, judges, name):
    node = stan_factory("-mm", "10")
    channel = name("mm")
    pub = judges.publish("node", node.url, name("pub"), channel, count=25, sync=True)
    assert all(a["error"] is None for a in pub.acks), pub.describe()  # dropping old ones is silent

    for kind in ("node", "py"):
        sub = judges.sub(kind, node.url, name(f"sub-{kind}"), channel, start="first")
        sub.wait_msgs(10)
        sub.quiet(0.3)
        assert sub.seqs == list(range(16, 26)), sub.describe()
        assert [m["data"] for m in sub.msgs] == [f"msg-{i}" for i in range(16, 26)]

    # A sequence below the first kept one starts at the first kept one.
    sub = judges.sub("node", node.url, name("sub-seq"), channel, start="seq:3")
    sub.wait_msgs(10)
    assert sub.seqs[0] == 16, sub.describe()


def test_max_channels_rejects_one_channel_too_many(stan_factory, judges, name):
    node = stan_factory("-mc", "1")
    allowed = name("only")
    judges.publish("node", node.url, name("pub"), allowed, count=2)

    for kind in ("node", "py"):
        pub = judges.pub(kind, node.url, name(f"pub-{kind}"), name("extra"), count=1).finish()
        assert [a["error"] for a in pub.acks] == [TOO_MANY_CHANNELS], pub.describe()

        sub = judges.sub(kind, node.url, name(f"sub-{kind}"), name("extra-sub"), ready=False)
        sub.expect_error(TOO_MANY_CHANNELS, stage="subscribe")
        assert sub.errors == [TOO_MANY_CHANNELS], sub.describe()
        assert not sub.of("ready"), sub.describe()

    # The existing channel is unaffected.
    judges.publish("py", node.url, name("pub"), allowed, count=1, first=3)
    sub = judges.sub("node", node.url, name("sub"), allowed, start="first")
    sub.wait_msgs(3)
    assert sub.seqs == [1, 2, 3], sub.describe()
