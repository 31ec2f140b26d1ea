"""Command-line flags parsed the way Go's ``flag`` package parses them (reference §4.1).

Also home of the value syntaxes shared by flags and the configuration file: Go integers,
Go booleans, NATS sizes (``1KB`` = 1024, ``1K`` = 1000) and Go durations (``1h30m``).
Everything here is a pure function of its arguments.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

KINDS = ("string", "int", "bool", "size", "duration", "seconds", "list")


class ConfigError(ValueError):
    """A configuration that Runnel refuses; the text says what and where."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        self.message = message
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(where + message)


# ---------------------------------------------------------------------------
# Value syntaxes. Each raises ValueError("parse error") or ("value out of range"),
# the words Go's flag package prints after "invalid value ... for flag -x: ".

_PREFIXED = {"0x": (16, "0123456789abcdefABCDEF"), "0o": (8, "01234567"),
             "0b": (2, "01")}


def parse_go_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)``: decimal, 0x/0o/0b prefixes, legacy 0-octal, ``_``."""
    body = text[1:] if text[:1] in "+-" else text
    base, digits, allowed, prefixed = 10, body, "0123456789", True
    if body[:2].lower() in _PREFIXED:
        (base, allowed), digits = _PREFIXED[body[:2].lower()], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, allowed, digits = 8, "01234567", body[1:]
    else:
        prefixed = False
    if not _digits_ok(digits, allowed, prefixed):
        raise ValueError("parse error")
    value = int(digits.replace("_", ""), base)
    value = -value if text.startswith("-") else value
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("value out of range")
    return value


def _digits_ok(digits: str, allowed: str, prefixed: bool) -> bool:
    if prefixed and digits.startswith("_"):
        digits = digits[1:]
    if not digits or digits.startswith("_") or digits.endswith("_") or "__" in digits:
        return False
    return all(c in allowed or c == "_" for c in digits)


_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_go_bool(text: str) -> bool:
    """``strconv.ParseBool``: 1 t T TRUE true True, 0 f F FALSE false False."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("parse error")


# NATS sizes: a bare K/M/G/T/P is a power of 1000, with B, i or iB a power of 1024.
SIZE_RE = re.compile(r"([+-]?[0-9]+)([kmgtp])(b|i|ib)?", re.IGNORECASE)
_SIZE_EXP = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def size_suffix_value(number: int, suffix: str) -> int:
    """The bytes meant by ``<number><suffix>``; suffix like ``K``, ``KB``, ``KiB``."""
    unit, binary = suffix[:1].lower(), len(suffix) > 1
    if unit not in _SIZE_EXP or suffix[1:].lower() not in ("", "b", "i", "ib"):
        raise ValueError("parse error")
    return number * (1024 if binary else 1000) ** _SIZE_EXP[unit]


def parse_size(text: str) -> int:
    """A plain Go integer or a NATS size: ``1KB`` = 1024, ``1K`` = 1000, up to P."""
    match = SIZE_RE.fullmatch(text)
    if match is None:
        return parse_go_int(text)
    value = size_suffix_value(int(match.group(1)), text[len(match.group(1)):])
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("value out of range")
    return value


_SIZE_UNITS = (("PB", 1 << 50), ("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20),
               ("KB", 1 << 10))


def format_size(value: int) -> str:
    """The shortest exact spelling in binary units (``64MB``), else the plain number."""
    for suffix, unit in _SIZE_UNITS:
        if value and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


_NS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6,
       "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DUR_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_duration_ns(text: str) -> int:
    """``time.ParseDuration`` in integer nanoseconds: ``1h30m``, ``1.5h``, ``-2us``, ``0``.

    Raises ValueError with Go's own text (``time: missing unit in duration "30"``).
    """
    rest, negative = text, text[:1] == "-"
    rest = rest[1:] if rest[:1] in "+-" else rest
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"time: invalid duration {_quote(text)}")
    total = 0
    while rest:
        match = _DUR_PART.match(rest)
        whole, frac, unit = match.group(1), match.group(2) or "", match.group(3)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {_quote(text)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {_quote(text)}")
        if unit not in _NS:
            raise ValueError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        scale = _NS[unit]
        total += int(whole or "0") * scale + int(frac or "0") * scale // 10 ** len(frac)
        rest = rest[match.end():]
    if total > INT64_MAX + negative:
        raise ValueError(f"time: invalid duration {_quote(text)}")
    return -total if negative else total


def parse_duration(text: str) -> float:
    """A Go duration in float seconds."""
    return parse_duration_ns(text) / 1e9


def format_duration_ns(ns: int) -> str:
    """Go's ``Duration.String()``: ``1h30m0s``, ``1.5s``, ``100ms``, ``2\u00b5s``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 10**9:
        for unit, scale in (("ms", 10**6), ("\u00b5s", 10**3), ("ns", 1)):
            if ns >= scale:
                return sign + _decimal(ns, scale) + unit
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    text = _decimal(ns, 10**9) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def format_duration(seconds: float) -> str:
    return format_duration_ns(round(seconds * 1e9))


def _decimal(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_list(text: str) -> list[str]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


# "seconds" is a duration on the command line; the file also takes a number of seconds.
_PARSERS = {"string": str, "int": parse_go_int, "bool": parse_go_bool, "size": parse_size,
            "duration": parse_duration, "seconds": parse_duration, "list": parse_list}


def parse_value(kind: str, text: str) -> Any:
    """The value of a flag of ``kind`` written as ``text``; ValueError("parse error")."""
    try:
        return _PARSERS[kind](text)
    except ValueError as exc:
        if kind in ("duration", "seconds") or str(exc) not in ("parse error",
                                                              "value out of range"):
            raise ValueError("parse error") from exc
        raise


# ---------------------------------------------------------------------------
# The command line.

class FlagDef(Protocol):
    """What the parser needs to know of a flag (the options table rows have it)."""

    flags: tuple[str, ...]
    kind: str
    supported: bool


@dataclass(frozen=True)
class FlagValue:
    spec: Any          # the FlagDef the name resolved to
    name: str          # the name as typed, without dashes
    value: Any


def parse_args(argv: Iterable[str], specs: Iterable[FlagDef]) -> tuple[list[FlagValue], list[str]]:
    """Go's ``FlagSet.Parse``: the flags given, in order, and the arguments left over.

    Parsing stops at the first non-flag argument (``-`` counts as one) or after ``--``.
    """
    table = {name: spec for spec in specs for name in spec.flags}
    args, found = list(argv), []
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        args.pop(0)
        if arg == "--":
            break
        found.append(_parse_one(arg, args, table))
    return found, args


def _parse_one(arg: str, args: list[str], table: dict[str, FlagDef]) -> FlagValue:
    name = arg[2:] if arg.startswith("--") else arg[1:]
    if not name or name[0] in "-=":
        raise ConfigError(f"bad flag syntax: {arg}")
    name, has_value, value = name.partition("=")
    spec = table.get(name)
    if spec is None:
        raise ConfigError(f"flag provided but not defined: -{name}")
    if not spec.supported:
        raise ConfigError(f"flag -{name} is not supported by Runnel yet")
    if spec.kind == "bool":
        return FlagValue(spec, name, _bool_flag(name, value if has_value else "true"))
    if not has_value:
        if not args:
            raise ConfigError(f"flag needs an argument: -{name}")
        value = args.pop(0)
    try:
        return FlagValue(spec, name, parse_value(spec.kind, value))
    except ValueError as exc:
        raise ConfigError(f"invalid value {_quote(value)} for flag -{name}: {exc}") from None


def _bool_flag(name: str, text: str) -> bool:
    try:
        return parse_go_bool(text)
    except ValueError:
        message = f"invalid boolean value {_quote(text)} for -{name}: parse error"
        raise ConfigError(message) from None
