"""The client's pure parts: defaults, argument checks, start positions, PING accounting,
the PubAck window and the error texts. No server."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from broker import client
from broker.client.errors import PublishAckTimeout, ServerError, StanError
from broker.client.options import (ConnectOptions, StartPosition, ack_wait_wire,
                                   ping_interval_from_wire, ping_interval_wire, resolve_start)
from broker.client.pinger import PingState, ping_reply_error
from broker.client.publisher import PubAckTracker
from broker.protocol.stan import PingResponse, errors as texts

NOW_NS = 1_700_000_000 * 10**9


def test_defaults_are_stan_go_s():
    """Reference §2.19, the stan.go column."""
    assert client.DEFAULT_NATS_URL == "nats://127.0.0.1:4222"
    assert client.DEFAULT_CONNECT_TIMEOUT == 2
    assert client.DEFAULT_PUB_ACK_WAIT == 30
    assert client.DEFAULT_MAX_PUB_ACKS_INFLIGHT == 16384
    assert (client.DEFAULT_PING_INTERVAL, client.DEFAULT_PING_MAX_OUT) == (5, 88)
    assert client.DEFAULT_MAX_INFLIGHT == 1024
    assert client.DEFAULT_ACK_WAIT == 30
    options = ConnectOptions()
    assert (options.connect_timeout, options.pub_ack_wait, options.max_pub_acks_inflight,
            options.ping_interval, options.ping_max_out) == (2, 30, 16384, 5, 88)
    assert options.discover_prefix == "_STAN.discover"


@pytest.mark.parametrize("kwargs", [dict(connect_timeout=0), dict(pub_ack_wait=-1),
                                    dict(ping_interval=0), dict(ping_max_out=1),
                                    dict(max_pub_acks_inflight=0),
                                    dict(connect_timeout=float("nan")), dict(discover_prefix="")])
def test_bad_connect_options_are_refused_before_any_io(kwargs):
    with pytest.raises(ValueError):
        ConnectOptions(**kwargs)


def test_start_positions_map_to_the_wire_enum():
    assert [p.value for p in StartPosition] == [0, 1, 2, 3, 4]
    assert resolve_start(None, None, None, None, NOW_NS).position is StartPosition.NEW_ONLY
    assert resolve_start(StartPosition.FIRST, None, None, None, NOW_NS).position is StartPosition.FIRST
    assert resolve_start(1, None, None, None, NOW_NS).position is StartPosition.LAST_RECEIVED


def test_a_start_sequence_or_time_implies_its_position():
    spec = resolve_start(None, 7, None, None, NOW_NS)
    assert (spec.position, spec.sequence) == (StartPosition.SEQUENCE_START, 7)
    spec = resolve_start(None, None, None, 90.5, NOW_NS)
    assert (spec.position, spec.time_delta_ns) == (StartPosition.TIME_DELTA_START, 90_500_000_000)
    spec = resolve_start(None, None, None, timedelta(hours=1, minutes=30), NOW_NS)
    assert spec.time_delta_ns == 5400 * 10**9
    spec = resolve_start(None, None, NOW_NS / 1e9 - 10, None, NOW_NS)
    assert spec.time_delta_ns == 10 * 10**9
    when = datetime.fromtimestamp(NOW_NS // 10**9 - 60, tz=timezone.utc)
    assert resolve_start(None, None, when, None, NOW_NS).time_delta_ns == 60 * 10**9
    assert resolve_start(StartPosition.SEQUENCE_START, None, None, None, NOW_NS).sequence == 0


@pytest.mark.parametrize("args", [
    (StartPosition.FIRST, 3, None, None),         # contradicts
    (None, 3, None, 1.0),                         # two starts
    (StartPosition.TIME_DELTA_START, None, None, None),  # no time given
    (9, None, None, None),                        # not a start position
    (None, -1, None, None),
])
def test_inconsistent_starts_are_refused(args):
    with pytest.raises(ValueError):
        resolve_start(*args, NOW_NS)


def test_durations_on_the_wire():
    assert ping_interval_wire(5) == 5
    assert ping_interval_wire(0.25) == -250      # stan.go's tests: negative = milliseconds
    assert ping_interval_wire(1.5) == -1500
    assert ping_interval_from_wire(5, 9) == 5.0
    assert ping_interval_from_wire(-250, 9) == 0.25
    assert ping_interval_from_wire(0, 9) == 9
    assert ack_wait_wire(30) == 30
    assert ack_wait_wire(1.9) == 1
    assert ack_wait_wire(0.5) == 0               # the server says why that is wrong


def test_ping_state_resets_on_any_good_reply_and_fails_above_max_out():
    state = PingState(max_out=3)
    assert [state.tick() for _ in range(3)] == [True, True, True]
    state.answered()
    assert state.out == 0
    assert [state.tick() for _ in range(4)] == [True, True, True, False]


def test_ping_replies_are_classified():
    ok = SimpleNamespace(headers=None, data=b"")
    no_responders = SimpleNamespace(headers={"Status": "503"}, data=b"")
    garbage = SimpleNamespace(headers=None, data=b"\xff\xff\xff")
    replaced = SimpleNamespace(headers=None,
                               data=PingResponse(error=texts.CLIENT_REPLACED).SerializeToString())
    assert ping_reply_error(ok) is None
    assert ping_reply_error(no_responders) == ""
    assert ping_reply_error(garbage) == ""
    assert ping_reply_error(replaced) == texts.CLIENT_REPLACED


def test_errors_carry_the_exact_texts():
    assert str(client.ConnectRequestTimeout()) == texts.CONNECT_REQUEST_TIMEOUT
    assert str(client.PublishAckTimeout()) == texts.PUBLISH_ACK_TIMEOUT
    assert str(client.ConnectionClosed()) == texts.CONNECTION_CLOSED
    assert str(client.ConnectionLost()) == texts.PING_FAILURE
    assert str(client.InvalidSubscription()) == texts.INVALID_SUBSCRIPTION
    assert str(client.ManualAckInAutoMode()) == texts.MANUAL_ACK_IN_AUTO_MODE
    assert str(client.NotSupportedByServer()) == texts.NOT_SUPPORTED_BY_SERVER
    error = client.ConnectRequestTimeout(detail="cluster ID 'x'")
    assert error.text == texts.CONNECT_REQUEST_TIMEOUT
    assert str(error) == texts.CONNECT_REQUEST_TIMEOUT + ": cluster ID 'x'"
    assert isinstance(error, TimeoutError) and isinstance(error, client.ConnectError)
    assert isinstance(client.NoServersError(), TimeoutError)
    assert str(ServerError(texts.DUPLICATE_DURABLE)) == texts.DUPLICATE_DURABLE


# -- the PubAck window ---------------------------------------------------------------------

async def test_pub_ack_window_holds_publishers_until_a_slot_frees():
    tracker = PubAckTracker(max_inflight=2, ack_wait_s=30)
    results = []
    for guid in ("a", "b"):
        await tracker.reserve(guid, lambda g, e: results.append((g, e)))
        tracker.arm(guid)
    third = asyncio.ensure_future(tracker.reserve("c", lambda g, e: results.append((g, e))))
    await asyncio.sleep(0.01)
    assert not third.done() and len(tracker) == 2
    tracker.on_ack("a", "")
    await asyncio.wait_for(third, 1)
    assert len(tracker) == 2 and results == [("a", None)]
    tracker.on_ack("b", texts.INVALID_PUBLISH_REQUEST)
    assert results[1][0] == "b" and str(results[1][1]) == texts.INVALID_PUBLISH_REQUEST
    tracker.on_ack("b", "")          # a duplicate ack: nobody is called twice
    tracker.on_ack("zzz", "")        # an unknown guid: ignored
    assert len(results) == 2


async def test_pub_ack_timeout_and_close_each_free_the_slot_once():
    tracker = PubAckTracker(max_inflight=1, ack_wait_s=0.05)
    results = []
    await tracker.reserve("a", lambda g, e: results.append((g, e)))
    tracker.arm("a")
    waiting = asyncio.ensure_future(tracker.reserve("b", lambda g, e: results.append((g, e))))
    await asyncio.wait_for(waiting, 1)                 # freed by a's timeout
    assert isinstance(results[0][1], PublishAckTimeout)
    tracker.on_ack("a", "")                            # too late: ignored
    blocked = asyncio.ensure_future(tracker.reserve("c", None))
    await asyncio.sleep(0.01)
    closed = client.ConnectionClosed()
    tracker.fail_all(closed)
    assert results[1] == ("b", closed)
    with pytest.raises(client.ConnectionClosed):
        await asyncio.wait_for(blocked, 1)
    with pytest.raises(client.ConnectionClosed):
        await tracker.reserve("d", None)
    assert len(tracker) == 0


async def test_a_cancelled_waiter_passes_its_slot_on():
    tracker = PubAckTracker(max_inflight=1, ack_wait_s=30)
    await tracker.reserve("a", None)
    first = asyncio.ensure_future(tracker.reserve("b", None))
    second = asyncio.ensure_future(tracker.reserve("c", None))
    await asyncio.sleep(0.01)
    tracker.on_ack("a", "")      # wakes `first`...
    first.cancel()               # ...which gives up before it runs
    await asyncio.wait_for(second, 1)
    assert len(tracker) == 1


async def test_async_ack_handlers_run_and_their_errors_are_only_logged(caplog):
    tracker = PubAckTracker(max_inflight=4, ack_wait_s=30)
    seen = asyncio.Event()

    async def handler(guid: str, error: StanError | None) -> None:
        seen.set()
        raise RuntimeError("boom")

    await tracker.reserve("a", handler)
    tracker.on_ack("a", "")
    await asyncio.wait_for(seen.wait(), 1)
    await asyncio.sleep(0.01)
    assert "ack handler raised" in caplog.text


def test_the_client_imports_only_broker_protocol_of_runnel():
    """ARCHITECTURE.md §5: broker/client imports broker/protocol only (and nats-py,
    protobuf, the standard library)."""
    import ast
    from pathlib import Path

    package = Path(client.__file__).parent

    def allowed(module: str) -> bool:
        ours = module.startswith(("broker", "raft", "storage", "chaos"))
        return not ours or module.startswith("broker.protocol")

    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 1:
                    continue                              # a sibling module of the client
                if node.level == 2:
                    assert module.startswith("protocol"), f"{path.name}: ..{module}"
                else:
                    assert node.level == 0 and allowed(module), f"{path.name}: {module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert allowed(alias.name), f"{path.name}: {alias.name}"
