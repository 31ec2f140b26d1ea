"""The outgoing side of the NATS protocol, header blocks, and subject rules.

writer.py: exact bytes of every operation (reference §1.2). headers.py: the
`NATS/1.0` block (§1.5), including the 16-byte no-responders block (§1.9).
subjects.py: validity and wildcard matching (§1.6).
"""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.protocol.nats import errors, writer
from broker.protocol.nats.headers import (NO_RESPONDERS, VERSION_LINE, HeaderError,
                                          build_headers, parse_headers)
from broker.protocol.nats.subjects import (is_literal, is_valid_publish_subject,
                                           is_valid_subscription_subject, matches)

# -- writer --


@pytest.mark.parametrize("produced, expected", [
    (writer.PING, b"PING\r\n"),
    (writer.PONG, b"PONG\r\n"),
    (writer.OK, b"+OK\r\n"),
    (writer.info({"server_id": "N1", "proto": 1, "headers": True}),
     b'INFO {"server_id":"N1","proto":1,"headers":true}\r\n'),
    (writer.connect({"verbose": False, "name": "x"}), b'CONNECT {"verbose":false,"name":"x"}\r\n'),
    (writer.err("Invalid Subject"), b"-ERR 'Invalid Subject'\r\n"),
    (writer.msg(b"foo.bar", b"7", None, b"hello"), b"MSG foo.bar 7 5\r\nhello\r\n"),
    (writer.msg(b"foo", b"7", b"_INBOX.r", b"hi"), b"MSG foo 7 _INBOX.r 2\r\nhi\r\n"),
    (writer.msg(b"foo", b"7", b"", b""), b"MSG foo 7 0\r\n\r\n"),
    (writer.hmsg(b"foo", b"1", None, b"NATS/1.0\r\n\r\n", b"hey"),
     b"HMSG foo 1 12 15\r\nNATS/1.0\r\n\r\nhey\r\n"),
    (writer.hmsg(b"_INBOX.a.b", b"3", None, NO_RESPONDERS, b""),
     b"HMSG _INBOX.a.b 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"),
    (writer.hmsg(b"foo", b"1", b"r", b"NATS/1.0\r\n\r\n", b""),
     b"HMSG foo 1 r 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    (writer.pub(b"foo", None, b"hello"), b"PUB foo 5\r\nhello\r\n"),
    (writer.pub(b"foo", b"bar", b""), b"PUB foo bar 0\r\n\r\n"),
    (writer.pub(b"foo", b"", b"x"), b"PUB foo 1\r\nx\r\n"),
    (writer.hpub(b"foo", None, b"NATS/1.0\r\n\r\n", b"ab"),
     b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nab\r\n"),
    (writer.hpub(b"foo", b"r", b"NATS/1.0\r\n\r\n", b""),
     b"HPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    (writer.sub(b"foo.*", b"1"), b"SUB foo.* 1\r\n"),
    (writer.sub(b"foo.>", b"2", b"q"), b"SUB foo.> q 2\r\n"),
    (writer.unsub(b"1"), b"UNSUB 1\r\n"),
    (writer.unsub(b"1", 0), b"UNSUB 1 0\r\n"),
    (writer.unsub(b"1", 10), b"UNSUB 1 10\r\n"),
])
def test_writer_exact_bytes(produced, expected):
    assert produced == expected


@pytest.mark.parametrize("text", [
    errors.UNKNOWN_PROTOCOL_OPERATION, errors.AUTHORIZATION_VIOLATION,
    errors.AUTHENTICATION_TIMEOUT, errors.MAXIMUM_PAYLOAD_VIOLATION,
    errors.MAX_CONTROL_LINE_EXCEEDED, errors.STALE_CONNECTION, errors.INVALID_CLIENT_PROTOCOL,
    errors.NO_RESPONDERS_REQUIRES_HEADERS, errors.MAXIMUM_CONNECTIONS_EXCEEDED,
    errors.INVALID_SUBJECT, errors.INVALID_PUBLISH_SUBJECT, errors.MAXIMUM_SUBSCRIPTIONS_EXCEEDED,
])
def test_error_texts_are_the_reference_ones(text):
    # §1.11, transcribed independently of errors.py
    reference = {
        "Unknown Protocol Operation", "Authorization Violation", "Authentication Timeout",
        "Maximum Payload Violation", "maximum control line exceeded", "Stale Connection",
        "invalid client protocol", "no responders requires headers support",
        "maximum connections exceeded", "Invalid Subject", "Invalid Publish Subject",
        "maximum subscriptions exceeded",
    }
    assert text in reference
    assert writer.err(text) == b"-ERR '" + text.encode() + b"'\r\n"


# -- headers --


def test_no_responders_block_is_16_bytes():
    assert NO_RESPONDERS == b"NATS/1.0 503\r\n\r\n"
    assert len(NO_RESPONDERS) == 16
    assert parse_headers(NO_RESPONDERS) == ("503", None, [])


@pytest.mark.parametrize("block, parsed", [
    (b"NATS/1.0\r\n\r\n", (None, None, [])),
    (b"NATS/1.0\r\nFoo: bar\r\n\r\n", (None, None, [("Foo", "bar")])),
    (b"NATS/1.0\r\nfoo: 1\r\nFOO: 2\r\nfoo: 3\r\n\r\n",
     (None, None, [("foo", "1"), ("FOO", "2"), ("foo", "3")])),
    (b"NATS/1.0\r\nUrl: http://x:80/\r\n\r\n", (None, None, [("Url", "http://x:80/")])),
    (b"NATS/1.0\r\nEmpty:\r\n\r\n", (None, None, [("Empty", "")])),
    (b"NATS/1.0 408 Request Timeout\r\n\r\n", ("408", "Request Timeout", [])),
    (b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 5\r\n\r\n",
     ("100", "Idle Heartbeat", [("Nats-Last-Consumer", "5")])),
])
def test_parse_headers(block, parsed):
    assert parse_headers(block) == parsed


@pytest.mark.parametrize("block", [
    b"", b"NATS/1.0", b"NATS/1.0\r\n", b"NATS/2.0\r\n\r\n", b"HTTP/1.1\r\n\r\n",
    b"NATS/1.0\r\nno colon\r\n\r\n", b"NATS/1.0\r\n: no name\r\n\r\n",
    b"NATS/1.0 5x3\r\n\r\n", b"NATS/1.0 5030\r\n\r\n", b"NATS/1.0\r\n\r\nFoo: bar\r\n\r\n",
    b"NATS/1.0\r\nK\xff: v\r\n\r\n", b"NATS/1.0\r\nK: \xc3\x28\r\n\r\n",
])
def test_parse_headers_refuses_malformed_blocks(block):
    with pytest.raises(HeaderError):
        parse_headers(block)


def test_build_headers():
    assert build_headers([]) == b"NATS/1.0\r\n\r\n"
    assert build_headers([("A", "1"), ("a", "2")]) == b"NATS/1.0\r\nA: 1\r\na: 2\r\n\r\n"
    assert build_headers([], "503") == NO_RESPONDERS
    assert build_headers([("K", "v")], "408", "Request Timeout") == (
        b"NATS/1.0 408 Request Timeout\r\nK: v\r\n\r\n")
    assert build_headers([]).startswith(VERSION_LINE)


NAME = st.from_regex(r"[!-9;-~]{1,12}", fullmatch=True)  # printable, no ':' or space
VALUE = st.from_regex(r"([!-~]([ -~]{0,20}[!-~])?)?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(NAME, VALUE), max_size=6),
       status=st.one_of(st.none(), st.from_regex(r"[1-5][0-9][0-9]", fullmatch=True)),
       description=st.one_of(st.none(), st.from_regex(r"[A-Za-z]+( [A-Za-z]+)?", fullmatch=True)))
def test_headers_round_trip(pairs, status, description):
    block = build_headers(pairs, status, description)
    assert parse_headers(block) == (status, description if status else None, pairs)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80).map(lambda b: VERSION_LINE + b))
def test_parse_headers_raises_only_header_error(block):
    try:
        parse_headers(block)
    except HeaderError:
        pass


# -- subjects --

VALID_SUBSCRIPTIONS = [b"foo", b"foo.bar", b"*", b">", b"foo.*", b"foo.>", b"*.bar.>",
                       b"foo*.bar", b"foo>", b"f>o.*", b"_INBOX.abc.*", b"\xc3\xa9t\xc3\xa9.x",
                       b"a.*.c.>", b"*.*.*"]
INVALID_SUBSCRIPTIONS = [b"", b".", b".foo", b"foo.", b"foo..bar", b"foo.>.bar", b">.foo",
                         b"foo bar", b"foo\tbar", b"foo\r", b"foo\n.bar", b"a.>.>", b".>"]


@pytest.mark.parametrize("subject", VALID_SUBSCRIPTIONS)
def test_valid_subscription_subjects(subject):
    assert is_valid_subscription_subject(subject)


@pytest.mark.parametrize("subject", INVALID_SUBSCRIPTIONS)
def test_invalid_subscription_subjects(subject):
    assert not is_valid_subscription_subject(subject)
    assert not is_valid_publish_subject(subject)


@pytest.mark.parametrize("subject, literal", [
    (b"foo", True), (b"foo.bar", True), (b"foo*.bar", True), (b"foo>", True), (b"a.b*c", True),
    (b"*", False), (b">", False), (b"foo.*", False), (b"foo.>", False), (b"*.foo", False),
])
def test_publish_subjects_are_literal(subject, literal):
    assert is_literal(subject) == literal
    assert is_valid_publish_subject(subject) == literal


@pytest.mark.parametrize("pattern, subject, expected", [
    (b"foo", b"foo", True),
    (b"foo", b"Foo", False),  # case-sensitive
    (b"foo", b"foo.bar", False),
    (b"foo.bar", b"foo", False),
    (b"foo.*", b"foo.bar", True),
    (b"foo.*", b"foo", False),
    (b"foo.*", b"foo.bar.baz", False),
    (b"*.bar", b"foo.bar", True),
    (b"*", b"foo", True),
    (b"*", b"foo.bar", False),
    (b"foo.>", b"foo.bar", True),
    (b"foo.>", b"foo.bar.baz", True),
    (b"foo.>", b"foo", False),  # '>' matches one or more tokens, never zero
    (b">", b"foo", True),
    (b">", b"foo.bar.baz", True),
    (b"*.>", b"foo", False),
    (b"*.>", b"foo.bar", True),
    (b"foo*.bar", b"foo*.bar", True),  # a literal, not a wildcard
    (b"foo*.bar", b"fooX.bar", False),
    (b"foo>", b"foo.bar", False),
    (b"foo>", b"foo>", True),
    (b"a.*.c.>", b"a.b.c.d.e", True),
    (b"a.*.c.>", b"a.b.c", False),
    (b"a.*.c.>", b"a.b.x.d", False),
])
def test_matches(pattern, subject, expected):
    assert matches(pattern, subject) == expected


def _reference_matches(pattern: bytes, subject: bytes) -> bool:
    parts = []
    for token in pattern.split(b"."):
        if token == b"*":
            parts.append(rb"[^.]+")
        elif token == b">":
            parts.append(rb".+")
        else:
            parts.append(re.escape(token))
    return re.fullmatch(rb"\.".join(parts), subject) is not None


LITERAL_TOKEN = st.sampled_from([b"a", b"b", b"ab", b"a*", b">b"])
PATTERN_TOKEN = st.one_of(LITERAL_TOKEN, st.just(b"*"))
PATTERNS = st.builds(
    lambda tokens, tail: b".".join(tokens + ([b">"] if tail else [])),
    st.lists(PATTERN_TOKEN, min_size=0, max_size=4), st.booleans()).filter(bool)
SUBJECTS = st.lists(LITERAL_TOKEN, min_size=1, max_size=5).map(b".".join)


@settings(max_examples=500, deadline=None)
@given(pattern=PATTERNS, subject=SUBJECTS)
def test_matches_agrees_with_a_regex_reference(pattern, subject):
    assert is_valid_subscription_subject(pattern)
    assert is_valid_publish_subject(subject)
    assert matches(pattern, subject) == _reference_matches(pattern, subject)
    assert matches(subject, subject)
