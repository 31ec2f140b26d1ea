"""STAN error texts (reference §2.18) and Go's %q quoting."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from broker.protocol.stan import errors

REFERENCE = Path("/work/shared/reference/STAN_REFERENCE.md")
_CODE = re.compile(r"`` (.+?) ``|`([^`]+)`")  # ``a `b` c`` or `abc`


def _constants() -> set[str]:
    return {value for name, value in vars(errors).items()
            if name.isupper() and not name.startswith("_")}


def test_some_strings_literally():
    assert errors.INVALID_CLIENT_ID == (
        "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed")
    assert errors.INVALID_DURABLE_QUEUE_NAME == (
        "stan: durable name of a durable queue subscriber can't contain the character ':'")
    assert errors.TOO_MANY_CHANNELS == "too many channels"
    assert errors.CLIENT_REPLACED == "client has been replaced or is no longer registered"
    assert errors.CONNECT_REQUEST_TIMEOUT == (
        "stan: connect request timeout (possibly wrong cluster ID?)")


def test_channel_case_conflict():
    assert errors.channel_case_conflict("Foo", "foo") == (
        'rejecting channel "Foo" because channel "foo" alreay exists '
        "(different cases not allowed)")
    assert errors.channel_case_conflict('a"b', "A\\B") == (
        'rejecting channel "a\\"b" because channel "A\\\\B" alreay exists '
        "(different cases not allowed)")


def _reference_strings() -> list[str]:
    text = REFERENCE.read_text(encoding="utf-8")
    section = text[text.index("### 2.18"):text.index("### 2.19")]
    found = []
    for line in section.splitlines():
        if line.startswith(("| `", "* `")):  # first column of a table, or a bullet
            match = _CODE.match(line[2:])
            found.append(match.group(1) or match.group(2))
    return found


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference not available")
def test_every_reference_string_is_here_exactly():
    strings = _reference_strings()
    assert len(strings) >= 36
    known = _constants() | {errors._CHANNEL_CASE_CONFLICT.replace("%s", "%q")}
    missing = [s for s in strings if s not in known]
    assert not missing


@pytest.mark.parametrize("text, quoted", [
    ("foo", '"foo"'),
    ("", '""'),
    ("a b", '"a b"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
    ("\x80\x9f", '"\\u0080\\u009f"'),
    ("é€😀", '"é€😀"'),
    ("\u00a0", '"\\u00a0"'),          # non-ASCII space: not printable in Go
    ("\u200b\u00ad", '"\\u200b\\u00ad"'),  # format characters
    ("\ue000", '"\\ue000"'),          # private use
    ("\U0010ffff", '"\\U0010ffff"'),  # noncharacter
    ("\ud800", '"\\ufffd"'),          # lone surrogate: invalid rune
])
def test_go_quote_matches_strconv_quote(text, quoted):
    assert errors.go_quote(text) == quoted
