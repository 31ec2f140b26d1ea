"""Sessions: connect and close with every official client, client ID rules (reference §2.4, §2.13)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)

INVALID_CLIENT_ID = "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed"
ALREADY_REGISTERED = "stan: clientID already registered"


@pytest.mark.parametrize("kind", ["node", "py", "c"])
def test_each_client_connects_and_closes_cleanly(kind, stan, judges, name):
    client = name(f"conn-{kind}")
    if kind == "c":
        judge = judges.c(stan.url, client).expect_ok()
    else:
        judge = judges.pub(kind, stan.url, client, count=0).expect_ok()
    assert judge.of("connected"), judge.describe()
    closed = judge.of("closed")
    assert closed and closed[0]["error"] is None, judge.describe()


def test_closed_client_id_can_connect_again_at_once(stan, judges, name):
    client = name("again")
    judges.pub("node", stan.url, client, count=0).expect_ok()
    judges.pub("py", stan.url, client, count=0).expect_ok()
    judges.c(stan.url, client).expect_ok()


@pytest.mark.parametrize("bad_id", ["has.dot", "has space", "colon:id"])
def test_invalid_client_id_is_rejected(bad_id, client, stan, judges):
    judge = judges.pub(client, stan.url, bad_id, count=0).finish()
    judge.expect_error(INVALID_CLIENT_ID, stage="connect")
    assert judge.errors == [INVALID_CLIENT_ID], judge.describe()
    assert not judge.of("connected"), judge.describe()


def test_second_connect_with_a_live_client_id_is_rejected_until_the_first_dies(stan, judges, name):
    """The server probes the registered client's heartbeat inbox: while it answers, a
    second connect with its ID fails; once its process is killed (no Close sent), the
    probe times out and the new connection takes the ID over."""
    client = name("dup")
    channel = name("dup-ch")
    first = judges.sub("node", stan.url, client, channel, deadline=60000)

    for kind in ("node", "py"):
        second = judges.pub(kind, stan.url, client, count=0).finish()
        second.expect_error(ALREADY_REGISTERED, stage="connect")
        assert second.errors == [ALREADY_REGISTERED], second.describe()
    assert first.alive() and not first.errors, first.describe()

    first.kill()  # SIGKILL: the server is not told
    replacement = judges.pub("node", stan.url, client, channel, count=1).expect_ok()
    assert replacement.of("connected"), replacement.describe()
