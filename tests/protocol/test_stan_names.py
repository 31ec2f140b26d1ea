"""STAN name rules (reference §2.17) and subject map (§2.2)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.protocol.stan import names

# --- client ID: ^[a-zA-Z0-9_-]+$ -------------------------------------------------------

@pytest.mark.parametrize("client_id", [
    "me", "a", "Z", "0", "-", "_", "my-client_01", "ABCxyz789", "a" * 1000, "--__--"])
def test_valid_client_ids(client_id):
    assert names.is_valid_client_id(client_id)


@pytest.mark.parametrize("client_id", [
    "", "a.b", "a:b", "a b", " a", "a ", "a\n", "\na", "a\t", "a\x00", "é", "clientÅ",
    "a*", "a>", "a/b", "a+b", "a@b", "a,b", "١٢", "ａ"])
def test_invalid_client_ids(client_id):
    assert not names.is_valid_client_id(client_id)


@given(st.text(alphabet=st.sampled_from("aZ09_-. :\n*é"), max_size=8))
def test_client_id_is_exactly_the_regex(client_id):
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    assert names.is_valid_client_id(client_id) == (bool(client_id) and set(client_id) <= allowed)


# --- channel names: IsChannelNameValid(name, false) -------------------------------------

def go_is_channel_name_valid(channel: str, wildcards_allowed: bool) -> bool:
    """Line-by-line transliteration of nats-streaming-server util.IsChannelNameValid."""
    if channel == "" or channel[0] == ".":
        return False
    for i, c in enumerate(channel):
        if c == "/":
            return False
        if c == "." and (i == len(channel) - 1 or channel[i + 1] == "."):
            return False
        if not wildcards_allowed:
            if c in "*>":
                return False
        elif c in "*>":
            if i > 0 and channel[i - 1] != ".":
                return False
            if c == ">" and i != len(channel) - 1:
                return False
            if i < len(channel) - 1 and channel[i + 1] != ".":
                return False
    return True


@pytest.mark.parametrize("channel", [
    "foo", "foo.bar", "a.b.c", "Foo", "a-b_c", "$x", "a:b", "_STAN.x", "é.ü", "x" * 1000,
    "a b",  # spaces pass here, as in the Go server; core NATS refuses them earlier
])
def test_valid_channels(channel):
    assert names.is_valid_channel(channel)


@pytest.mark.parametrize("channel", [
    "",                                  # empty
    ".", ".foo", "foo.", "..",           # leading / trailing separator
    "foo..bar", "a...b",                 # empty token
    "a/b", "/", "/foo", "foo/",          # slash (file store directories)
    "*", ">", "foo.*", "foo.>", "*.foo", # wildcard tokens
    "f*o", "fo>", "a.b*", ">a", "a.>b",  # wildcards inside a token
])
def test_invalid_channels(channel):
    assert not names.is_valid_channel(channel)


@pytest.mark.parametrize("pattern", [
    "foo", "foo.*", "foo.>", "*", ">", "*.bar", "*.*.>", "a.*.c", "foo.bar.>"])
def test_valid_channel_patterns(pattern):
    assert names.is_valid_channel_pattern(pattern)


@pytest.mark.parametrize("pattern", [
    "", ".", ".foo", "foo.", "a..b", "a/b", "foo.*/", "foo.>.bar", ">.a", "f*", "*f",
    "foo.b>", "**", ">>", ".>", "*.", "> ", "a.*b.c"])
def test_invalid_channel_patterns(pattern):
    assert not names.is_valid_channel_pattern(pattern)


@given(st.text(alphabet=st.sampled_from("ab.*>/ "), max_size=10))
def test_channel_rules_match_the_go_function(channel):
    assert names.is_valid_channel(channel) == go_is_channel_name_valid(channel, False)
    assert names.is_valid_channel_pattern(channel) == go_is_channel_name_valid(channel, True)


# --- durable and queue names -------------------------------------------------------------

@pytest.mark.parametrize("durable_name, ok", [
    ("dur", True), ("", True), ("a.b-c d", True), ("a:b", False), (":", False),
    ("dur:", False)])
def test_durable_queue_name_rule(durable_name, ok):
    assert names.is_valid_durable_queue_name(durable_name) is ok


def test_durable_queue_group_name():
    assert names.durable_queue_name("dur", "group") == "dur:group"


# --- channel case ------------------------------------------------------------------------

@pytest.mark.parametrize("channel, key", [
    ("foo", "foo"), ("Foo", "foo"), ("FOO.Bar", "foo.bar"), ("ÄB", "äb"),
    ("ΑΣ", "ασ"),  # Go maps rune by rune: no final sigma
    ("İx", "ix"),  # Go's unicode.ToLower('İ') is 'i'; Python's lower() gives two runes
])
def test_channel_case_key_is_go_to_lower(channel, key):
    assert names.channel_case_key(channel) == key


# --- subject map -------------------------------------------------------------------------

def test_subject_map_defaults():
    cid = "test-cluster"
    assert names.discover_subject(cid) == "_STAN.discover.test-cluster"
    assert names.pings_subject(cid) == "_STAN.discover.test-cluster.pings"
    assert names.pub_prefix(cid) == "_STAN.pub.test-cluster"
    assert names.sub_subject(cid) == "_STAN.sub.test-cluster"
    assert names.unsub_subject(cid) == "_STAN.unsub.test-cluster"
    assert names.subclose_subject(cid) == "_STAN.subclose.test-cluster"
    assert names.close_subject(cid) == "_STAN.close.test-cluster"


def test_discover_prefix_is_configurable():
    assert names.discover_subject("c", prefix="my.disc") == "my.disc.c"
    assert names.pings_subject("c", prefix="my.disc") == "my.disc.c.pings"


def test_publish_subjects():
    prefix = names.pub_prefix("test-cluster")
    assert names.pub_subject(prefix, "foo.bar") == "_STAN.pub.test-cluster.foo.bar"
    assert names.pub_wildcard(prefix) == "_STAN.pub.test-cluster.>"
    # A recovered server reuses persisted prefixes such as _STAN.pub.<nuid>.
    assert names.pub_subject("_STAN.pub.pLyMpEyg", "foo") == "_STAN.pub.pLyMpEyg.foo"
