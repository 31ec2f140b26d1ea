"""The sans-I/O NATS parser (reference §1.1, §1.2, §1.11), tested as h11's test_io does.

Every case is fed three ways: whole, one byte at a time, and followed by the first
bytes of a further operation, which must not come out until its last byte arrives.
Errors end the event list with a `ProtocolViolation` carrying the -ERR text that
nats-server sends (None where it closes without a word); the parser is dead after.
"""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.protocol.nats import errors, writer
from broker.protocol.nats.errors import ProtocolViolation
from broker.protocol.nats.events import (OK, PING, PONG, Connect, Err, Info, Msg, Ok,
                                         Ping, Pong, Pub, Sub, Unsub)
from broker.protocol.nats.headers import build_headers
from broker.protocol.nats.parser import (CLIENT, MAX_CONTROL_LINE, MAX_PAYLOAD, SERVER,
                                         Parser)

UNKNOWN = ProtocolViolation(errors.UNKNOWN_PROTOCOL_OPERATION)
SILENT = ProtocolViolation(None)
MAX_PAYLOAD_ERR = ProtocolViolation(errors.MAXIMUM_PAYLOAD_VIOLATION)
MAX_LINE_ERR = ProtocolViolation(errors.MAX_CONTROL_LINE_EXCEEDED)

HDR = b"NATS/1.0\r\nA: b\r\nA: c\r\n\r\n"

# A following operation, split in two: the first part must stay buffered.
TRAILERS = {
    SERVER: (b"PUB next.op reply 5\r\nhel", b"lo\r\n", Pub(b"next.op", b"reply", b"hello")),
    CLIENT: (b"MSG next.op 9 5\r\nhel", b"lo\r\n", Msg(b"next.op", b"9", None, b"hello")),
}


def feed_whole(data: bytes, side: str, **limits) -> list:
    return Parser(side, **limits).feed(data)


def feed_bytewise(data: bytes, side: str, **limits) -> list:
    parser = Parser(side, **limits)
    events: list = []
    for index in range(len(data)):
        events += parser.feed(data[index:index + 1])
    return events


def check_three_ways(data: bytes, expected: list, side: str = SERVER, **limits) -> None:
    """Whole, byte by byte, and with a partial operation after it."""
    assert feed_whole(data, side, **limits) == expected
    assert feed_bytewise(data, side, **limits) == expected
    head, tail, trailing_event = TRAILERS[side]
    parser = Parser(side, **limits)
    assert parser.feed(data + head) == expected
    violated = bool(expected) and isinstance(expected[-1], ProtocolViolation)
    assert parser.feed(tail) == ([] if violated else [trailing_event])
    assert parser.dead == violated


def _mixed_case(verb: bytes) -> bytes:
    return bytes(c if i % 2 else (c ^ 0x20 if 0x61 <= (c | 0x20) <= 0x7A else c)
                 for i, c in enumerate(verb))


def case_variants(data: bytes) -> list[bytes]:
    """The same operation with its verb upper, lower and mixed case."""
    verb = re.match(rb"[^ \t\r\n]*", data).group()
    rest = data[len(verb):]
    return [verb.upper() + rest, verb.lower() + rest, _mixed_case(verb) + rest]


# -- well-formed operations, server side (what clients send) --

SERVER_CASES = {
    "connect": (b'CONNECT {"verbose":false,"pedantic":false,"name":"x","protocol":1}\r\n',
                [Connect({"verbose": False, "pedantic": False, "name": "x", "protocol": 1})]),
    "connect-tab": (b'CONNECT\t{"echo": true}\r\n', [Connect({"echo": True})]),
    "connect-bare-lf": (b'CONNECT {}\n', [Connect({})]),
    "pub": (b"PUB foo 5\r\nhello\r\n", [Pub(b"foo", None, b"hello")]),
    "pub-reply": (b"PUB foo.bar _INBOX.x 5\r\nhello\r\n",
                  [Pub(b"foo.bar", b"_INBOX.x", b"hello")]),
    "pub-spaces-tabs": (b"PUB \t foo\t\t  bar   5  \r\nhello\r\n", [Pub(b"foo", b"bar", b"hello")]),
    "pub-tab-after-verb": (b"PUB\tfoo\t5\r\nhello\r\n", [Pub(b"foo", None, b"hello")]),
    "pub-bare-lf": (b"PUB foo 5\nhello\r\n", [Pub(b"foo", None, b"hello")]),
    "pub-zero": (b"PUB foo 0\r\n\r\n", [Pub(b"foo", None, b"")]),
    "pub-zero-reply": (b"PUB foo r 0\r\n\r\n", [Pub(b"foo", b"r", b"")]),
    "pub-payload-crlf": (b"PUB foo 8\r\nPING\r\n\r\n\r\n", [Pub(b"foo", None, b"PING\r\n\r\n")]),
    "pub-payload-lf": (b"PUB foo 3\r\n\n\n\n\r\n", [Pub(b"foo", None, b"\n\n\n")]),
    "pub-payload-binary": (b"PUB foo 4\r\n\x00\xff\r\x80\r\n",
                           [Pub(b"foo", None, b"\x00\xff\r\x80")]),
    "hpub": (b"HPUB foo %d %d\r\n%shello\r\n" % (len(HDR), len(HDR) + 5, HDR),
             [Pub(b"foo", None, b"hello", HDR)]),
    "hpub-reply": (b"HPUB foo rep %d %d\r\n%shi\r\n" % (len(HDR), len(HDR) + 2, HDR),
                   [Pub(b"foo", b"rep", b"hi", HDR)]),
    "hpub-headers-only": (b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n",
                          [Pub(b"foo", None, b"", b"NATS/1.0\r\n\r\n")]),
    "hpub-zero": (b"HPUB foo 0 0\r\n\r\n", [Pub(b"foo", None, b"", b"")]),
    "sub": (b"SUB foo.* 1\r\n", [Sub(b"foo.*", None, b"1")]),
    "sub-queue": (b"SUB foo.> workers 22\r\n", [Sub(b"foo.>", b"workers", b"22")]),
    "sub-tabs": (b"SUB\t\tfoo \t q\t 3\t\r\n", [Sub(b"foo", b"q", b"3")]),
    "sub-bare-lf": (b"SUB foo 1\n", [Sub(b"foo", None, b"1")]),
    "unsub": (b"UNSUB 1\r\n", [Unsub(b"1", None)]),
    "unsub-max": (b"UNSUB 1 5\r\n", [Unsub(b"1", 5)]),
    "unsub-zero": (b"UNSUB abc\t0\r\n", [Unsub(b"abc", 0)]),
    "ping": (b"PING\r\n", [PING]),
    "ping-bare-lf": (b"PING\n", [PING]),
    "pong": (b"PONG\r\n", [PONG]),
    "info": (b'INFO {"server_id":"S"}\r\n', [Info({"server_id": "S"})]),
    "ok": (b"+OK\r\n", [OK]),
    "err": (b"-ERR 'Unknown Protocol Operation'\r\n", [Err("Unknown Protocol Operation")]),
    "sequence": (b'CONNECT {}\r\nPING\r\nSUB a 1\r\nPUB a 1\r\nx\r\nUNSUB 1\r\nPONG\n',
                 [Connect({}), PING, Sub(b"a", None, b"1"), Pub(b"a", None, b"x"),
                  Unsub(b"1", None), PONG]),
}

CLIENT_CASES = {
    "info": (b'INFO {"server_id":"S","max_payload":1048576,"headers":true}\r\n',
             [Info({"server_id": "S", "max_payload": 1048576, "headers": True})]),
    "msg": (b"MSG foo 1 5\r\nhello\r\n", [Msg(b"foo", b"1", None, b"hello")]),
    "msg-reply": (b"MSG foo 1 _INBOX.r 5\r\nhello\r\n", [Msg(b"foo", b"1", b"_INBOX.r", b"hello")]),
    "msg-tabs": (b"MSG\tfoo  \t1\t 5\r\nhello\r\n", [Msg(b"foo", b"1", None, b"hello")]),
    "msg-bare-lf": (b"MSG foo 1 5\nhello\r\n", [Msg(b"foo", b"1", None, b"hello")]),
    "msg-zero": (b"MSG foo 1 0\r\n\r\n", [Msg(b"foo", b"1", None, b"")]),
    "msg-payload-crlf": (b"MSG foo 1 5\r\n+OK\r\n\r\n", [Msg(b"foo", b"1", None, b"+OK\r\n")]),
    "hmsg": (b"HMSG foo 1 %d %d\r\n%shello\r\n" % (len(HDR), len(HDR) + 5, HDR),
             [Msg(b"foo", b"1", None, b"hello", HDR)]),
    "hmsg-reply": (b"HMSG foo 1 r %d %d\r\n%shello\r\n" % (len(HDR), len(HDR) + 5, HDR),
                   [Msg(b"foo", b"1", b"r", b"hello", HDR)]),
    "hmsg-no-responders": (b"HMSG _INBOX.a.b 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
                           [Msg(b"_INBOX.a.b", b"7", None, b"", b"NATS/1.0 503\r\n\r\n")]),
    "ping": (b"PING\r\n", [PING]),
    "pong": (b"PONG\n", [PONG]),
    "ok": (b"+OK\r\n", [OK]),
    "err": (b"-ERR 'Stale Connection'\r\n", [Err("Stale Connection")]),
    "err-bare-lf": (b"-ERR 'Authorization Violation'\n", [Err("Authorization Violation")]),
    "sequence": (b"INFO {}\r\nPING\r\n+OK\r\nMSG a 1 1\r\nx\r\nPONG\r\n",
                 [Info({}), PING, OK, Msg(b"a", b"1", None, b"x"), PONG]),
}


@pytest.mark.parametrize("name", SERVER_CASES)
def test_server_side_operations(name):
    data, expected = SERVER_CASES[name]
    for variant in case_variants(data):
        check_three_ways(variant, expected, SERVER)


@pytest.mark.parametrize("name", CLIENT_CASES)
def test_client_side_operations(name):
    data, expected = CLIENT_CASES[name]
    for variant in case_variants(data):
        check_three_ways(variant, expected, CLIENT)


def test_case_variants_really_change_the_verb():
    assert case_variants(b"PUB foo 0\r\n\r\n") == [
        b"PUB foo 0\r\n\r\n", b"pub foo 0\r\n\r\n", b"pUb foo 0\r\n\r\n"]
    assert case_variants(b"PING\r\n") == [b"PING\r\n", b"ping\r\n", b"pInG\r\n"]
    assert case_variants(b"+OK\r\n")[1] == b"+ok\r\n"


def test_ping_ignores_what_follows_the_verb_as_nats_server_does():
    check_three_ways(b"PING extra\r\nPONG\t\r\n", [PING, PONG], SERVER)


def test_partial_operations_wait_for_their_last_byte():
    parser = Parser(SERVER)
    assert parser.feed(b"PUB foo 5\r\nhell") == []
    assert parser.feed(b"o\r") == []
    assert parser.feed(b"\nPIN") == [Pub(b"foo", None, b"hello")]
    assert parser.feed(b"G") == []
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\n") == [PING]
    assert parser.buffered_bytes == 0


def test_big_payload_in_many_chunks_is_gathered_once():
    payload = bytes(range(256)) * 4000  # ~1 MB
    data = b"PUB big %d\r\n" % len(payload) + payload + b"\r\n"
    parser = Parser(SERVER)
    events: list = []
    for start in range(0, len(data), 1000):
        events += parser.feed(data[start:start + 1000])
        assert parser.buffered_bytes <= len(payload) + 2
    assert events == [Pub(b"big", None, payload)]
    assert parser.buffered_bytes == 0


def test_payload_of_exactly_max_payload_is_accepted():
    check_three_ways(b"PUB foo 10\r\n0123456789\r\n", [Pub(b"foo", None, b"0123456789")],
                     SERVER, max_payload=10)
    hpub = b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"
    check_three_ways(hpub, [Pub(b"foo", None, b"", b"NATS/1.0\r\n\r\n")], SERVER, max_payload=12)


def test_control_line_of_exactly_the_maximum_is_accepted_with_crlf_or_lf():
    subject = b"s" * (MAX_CONTROL_LINE - len(b"SUB  1"))
    line = b"SUB " + subject + b" 1"
    assert len(line) == MAX_CONTROL_LINE
    for ending in (b"\r\n", b"\n"):
        check_three_ways(line + ending, [Sub(subject, None, b"1")], SERVER)


def test_control_line_one_byte_over_the_maximum_is_refused():
    line = b"SUB " + b"s" * (MAX_CONTROL_LINE - len(b"SUB  1") + 1) + b" 1"
    for ending in (b"\r\n", b"\n", b""):
        check_three_ways(line + ending, [MAX_LINE_ERR], SERVER)


def test_smaller_limits_are_honoured():
    check_three_ways(b"SUB " + b"a" * 20 + b" 1\r\n", [MAX_LINE_ERR], SERVER, max_control_line=16)
    check_three_ways(b"PUB a 11\r\n", [MAX_PAYLOAD_ERR], SERVER, max_payload=10)


# -- broken streams --

ERROR_CASES = {
    # side, data, expected events
    "unknown-verb": (SERVER, b"FOO bar\r\n", [UNKNOWN]),
    "unknown-verb-after-ops": (SERVER, b"PING\r\nSUB a 1\r\nFOO\r\nPING\r\n",
                               [PING, Sub(b"a", None, b"1"), UNKNOWN]),
    "empty-line": (SERVER, b"\r\n", [UNKNOWN]),
    "verb-prefix": (SERVER, b"PU foo 1\r\nx\r\n", [UNKNOWN]),
    "msg-from-client": (SERVER, b"MSG foo 1 1\r\nx\r\n", [UNKNOWN]),
    "hmsg-from-client": (SERVER, b"HMSG foo 1 0 0\r\n\r\n", [UNKNOWN]),
    "pub-from-server": (CLIENT, b"PUB foo 1\r\nx\r\n", [UNKNOWN]),
    "sub-from-server": (CLIENT, b"SUB foo 1\r\n", [UNKNOWN]),
    "connect-from-server": (CLIENT, b"CONNECT {}\r\n", [UNKNOWN]),
    # a verb that needs arguments, without any: nats-server's state machine wants a space
    "pub-no-args": (SERVER, b"PUB\r\n", [UNKNOWN]),
    "hpub-no-args": (SERVER, b"HPUB\r\n", [UNKNOWN]),
    "sub-no-args": (SERVER, b"SUB\r\n", [UNKNOWN]),
    "unsub-no-args": (SERVER, b"UNSUB\n", [UNKNOWN]),
    "msg-no-args": (CLIENT, b"MSG\r\n", [UNKNOWN]),
    "hmsg-no-args": (CLIENT, b"HMSG\r\n", [UNKNOWN]),
    # wrong argument counts: nats-server closes without -ERR
    "pub-1-arg": (SERVER, b"PUB foo\r\n", [SILENT]),
    "pub-4-args": (SERVER, b"PUB a b c 1\r\nx\r\n", [SILENT]),
    "hpub-2-args": (SERVER, b"HPUB foo 5\r\nhello\r\n", [SILENT]),
    "hpub-5-args": (SERVER, b"HPUB a b c 0 0\r\n\r\n", [SILENT]),
    "sub-1-arg": (SERVER, b"SUB foo\r\n", [SILENT]),
    "sub-4-args": (SERVER, b"SUB a b c d\r\n", [SILENT]),
    "unsub-3-args": (SERVER, b"UNSUB 1 2 3\r\n", [SILENT]),
    "msg-2-args": (CLIENT, b"MSG foo 5\r\nhello\r\n", [SILENT]),
    "msg-5-args": (CLIENT, b"MSG a b c d 1\r\nx\r\n", [SILENT]),
    "hmsg-3-args": (CLIENT, b"HMSG a 1 0\r\n\r\n", [SILENT]),
    "hmsg-6-args": (CLIENT, b"HMSG a 1 r x 0 0\r\n\r\n", [SILENT]),
    # bad sizes: silent as well
    "pub-size-not-a-number": (SERVER, b"PUB foo five\r\n", [SILENT]),
    "pub-size-negative": (SERVER, b"PUB foo -1\r\n", [SILENT]),
    "pub-size-plus": (SERVER, b"PUB foo +1\r\nx\r\n", [SILENT]),
    "pub-size-ten-digits": (SERVER, b"PUB foo 0000000001\r\nx\r\n", [SILENT]),
    "hpub-header-larger-than-total": (SERVER, b"HPUB foo 6 5\r\n", [SILENT]),
    "hpub-header-size-bad": (SERVER, b"HPUB foo x 5\r\n", [SILENT]),
    "msg-size-bad": (CLIENT, b"MSG foo 1 x\r\n", [SILENT]),
    "hmsg-header-larger-than-total": (CLIENT, b"HMSG foo 1 3 2\r\n", [SILENT]),
    # the payload must be followed by exactly CRLF
    "pub-payload-too-long": (SERVER, b"PUB foo 3\r\nabcde\r\n", [UNKNOWN]),
    "pub-payload-then-bare-lf": (SERVER, b"PUB foo 3\r\nabc\nX", [UNKNOWN]),
    "pub-zero-payload-then-junk": (SERVER, b"PUB foo 0\r\nX\r\n", [UNKNOWN]),
    "pub-payload-then-lf-cr": (SERVER, b"PUB foo 1\r\nx\n\r", [UNKNOWN]),
    "hpub-payload-too-long": (SERVER, b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\nXX\r\n", [UNKNOWN]),
    "msg-payload-too-long": (CLIENT, b"MSG foo 1 1\r\nxy\r\n", [UNKNOWN]),
    "good-pub-then-bad-pub": (SERVER, b"PUB a 1\r\nx\r\nPUB a 1\r\nxy\r\n",
                              [Pub(b"a", None, b"x"), UNKNOWN]),
    # payload larger than max_payload (HPUB: the total counts)
    "pub-over-max-payload": (SERVER, b"PUB foo %d\r\n" % (MAX_PAYLOAD + 1), [MAX_PAYLOAD_ERR]),
    "pub-reply-over-max-payload": (SERVER, b"PUB foo r 999999999\r\n", [MAX_PAYLOAD_ERR]),
    "hpub-over-max-payload": (SERVER, b"HPUB foo 10 %d\r\n" % (MAX_PAYLOAD + 1), [MAX_PAYLOAD_ERR]),
    "msg-over-max-payload": (CLIENT, b"MSG foo 1 %d\r\n" % (MAX_PAYLOAD + 1), [MAX_PAYLOAD_ERR]),
    # control line longer than max_control_line, with and without a line end
    "long-line-crlf": (SERVER, b"PUB " + b"a" * 5000 + b" 1\r\nx\r\n", [MAX_LINE_ERR]),
    "long-line-lf": (SERVER, b"SUB " + b"a" * 5000 + b" 1\n", [MAX_LINE_ERR]),
    "long-line-no-end": (SERVER, b"SUB " + b"a" * 5000, [MAX_LINE_ERR]),
    "long-garbage-no-end": (SERVER, b"x" * (MAX_CONTROL_LINE + 1), [MAX_LINE_ERR]),
    "long-connect": (SERVER, b'CONNECT {"name":"' + b"n" * 5000 + b'"}\r\n', [MAX_LINE_ERR]),
    "long-line-client": (CLIENT, b"MSG " + b"a" * 5000 + b" 1 1\r\nx\r\n", [MAX_LINE_ERR]),
    # CONNECT (and INFO) must carry a JSON object: nats-server closes silently
    "connect-bad-json": (SERVER, b"CONNECT {not json}\r\n", [SILENT]),
    "connect-truncated-json": (SERVER, b'CONNECT {"verbose":\r\n', [SILENT]),
    "connect-json-array": (SERVER, b"CONNECT [1,2]\r\n", [SILENT]),
    "connect-json-string": (SERVER, b'CONNECT "x"\r\n', [SILENT]),
    "connect-not-utf8": (SERVER, b"CONNECT {\"a\":\"\xff\xfe\"}\r\n", [SILENT]),
    "info-bad-json": (CLIENT, b"INFO {\r\n", [SILENT]),
}


@pytest.mark.parametrize("name", ERROR_CASES)
def test_broken_streams(name):
    side, data, expected = ERROR_CASES[name]
    check_three_ways(data, expected, side)


def test_violation_carries_err_text_and_detail():
    [violation] = Parser(SERVER).feed(b"PUB foo 2000000\r\n")
    assert violation.err_text == "Maximum Payload Violation"
    assert violation.fatal is True
    assert violation.detail  # says what was wrong, for the log
    assert errors.err_line(violation.err_text) == b"-ERR 'Maximum Payload Violation'\r\n"


def test_parser_is_dead_after_a_violation():
    parser = Parser(SERVER)
    assert parser.feed(b"PING\r\nBOGUS\r\nPING\r\n") == [PING, UNKNOWN]
    assert parser.dead
    assert parser.buffered_bytes == 0
    for more in (b"PING\r\n", b"PUB a 1\r\nx\r\n", b"x" * 10000, b""):
        assert parser.feed(more) == []
    assert parser.buffered_bytes == 0


def test_parser_is_dead_after_a_violation_inside_a_payload():
    parser = Parser(SERVER)
    assert parser.feed(b"PUB a 3\r\nab") == []
    assert parser.feed(b"cXY") == [UNKNOWN]
    assert parser.feed(b"\r\nPING\r\n") == []


def test_side_must_be_known():
    with pytest.raises(ValueError):
        Parser("middle")


def test_event_types_are_the_documented_ones():
    events = Parser(SERVER).feed(b"PING\r\nPONG\r\n+OK\r\n-ERR 'x'\r\n")
    assert [type(e) for e in events] == [Ping, Pong, Ok, Err]
    assert events[3].text == "x"


def test_err_without_quotes_or_text():
    assert Parser(CLIENT).feed(b"-ERR\r\n-ERR plain words\r\n") == [Err(""), Err("plain words")]


# -- hypothesis: (a) robustness on garbage, (b) round trips of valid streams --

SMALL = {"max_control_line": 64, "max_payload": 128}
SLACK = 8

FRAGMENTS = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"PUB ", b"pub ", b"HPUB ", b"SUB ", b"UNSUB ", b"MSG ", b"HMSG ",
                     b"CONNECT ", b"INFO ", b"PING", b"PONG", b"+OK", b"-ERR ", b"\r\n",
                     b"\n", b"\r", b" ", b"\t", b"0", b"5", b"12", b"129", b"999999999",
                     b"foo", b"{}", b'{"a":1}', b"NATS/1.0\r\n\r\n", b"x" * 70,
                     b"PUB x 1\r\nx\r\n", b"MSG x 1 1\r\nx\r\n", b"HPUB x 12 12\r\n",
                     b"HMSG x 1 12 13\r\n", b"SUB x 1\r\n"]),
)


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side=st.sampled_from([SERVER, CLIENT]), pieces=st.lists(FRAGMENTS, max_size=30),
       cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=20))
def test_fuzz_garbage_never_raises_and_stays_bounded(side, pieces, cuts):
    data = b"".join(pieces)
    parser = Parser(side, **SMALL)
    events: list = []
    for chunk in _chunked(data, cuts):
        out = parser.feed(chunk)
        assert isinstance(out, list)
        if parser.dead and events and isinstance(events[-1], ProtocolViolation):
            assert out == []
        events += out
        assert parser.buffered_bytes <= SMALL["max_control_line"] + SMALL["max_payload"] + SLACK
    known = (Connect, Info, Pub, Sub, Unsub, Msg, Ping, Pong, Ok, Err, ProtocolViolation)
    assert all(isinstance(event, known) for event in events)
    violations = [i for i, e in enumerate(events) if isinstance(e, ProtocolViolation)]
    assert violations in ([], [len(events) - 1])
    assert parser.dead == bool(violations)
    # however the stream is cut, the same events come out
    assert feed_whole(data, side, **SMALL) == events


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_fuzz_random_bytes_default_limits(data, cuts):
    parser = Parser(SERVER)
    events: list = []
    for chunk in _chunked(data, cuts):
        events += parser.feed(chunk)
        assert parser.buffered_bytes <= MAX_CONTROL_LINE + MAX_PAYLOAD + SLACK
    assert events == feed_whole(data, SERVER)


def test_buffer_stays_bounded_under_an_endless_line():
    parser = Parser(SERVER)
    for _ in range(100):
        parser.feed(b"y" * 100)
        assert parser.buffered_bytes <= MAX_CONTROL_LINE + 1
    assert parser.dead


TOKEN = st.binary(min_size=1, max_size=12).filter(
    lambda b: not any(c in b" \t\r\n\x0b\x0c" for c in b))
MAYBE_TOKEN = st.one_of(st.none(), TOKEN)
PAYLOAD = st.binary(max_size=300)
HEADER_BLOCK = st.builds(
    build_headers,
    st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True),
                       st.from_regex(r"[ -~]{0,10}", fullmatch=True).map(str.strip)),
             max_size=3),
    st.one_of(st.none(), st.sampled_from(["503", "408", "100"])))
JSON_OBJECT = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.booleans(), st.integers(-10**9, 10**9), st.text(max_size=10), st.none()),
    max_size=5)
ERR_TEXT = st.from_regex(r"[!-&(-~]([ -&(-~]{0,30}[!-&(-~])?", fullmatch=True)


def _op(wire: bytes, event) -> tuple[bytes, object]:
    return wire, event


SERVER_OPS = st.one_of(
    st.builds(lambda o: _op(writer.connect(o), Connect(o)), JSON_OBJECT),
    st.builds(lambda o: _op(writer.info(o), Info(o)), JSON_OBJECT),
    st.builds(lambda s, r, p: _op(writer.pub(s, r, p), Pub(s, r, p)), TOKEN, MAYBE_TOKEN, PAYLOAD),
    st.builds(lambda s, r, h, p: _op(writer.hpub(s, r, h, p), Pub(s, r, p, h)),
              TOKEN, MAYBE_TOKEN, HEADER_BLOCK, PAYLOAD),
    st.builds(lambda s, q, i: _op(writer.sub(s, i, q), Sub(s, q, i)), TOKEN, MAYBE_TOKEN, TOKEN),
    st.builds(lambda i, m: _op(writer.unsub(i, m), Unsub(i, m)), TOKEN,
              st.one_of(st.none(), st.integers(0, 999999999))),
    st.just((writer.PING, PING)), st.just((writer.PONG, PONG)), st.just((writer.OK, OK)),
    st.builds(lambda t: _op(writer.err(t), Err(t)), ERR_TEXT),
)

CLIENT_OPS = st.one_of(
    st.builds(lambda o: _op(writer.info(o), Info(o)), JSON_OBJECT),
    st.builds(lambda s, i, r, p: _op(writer.msg(s, i, r, p), Msg(s, i, r, p)),
              TOKEN, TOKEN, MAYBE_TOKEN, PAYLOAD),
    st.builds(lambda s, i, r, h, p: _op(writer.hmsg(s, i, r, h, p), Msg(s, i, r, p, h)),
              TOKEN, TOKEN, MAYBE_TOKEN, HEADER_BLOCK, PAYLOAD),
    st.just((writer.PING, PING)), st.just((writer.PONG, PONG)), st.just((writer.OK, OK)),
    st.builds(lambda t: _op(writer.err(t), Err(t)), ERR_TEXT),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side=st.sampled_from([SERVER, CLIENT]), data=st.data(),
       cuts=st.lists(st.integers(min_value=0, max_value=20000), max_size=40))
def test_fuzz_written_ops_parse_back_in_any_chunking(side, data, cuts):
    ops = data.draw(st.lists(SERVER_OPS if side == SERVER else CLIENT_OPS, max_size=25))
    stream = b"".join(wire for wire, _ in ops)
    parser = Parser(side)
    events: list = []
    for chunk in _chunked(stream, cuts):
        events += parser.feed(chunk)
    assert events == [event for _, event in ops]
    assert parser.buffered_bytes == 0
    assert not parser.dead


def test_writer_output_is_what_the_parser_reads_for_connect_json():
    options = {"verbose": False, "name": "café", "protocol": 1}
    [event] = Parser(SERVER).feed(writer.connect(options))
    assert event == Connect(options)
    assert json.loads(writer.connect(options)[8:]) == options
