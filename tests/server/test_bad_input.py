"""Bad input against an in-process NatsServer (reference §1.1, §1.11).

Each case checks three things:
1. the offending connection gets the `-ERR` nats-server sends, at the point where it
   sends it (after the replies to what came before), or a silent close, and is closed
   (or, for the -ERRs that keep it open, still works);
2. the server keeps serving: a new connection handshakes, subscribes and publishes;
3. a real nats-py client, connected before the bad input, subscribed and publishing,
   never notices.
"""
from __future__ import annotations

import asyncio
import collections
import random
import socket
from dataclasses import dataclass, field

import nats
import pytest

from broker.protocol.nats import errors, writer
from broker.protocol.nats.errors import ProtocolViolation
from broker.protocol.nats.events import PONG, Err, Info, Msg
from broker.protocol.nats.parser import SERVER, Parser
from broker.server import NatsServer, ServerLimits
from tests.support.raw import Raw

TIMEOUT_S = 3.0
MAX_PAYLOAD = 64 * 1024
UNKNOWN = Err(errors.UNKNOWN_PROTOCOL_OPERATION)
MAX_LINE = Err(errors.MAX_CONTROL_LINE_EXCEEDED)
MAX_PAYLOAD_ERR = Err(errors.MAXIMUM_PAYLOAD_VIOLATION)


@dataclass
class World:
    """A server, and a nats-py bystander connected to it before anything goes wrong."""

    server: NatsServer
    nc: nats.NATS
    sub: object
    client_errors: list = field(default_factory=list)
    raws: list = field(default_factory=list)
    seen: list = field(default_factory=list)  # subjects the bystander received

    async def raw(self, handshake: bool = True, **options) -> Raw:
        raw = await Raw.open(self.server.port)
        self.raws.append(raw)
        if handshake:
            await raw.handshake(**options)
        return raw

    async def bystander_round_trip(self) -> None:
        token = str(random.random()).encode()
        await self.nc.publish("bystander.check", token)
        deadline = asyncio.get_running_loop().time() + TIMEOUT_S
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            msg = await self.sub.next_msg(timeout=max(remaining, 0.01))
            if msg.subject == "bystander.check" and msg.data == token:
                return
            self.seen.append((msg.subject, msg.data))

    async def assert_all_well(self, still_open: int = 0) -> None:
        """The server and the bystander keep working; only `still_open` raw clients remain."""
        deadline = asyncio.get_running_loop().time() + TIMEOUT_S
        while len(self.server.connections) != 1 + still_open:
            assert asyncio.get_running_loop().time() < deadline, self.server.connections
            await asyncio.sleep(0.01)
        await self.bystander_round_trip()
        newcomer = await self.raw()
        newcomer.send(b"SUB bystander.> 1\r\n")
        await newcomer.sync()
        newcomer.send(b"PUB bystander.newcomer 2\r\nhi\r\n")
        assert await newcomer.sync() == [Msg(b"bystander.newcomer", b"1", None, b"hi")]
        await self.bystander_round_trip()
        assert ("bystander.newcomer", b"hi") in self.seen
        assert self.nc.is_connected
        assert self.client_errors == []


@pytest.fixture
async def world():
    server = NatsServer("127.0.0.1", 0, limits=ServerLimits(max_payload=MAX_PAYLOAD))
    await server.start()
    client_errors: list = []

    async def on_error(exc):
        client_errors.append(exc)

    async def on_disconnect():
        client_errors.append("disconnected")

    nc = await nats.connect(f"nats://127.0.0.1:{server.port}", allow_reconnect=False,
                            error_cb=on_error, disconnected_cb=on_disconnect, connect_timeout=2)
    sub = await nc.subscribe("bystander.>")
    await nc.flush(timeout=TIMEOUT_S)
    state = World(server, nc, sub, client_errors)
    await state.bystander_round_trip()
    yield state
    for raw in state.raws:
        raw.close()
    if nc.is_connected:
        await nc.close()
    await server.stop()


async def offend(world: World, data: bytes, **connect_options) -> tuple[list, bytes]:
    """Handshake, PING, send `data`; return the events until the close and the bytes
    the server wrote after the PONG of that PING."""
    raw = await world.raw(**connect_options)
    raw.send(writer.PING + data)
    events = await raw.until_closed()
    assert events[:1] == [PONG], "what came before the bad input is answered first"
    after_pong = raw.transcript.split(b"PONG\r\n", 2)[-1]
    return events[1:], after_pong


def expected_tail(err: Err | None) -> bytes:
    return b"" if err is None else errors.err_line(err.text)


# -- malformed control lines --

MALFORMED = {
    "unknown-verb": (b"FOO bar\r\n", UNKNOWN),
    "unknown-verb-no-args": (b"HELLO\r\n", UNKNOWN),
    "empty-line": (b"\r\n", UNKNOWN),
    "pub-without-args": (b"PUB\r\n", UNKNOWN),
    "sub-without-args": (b"SUB\r\n", UNKNOWN),
    "unsub-without-args": (b"UNSUB\r\n", UNKNOWN),
    "msg-from-client": (b"MSG bystander.x 1 1\r\nx\r\n", UNKNOWN),
    "pub-one-arg": (b"PUB bystander.x\r\n", None),
    "pub-four-args": (b"PUB bystander.x a b 1\r\nx\r\n", None),
    "hpub-two-args": (b"HPUB bystander.x 5\r\nhello\r\n", None),
    "sub-one-arg": (b"SUB bystander.x\r\n", None),
    "sub-four-args": (b"SUB a b c d\r\n", None),
    "unsub-three-args": (b"UNSUB 1 2 3\r\n", None),
    "pub-size-not-a-number": (b"PUB bystander.x five\r\nfive\r\n", None),
    "pub-size-negative": (b"PUB bystander.x -1\r\n", None),
    "hpub-header-bigger-than-total": (b"HPUB bystander.x 20 10\r\n", None),
    "connect-invalid-json": (b"CONNECT {verbose:false\r\n", None),
    "connect-json-array": (b"CONNECT [true]\r\n", None),
    "err-from-client": (b"-ERR 'who knows'\r\n", None),
    "payload-too-long": (b"PUB bystander.leak 3\r\nabcXY\r\n", UNKNOWN),
    "payload-then-bare-lf": (b"PUB bystander.leak 3\r\nabc\nPING\r\n", UNKNOWN),
    "hpub-payload-too-long": (b"HPUB bystander.leak 12 12\r\nNATS/1.0\r\n\r\nX\r\n", UNKNOWN),
    "control-line-too-long": (b"PUB bystander." + b"a" * 5000 + b" 1\r\nx\r\n", MAX_LINE),
    "control-line-too-long-no-end": (b"SUB " + b"a" * 5000, MAX_LINE),
    "connect-too-long": (b'CONNECT {"name":"' + b"n" * 5000 + b'"}\r\n', MAX_LINE),
}


@pytest.mark.parametrize("data, err", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_control_lines(world, data, err):
    events, tail = await offend(world, data)
    assert events == ([] if err is None else [err])
    assert tail == expected_tail(err)
    await world.assert_all_well()
    assert not any(subject == "bystander.leak" for subject, _ in world.seen)


async def test_malformed_lines_in_lower_case_too(world):
    events, tail = await offend(world, b"pub bystander.x\r\n")
    assert events == [] and tail == b""
    events, tail = await offend(world, b"foo\r\n")
    assert events == [UNKNOWN]
    await world.assert_all_well()


# -- oversized payloads --

OVERSIZED = {
    "pub-announced": b"PUB bystander.big %d\r\n" % (MAX_PAYLOAD + 1),
    "pub-sent": b"PUB bystander.big %d\r\n" % (MAX_PAYLOAD + 1) + b"x" * (MAX_PAYLOAD + 1)
                + b"\r\n",
    "pub-reply-huge": b"PUB bystander.big reply 999999999\r\n",
    "hpub-total": b"HPUB bystander.big 12 %d\r\nNATS/1.0\r\n\r\n" % (MAX_PAYLOAD + 1),
}


@pytest.mark.parametrize("data", OVERSIZED.values(), ids=OVERSIZED.keys())
async def test_oversized_payloads(world, data):
    events, tail = await offend(world, data)
    assert events == [MAX_PAYLOAD_ERR]
    assert tail == expected_tail(MAX_PAYLOAD_ERR)
    await world.assert_all_well()
    assert not any(subject == "bystander.big" for subject, _ in world.seen)


async def test_payload_of_exactly_max_payload_is_delivered(world):
    raw = await world.raw()
    payload = bytes(range(256)) * (MAX_PAYLOAD // 256)
    raw.send(writer.pub(b"bystander.max", None, payload))
    assert await raw.sync() == []
    await world.assert_all_well(still_open=1)
    assert ("bystander.max", payload) in world.seen


# -- invalid subjects: -ERR, and the connection stays open --

INVALID_SUBJECTS = [b"foo..bar", b".foo", b"foo.", b"foo.>.bar", b">.foo", b".", b"a.>.>"]


@pytest.mark.parametrize("subject", INVALID_SUBJECTS)
async def test_invalid_subscription_subject_keeps_the_connection(world, subject):
    raw = await world.raw()
    raw.send(b"SUB " + subject + b" 1\r\n")
    assert await raw.sync() == [Err(errors.INVALID_SUBJECT)]
    raw.send(b"SUB " + subject + b" q 2\r\n")
    assert await raw.sync() == [Err(errors.INVALID_SUBJECT)]
    raw.send(b"SUB bystander.> 3\r\n")
    await raw.sync()
    await world.assert_all_well(still_open=1)
    got = await raw.sync()
    assert [m.subject for m in got] == [b"bystander.check", b"bystander.newcomer",
                                        b"bystander.check"]
    assert world.server.router.count == 1 + 1 + 1  # bystander, newcomer, raw's valid SUB


async def test_invalid_publish_subject_is_reported_to_pedantic_and_still_routed(world):
    raw = await world.raw(pedantic=True)
    raw.send(b"PUB bystander.* 4\r\nwild\r\n")
    assert await raw.sync() == [Err(errors.INVALID_PUBLISH_SUBJECT)]
    await world.assert_all_well(still_open=1)
    assert ("bystander.*", b"wild") in world.seen


# -- random bytes --


def _verdict(data: bytes) -> ProtocolViolation:
    events = Parser(SERVER, max_payload=MAX_PAYLOAD).feed(data)
    assert events and isinstance(events[-1], ProtocolViolation), "the seed must break the stream"
    return events[-1]


@pytest.mark.parametrize("seed", range(9))
async def test_random_bytes(world, seed):
    rng = random.Random(seed)
    data = rng.randbytes(6000)
    if seed % 3 == 1:  # start like a real operation, go wrong later
        data = rng.choice([b"PUB bystander.r 5\r\n", b"SUB ", b"HPUB x ", b"CONNECT "]) + data
    elif seed % 3 == 2:  # one endless line
        data = data.replace(b"\n", b"")
    verdict = _verdict(data)
    events, tail = await offend(world, data)
    expected = [] if verdict.err_text is None else [Err(verdict.err_text)]
    assert events == expected
    assert tail == (b"" if verdict.err_text is None else errors.err_line(verdict.err_text))
    await world.assert_all_well()


# -- half an operation, then the client goes away --

HALVES = {
    "half-control-line": b"PUB bystander.half 5",
    "half-control-line-cr": b"PUB bystander.half 5\r",
    "half-payload": b"PUB bystander.half 10\r\nhello",
    "payload-without-crlf": b"PUB bystander.half 5\r\nhello",
    "half-hpub-headers": b"HPUB bystander.half 22 27\r\nNATS/1.0\r\n",
    "half-connect": b'CONNECT {"verbose":',
}


@pytest.mark.parametrize("data", HALVES.values(), ids=HALVES.keys())
async def test_half_operation_then_disconnect(world, data):
    raw = await world.raw()
    raw.send(data)
    await raw.writer.drain()
    assert raw.events == collections.deque()
    raw.writer.close()
    await asyncio.wait_for(raw.writer.wait_closed(), TIMEOUT_S)
    await world.assert_all_well()
    assert not any(subject == "bystander.half" for subject, _ in world.seen)


async def test_half_operation_then_abort(world):
    raw = await world.raw()
    raw.send(b"PUB bystander.half 100\r\n" + b"x" * 50)
    await raw.writer.drain()
    raw.writer.transport.abort()  # RST instead of FIN
    await world.assert_all_well()
    assert not any(subject == "bystander.half" for subject, _ in world.seen)


# -- garbage after a valid PUB --

GARBAGE_AFTER_PUB = {
    "garbage-line": (b"GARBAGE\r\n", UNKNOWN),
    "binary": (b"\x00\xff\xfe\x01\r\n", UNKNOWN),
    "lone-crlf": (b"\r\n", UNKNOWN),
    "wrong-args": (b"PUB only-a-subject\r\n", None),
    "too-long": (b"Z" * 5000, MAX_LINE),
}


@pytest.mark.parametrize("garbage, err", GARBAGE_AFTER_PUB.values(), ids=GARBAGE_AFTER_PUB.keys())
async def test_garbage_after_a_valid_pub(world, garbage, err):
    good = writer.pub(b"bystander.ok", None, b"ok") + writer.pub(b"bystander.ok2", b"r", b"")
    events, tail = await offend(world, good + garbage)
    assert events == ([] if err is None else [err])
    assert tail == expected_tail(err)
    await world.assert_all_well()
    assert ("bystander.ok", b"ok") in world.seen
    assert ("bystander.ok2", b"") in world.seen


async def test_garbage_in_the_same_segment_as_many_pubs(world):
    """The PUB fast path hands over to the checked path when the stream breaks."""
    pubs = b"".join(writer.pub(b"bystander.burst", None, b"%d" % i) for i in range(100))
    events, tail = await offend(world, pubs + b"PUB bystander.burst 1\r\nxx\r\n")
    assert events == [UNKNOWN]
    await world.assert_all_well()
    burst = [data for subject, data in world.seen if subject == "bystander.burst"]
    assert burst == [b"%d" % i for i in range(100)]


async def test_many_offenders_at_once(world):
    offenders = [await world.raw() for _ in range(10)]
    for index, raw in enumerate(offenders):
        raw.send(b"BAD%d\r\n" % index if index % 2 else b"PUB x\r\n")
    for index, raw in enumerate(offenders):
        assert await raw.until_closed() == ([UNKNOWN] if index % 2 else [])
    await world.assert_all_well()


async def test_bad_input_before_connect(world):
    raw = await world.raw(handshake=False)
    assert isinstance(await raw.next_event(), Info)
    raw.send(b"NONSENSE\r\n")
    assert await raw.until_closed() == [UNKNOWN]
    await world.assert_all_well()


async def test_hung_up_socket_without_any_bytes(world):
    sock = socket.create_connection(("127.0.0.1", world.server.port), timeout=TIMEOUT_S)
    sock.close()
    await world.assert_all_well()
