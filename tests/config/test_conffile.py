"""The NATS configuration format (reference §4.4)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.config.conffile import ConfMap, SizeInt, file_value, parse_file, parse_text
from broker.config.flags import ConfigError

REFERENCE_EXAMPLE = """\
port: 4222
http: 8222
streaming {
  id: mycluster
  store: file
  dir: /data/stan
  hb_interval: "10s"
  store_limits {
    max_channels: 10
    max_msgs: 10000
    channels { "foo.>": { max_msgs: 400 }, "temp.>": { max_inactivity: "1h" } }
  }
  cluster { node_id: "a", peers: ["b","c"] }
}
"""


def parse(text: str, **env: str) -> ConfMap:
    return parse_text(text, "test.conf", env)


def error_of(text: str, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, **env)
    return info.value


def test_reference_example_verbatim():
    assert parse(REFERENCE_EXAMPLE) == {
        "port": 4222, "http": 8222,
        "streaming": {
            "id": "mycluster", "store": "file", "dir": "/data/stan", "hb_interval": "10s",
            "store_limits": {"max_channels": 10, "max_msgs": 10000,
                             "channels": {"foo.>": {"max_msgs": 400},
                                          "temp.>": {"max_inactivity": "1h"}}},
            "cluster": {"node_id": "a", "peers": ["b", "c"]}}}


@pytest.mark.parametrize("text", ["a: 1", "a = 1", "a 1", "a:1", "a=1", "  a \t:\t 1  ",
                                  "a: 1;", "a: 1,", "\ufeffa: 1"])
def test_key_value_separators(text):
    assert parse(text) == {"a": 1}


def test_entries_separated_by_newlines_commas_and_semicolons():
    assert parse("a: 1, b: 2; c: 3\nd: 4\r\ne: 5") == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}


def test_maps_nest_with_or_without_separator():
    text = "a { b: { c = 1 }\n d { } }\ne: {x: 1, y: 2}"
    assert parse(text) == {"a": {"b": {"c": 1}, "d": {}}, "e": {"x": 1, "y": 2}}


def test_arrays():
    text = 'a: [1, 2, 3]\nb [\n  "x"\n  y,\n  z\n]\nc: []\nd: [1, [2, {e: 3}],]\n'
    assert parse(text) == {"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [],
                           "d": [1, [2, {"e": 3}]]}


def test_comments():
    text = ("# a comment\n// another\na: 1 # after a value\nb: 2 // after a value\n"
            "c { # in a map\n d: 3 // here too\n}\ne: [1, # in an array\n 2]\n")
    assert parse(text) == {"a": 1, "b": 2, "c": {"d": 3}, "e": [1, 2]}


def test_comment_markers_inside_values_are_text():
    text = 'url: nats://host:4222\npass: abc#def\nq: "# not a comment"\n'
    assert parse(text) == {"url": "nats://host:4222", "pass": "abc#def", "q": "# not a comment"}


def test_strings():
    text = ('a: "quoted \\"x\\"\\t\\n\\\\ \\u00e9\\U0001F600"\n'
            "b: 'raw \\n $x'\nc: bare-string.with/chars\nd: \"\"\ne: '127.0.0.1:4222'\n"
            "f: 127.0.0.1:4222\ng: /data/stan\n")
    assert parse(text) == {"a": 'quoted "x"\t\n\\ \u00e9\U0001F600', "b": "raw \\n $x",
                           "c": "bare-string.with/chars", "d": "", "e": "127.0.0.1:4222",
                           "f": "127.0.0.1:4222", "g": "/data/stan"}


def test_numbers():
    result = parse("a: 42\nb: -7\nc: 1.5\nd: -0.25\ne: 0\nf: 007\ng: 1e5\n")
    assert result == {"a": 42, "b": -7, "c": 1.5, "d": -0.25, "e": 0, "f": 7, "g": "1e5"}
    assert type(result["a"]) is int and type(result["c"]) is float


@pytest.mark.parametrize("word, value", [("true", True), ("TRUE", True), ("yes", True),
                                         ("on", True), ("On", True), ("false", False),
                                         ("no", False), ("off", False), ("OFF", False)])
def test_booleans(word, value):
    assert parse(f"a: {word}")["a"] is value


def test_quoted_boolean_stays_a_string():
    assert parse('a: "true"') == {"a": "true"}


@pytest.mark.parametrize("text, value", [("10MB", 10 << 20), ("1GB", 1 << 30), ("1K", 1000),
                                         ("1k", 1000), ("1KB", 1024), ("2m", 2_000_000),
                                         ("64mb", 64 << 20), ("1Gi", 1 << 30),
                                         ("1TB", 1 << 40), ("3t", 3 * 10**12)])
def test_sizes_become_ints(text, value):
    result = parse(f"a: {text}")["a"]
    assert result == value and isinstance(result, SizeInt) and result.text == text


def test_duration_words_stay_strings():
    assert parse("a: 10s\nb: 1h\nc: 1h30m\nd: 1.5m") == {"a": "10s", "b": "1h", "c": "1h30m",
                                                         "d": "1.5m"}


def test_key_without_value_is_none():
    assert parse("a:\nb = \nc: 1") == {"a": None, "b": None, "c": 1}
    assert parse("m { a: }") == {"m": {"a": None}}


def test_keys_keep_their_case_and_quoted_keys_work():
    result = parse('Port: 1\n"foo.>": {x: 1}\n\'Bar.*\' = 2\nfoo.bar: 3')
    assert result == {"Port": 1, "foo.>": {"x": 1}, "Bar.*": 2, "foo.bar": 3}


def test_a_repeated_key_keeps_its_last_value():
    assert parse("a: 1\na: 2") == {"a": 2}


def test_where_records_file_and_line():
    result = parse("a: 1\n\nb {\n  c: 2\n}\n")
    assert result.where == {"a": ("test.conf", 1), "b": ("test.conf", 3)}
    assert result["b"].where == {"c": ("test.conf", 4)}


# -- variables ----------------------------------------------------------------------

def test_variables_defined_earlier():
    text = "port_var: 4222\nport: $port_var\nm { x: $port_var, y: [$port_var] }"
    assert parse(text) == {"port_var": 4222, "port": 4222, "m": {"x": 4222, "y": [4222]}}


def test_innermost_definition_wins():
    assert parse("v: 1\nm { v: 2, w: $v }\nw: $v")["m"]["w"] == 2
    assert parse("v: 1\nm { v: 2, w: $v }\nw: $v")["w"] == 1


def test_variable_holding_a_map_is_copied():
    result = parse("base { a: 1 }\nx: $base\n")
    assert result["x"] == {"a": 1} and result["x"] is not result["base"]


def test_variables_from_the_environment_are_parsed_as_values():
    result = parse("a: $PORT\nb: $SIZE\nc: $NAME\nd: $FLAG\ne: $LIST",
                   PORT="4222", SIZE="1KB", NAME="node a", FLAG="true", LIST="[1, 2]")
    assert result == {"a": 4222, "b": 1024, "c": "node a", "d": True, "e": [1, 2]}


def test_file_definitions_shadow_the_environment():
    assert parse("X: 1\na: $X", X="2") == {"X": 1, "a": 1}


def test_quoted_dollar_is_text():
    assert parse('a: "$HOME"', HOME="/root") == {"a": "$HOME"}


def test_undefined_variable_names_the_line():
    error = error_of("a: 1\nb: $NOPE\n")
    assert (error.file, error.line) == ("test.conf", 2)
    assert "variable reference for 'NOPE' can not be found" in str(error)
    assert str(error).startswith("test.conf:2: ")


def test_a_variable_defined_later_is_not_visible():
    assert "can not be found" in str(error_of("a: $b\nb: 1"))


# -- include ----------------------------------------------------------------------

def test_include_is_relative_to_the_including_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "main.conf").write_text('port: 1\ninclude "auth.conf"\nx: $user\n')
    (tmp_path / "sub" / "auth.conf").write_text("user: alice\ninclude ./more/limits.conf\n")
    (tmp_path / "sub" / "more").mkdir()
    (tmp_path / "sub" / "more" / "limits.conf").write_text("max_payload: 1MB\n")
    result = parse_file(str(tmp_path / "sub" / "main.conf"), env={})
    assert result == {"port": 1, "user": "alice", "max_payload": 1 << 20, "x": "alice"}


def test_include_inside_a_map(tmp_path):
    (tmp_path / "main.conf").write_text("authorization {\n  include 'auth.conf'\n}\n")
    (tmp_path / "auth.conf").write_text("user: bob\npassword: s3cret\n")
    result = parse_file(str(tmp_path / "main.conf"), env={})
    assert result == {"authorization": {"user": "bob", "password": "s3cret"}}


def test_errors_in_an_included_file_name_it(tmp_path):
    (tmp_path / "main.conf").write_text("a: 1\ninclude inc.conf\n")
    (tmp_path / "inc.conf").write_text("b: 2\nc: \"open\n")
    with pytest.raises(ConfigError) as info:
        parse_file(str(tmp_path / "main.conf"), env={})
    assert (info.value.file, info.value.line) == (str(tmp_path / "inc.conf"), 2)


def test_missing_include_names_the_including_line(tmp_path):
    (tmp_path / "main.conf").write_text("a: 1\n\ninclude nope.conf\n")
    with pytest.raises(ConfigError) as info:
        parse_file(str(tmp_path / "main.conf"), env={})
    assert info.value.line == 3 and "nope.conf" in str(info.value)


def test_include_cycle_is_refused(tmp_path):
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("include a.conf\n")
    with pytest.raises(ConfigError, match="nested deeper"):
        parse_file(str(tmp_path / "a.conf"), env={})


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        parse_file("/nonexistent/runnel.conf", env={})


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, words", [
    ('a: 1\nb: "open\n', 2, "unterminated string"),
    ("a: 1\nb: 'open\nc: 1", 2, "unterminated string"),
    ("a {\n  b: 1\n", 3, "expected '}'"),
    ("a: [1, 2\n", 2, "expected ']'"),
    ("a: 1 2\n", 1, "unexpected '2' after a value"),
    ("a: [1 2]", 1, "unexpected '2' in an array"),
    ("a: 1\n}\n", 2, "unexpected '}'"),
    ("a\n", 1, "key 'a' has no value"),
    ('a: "\\q"', 1, "invalid escape"),
    ("a: $", 1, "variable name must follow"),
    ("a: 99999999999999999999", 1, "out of range"),
    ("x: 1\n\n\n  : 2", 4, "expected a key"),
])
def test_errors_carry_file_and_line(text, line, words):
    error = error_of(text)
    assert (error.file, error.line) == ("test.conf", line)
    assert words in str(error)
    assert str(error).startswith(f"test.conf:{line}: ")


# -- typed reads -------------------------------------------------------------------------

@pytest.mark.parametrize("kind, value, expected", [
    ("string", "x", "x"), ("int", 5, 5), ("size", 1024, 1024), ("bool", True, True),
    ("duration", "1h30m", 5400.0), ("seconds", 30, 30.0), ("seconds", 0.5, 0.5),
    ("seconds", "2m", 120.0), ("list", ["a", "b"], ["a", "b"]), ("list", "a,b", ["a", "b"]),
    ("hostport", 4222, ("", 4222)), ("hostport", "127.0.0.1:5", ("127.0.0.1", 5)),
    ("hostport", "[::1]:5", ("::1", 5)), ("map", {"a": 1}, {"a": 1}),
    ("string", None, ""), ("int", None, 0), ("duration", None, 0.0), ("bool", None, False)])
def test_file_values(kind, value, expected):
    assert file_value(kind, "k", value) == expected


@pytest.mark.parametrize("kind, value, message", [
    ("duration", 10, 'parameter "k" value is expected to be string, got int64'),
    ("int", "x", 'parameter "k" value is expected to be int64, got string'),
    ("int", True, 'parameter "k" value is expected to be int64, got bool'),
    ("bool", "yes", 'parameter "k" value is expected to be bool, got string'),
    ("string", 1.5, 'parameter "k" value is expected to be string, got float64'),
    ("map", [1], 'parameter "k" value is expected to be map, got slice'),
    ("string", {}, 'parameter "k" value is expected to be string, got map'),
    ("duration", "abc", 'parameter "k": time: invalid duration "abc"'),
    ("list", [1], 'parameter "k" value is expected to be slice of strings, got slice'),
])
def test_file_value_mismatch_messages(kind, value, message):
    with pytest.raises(ConfigError) as info:
        file_value(kind, "k", value)
    assert str(info.value) == message


def test_a_suffixed_number_is_refused_as_a_duration():
    value = parse("ping_interval: 2m")["ping_interval"]
    with pytest.raises(ConfigError, match='write a duration in quotes: "2m"'):
        file_value("seconds", "ping_interval", value, ("f.conf", 1))


# -- round trip of generated documents ---------------------------------------------------

_KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda key: key not in ("include", "true", "false", "yes", "no", "on", "off"))
_SCALARS = (st.integers(-(1 << 63), (1 << 63) - 1) | st.booleans()
            | st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n"),
                      max_size=12))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_KEYS, inner, max_size=4), max_leaves=12)


def _dump(value, indent: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_dump(item, indent) for item in value) + "]"
    inner = indent + "  "
    body = "".join(f"{inner}{key}: {_dump(item, inner)}\n" for key, item in value.items())
    return "{\n" + body + indent + "}"


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_generated_documents_round_trip(document):
    text = "".join(f"{key} = {_dump(value)}\n" for key, value in document.items())
    assert parse(text) == document
