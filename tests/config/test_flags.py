"""Go `flag` package semantics and the value syntaxes (reference §4.1)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.config.flags import (INT64_MAX, INT64_MIN, ConfigError, format_duration,
                                 format_duration_ns, format_size, parse_args, parse_duration,
                                 parse_duration_ns, parse_go_bool, parse_go_int, parse_list,
                                 parse_size)


@dataclass(frozen=True)
class Spec:
    flags: tuple[str, ...]
    kind: str
    supported: bool = True


PORT = Spec(("p", "port"), "int")
DEBUG = Spec(("D", "debug"), "bool")
NAME = Spec(("n", "name"), "string")
MAXB = Spec(("mb",), "size")
HBI = Spec(("hbi",), "duration")
PEERS = Spec(("cluster_peers",), "list")
ENCRYPT = Spec(("encrypt",), "bool", supported=False)
SPECS = (PORT, DEBUG, NAME, MAXB, HBI, PEERS, ENCRYPT)


def parse(*argv: str):
    found, rest = parse_args(argv, SPECS)
    return [(f.spec, f.name, f.value) for f in found], rest


# -- flag syntax --------------------------------------------------------------

@pytest.mark.parametrize("argv", [["-p", "4222"], ["--port=4222"], ["-p=4222"],
                                  ["--port", "4222"], ["-port", "4222"], ["--p=4222"]])
def test_every_spelling_of_a_valued_flag(argv):
    found, rest = parse(*argv)
    assert [(spec, value) for spec, _, value in found] == [(PORT, 4222)]
    assert rest == []


def test_the_name_as_typed_is_kept():
    found, _ = parse("--port=1", "-p", "2")
    assert [name for _, name, _ in found] == ["port", "p"]


@pytest.mark.parametrize("argv, value", [(["-D"], True), (["--debug"], True),
                                         (["-D=false"], False), (["--D=0"], False),
                                         (["-D=true"], True), (["-D=T"], True),
                                         (["-D=FALSE"], False)])
def test_booleans(argv, value):
    assert parse(*argv) == ([(DEBUG, argv[0].lstrip("-").split("=")[0], value)], [])


def test_a_boolean_does_not_consume_the_next_argument():
    found, rest = parse("-D", "false", "-p", "1")
    assert found == [(DEBUG, "D", True)]
    assert rest == ["false", "-p", "1"]


def test_parsing_stops_at_the_first_non_flag():
    found, rest = parse("-p", "1", "serve", "-D")
    assert found == [(PORT, "p", 1)]
    assert rest == ["serve", "-D"]


def test_double_dash_ends_the_flags_and_is_consumed():
    assert parse("-D", "--", "-p", "5") == ([(DEBUG, "D", True)], ["-p", "5"])


def test_a_lone_dash_is_an_argument():
    assert parse("-", "-D") == ([], ["-", "-D"])


def test_a_value_may_start_with_a_dash():
    assert parse("-p", "-1") == ([(PORT, "p", -1)], [])
    assert parse("-n", "-D") == ([(NAME, "n", "-D")], [])


def test_empty_string_value():
    assert parse("-n=") == ([(NAME, "n", "")], [])


def test_last_flag_wins_is_left_to_the_caller_in_order():
    found, _ = parse("-p", "1", "-p", "2")
    assert [value for _, _, value in found] == [1, 2]


@pytest.mark.parametrize("argv, message", [
    (["-xyz"], "flag provided but not defined: -xyz"),
    (["--xyz=1"], "flag provided but not defined: -xyz"),
    (["-d"], "flag provided but not defined: -d"),  # names are case-sensitive
    (["-p", "abc"], 'invalid value "abc" for flag -p: parse error'),
    (["--port=99999999999999999999"],
     'invalid value "99999999999999999999" for flag -port: value out of range'),
    (["-p"], "flag needs an argument: -p"),
    (["-D=maybe"], 'invalid boolean value "maybe" for -D: parse error'),
    (["---p"], "bad flag syntax: ---p"),
    (["-=1"], "bad flag syntax: -=1"),
    (["-mb", "1XB"], 'invalid value "1XB" for flag -mb: parse error'),
    (["-hbi", "30"], 'invalid value "30" for flag -hbi: parse error'),
    (["--encrypt"], "flag -encrypt is not supported by Runnel yet"),
])
def test_errors_read_like_go(argv, message):
    with pytest.raises(ConfigError) as info:
        parse(*argv)
    assert str(info.value) == message


def test_kinds():
    found, _ = parse("-mb", "1GB", "-hbi", "1h30m", "--cluster_peers", "a, b,,c")
    assert [value for _, _, value in found] == [1 << 30, 5400.0, ["a", "b", "c"]]


# -- integers and booleans ----------------------------------------------------

@pytest.mark.parametrize("text, value", [("0", 0), ("42", 42), ("-5", -5), ("+5", 5),
                                         ("0x1F", 31), ("0X1f", 31), ("0o17", 15),
                                         ("0b101", 5), ("010", 8), ("1_000", 1000),
                                         ("0x_1F", 31), (str(INT64_MAX), INT64_MAX),
                                         (str(INT64_MIN), INT64_MIN)])
def test_go_ints(text, value):
    assert parse_go_int(text) == value


@pytest.mark.parametrize("text", ["", "-", "1__0", "_1", "1_", "12a", " 1", "1 ", "0x",
                                  "09", "1.0", "٣"])
def test_go_int_syntax_errors(text):
    with pytest.raises(ValueError, match="parse error"):
        parse_go_int(text)


def test_go_int_range():
    with pytest.raises(ValueError, match="value out of range"):
        parse_go_int(str(INT64_MAX + 1))


def test_go_bools():
    for text in ("1", "t", "T", "TRUE", "true", "True"):
        assert parse_go_bool(text) is True
    for text in ("0", "f", "F", "FALSE", "false", "False"):
        assert parse_go_bool(text) is False
    for text in ("yes", "on", "tRUE", ""):
        with pytest.raises(ValueError):
            parse_go_bool(text)


# -- sizes ----------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("100", 100), ("1K", 1000), ("1KB", 1024), ("1kb", 1024), ("1k", 1000), ("1KiB", 1024),
    ("1Ki", 1024), ("2M", 2_000_000), ("2MB", 2 << 20), ("2mb", 2 << 20), ("1G", 10**9),
    ("1GB", 1 << 30), ("1T", 10**12), ("1TB", 1 << 40), ("1P", 10**15), ("0x10", 16),
    ("-1", -1), ("1024000000", 1_024_000_000)])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["1XB", "KB", "1.5KB", "1 KB", "", "1KBB", "1B"])
def test_size_errors(text):
    with pytest.raises(ValueError):
        parse_size(text)


_SIZE_SUFFIXES = {"K": 1000, "KB": 1024, "KiB": 1024, "M": 1000**2, "MB": 1024**2,
                  "G": 1000**3, "GB": 1024**3, "T": 1000**4, "TB": 1024**4}


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(sorted(_SIZE_SUFFIXES)), st.booleans())
def test_size_suffixes_property(number, suffix, lower):
    text = f"{number}{suffix.lower() if lower else suffix}"
    assert parse_size(text) == number * _SIZE_SUFFIXES[suffix]


@settings(max_examples=300, deadline=None)
@given(st.integers(-(1 << 62), 1 << 62))
def test_size_format_round_trip(value):
    assert parse_size(format_size(value)) == value


def test_format_size_examples():
    assert format_size(64 << 20) == "64MB"
    assert format_size(1_024_000_000) == "1000000KB"
    assert format_size(1000) == "1000"
    assert format_size(0) == "0"


# -- durations ------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("1h30m", 5400), ("1.5h", 5400), ("100ms", 0.1), ("2us", 2e-6),
    ("2\u00b5s", 2e-6), ("2\u03bcs", 2e-6), ("0", 0), ("-0", 0), ("+5m", 300), ("-1s", -1),
    ("1h0m0.5s", 3600.5), ("1.s", 1), (".5s", 0.5), ("300ns", 3e-7), ("1m30s", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, message", [
    ("30", 'time: missing unit in duration "30"'),
    ("", 'time: invalid duration ""'),
    ("1x", 'time: unknown unit "x" in duration "1x"'),
    (".s", 'time: invalid duration ".s"'),
    ("s", 'time: invalid duration "s"'),
    ("1.5.5s", 'time: missing unit in duration "1.5.5s"'),
    ("0.0", 'time: missing unit in duration "0.0"'),
    ("3000000h", 'time: invalid duration "3000000h"'),
])
def test_duration_errors_are_gos(text, message):
    with pytest.raises(ValueError) as info:
        parse_duration_ns(text)
    assert str(info.value) == message


@pytest.mark.parametrize("ns, text", [
    (0, "0s"), (5400 * 10**9, "1h30m0s"), (1_500_000_000, "1.5s"), (100 * 10**6, "100ms"),
    (2000, "2\u00b5s"), (1, "1ns"), (60 * 10**9, "1m0s"), (-(10**9), "-1s"),
    (3_600_000_000_001, "1h0m0.000000001s"), (1_500, "1.5\u00b5s")])
def test_duration_format_is_gos_string(ns, text):
    assert format_duration_ns(ns) == text


@settings(max_examples=500, deadline=None)
@given(st.integers(INT64_MIN + 1, INT64_MAX))
def test_duration_round_trip(ns):
    assert parse_duration_ns(format_duration_ns(ns)) == ns


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_duration_compound_property(hours, minutes, seconds, millis):
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    expected = ((hours * 60 + minutes) * 60 + seconds) * 10**9 + millis * 10**6
    assert parse_duration_ns(text) == expected


def test_format_duration_of_float_seconds():
    assert format_duration(30.0) == "30s"
    assert format_duration(0.1) == "100ms"


def test_lists():
    assert parse_list("a,b") == ["a", "b"]
    assert parse_list(" a , ,b ") == ["a", "b"]
    assert parse_list("") == []
