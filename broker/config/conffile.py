"""The NATS configuration file format (reference §4.4), parsed into Python values.

``key: value``, ``key = value`` and ``key value``; ``{}`` maps and ``[]`` arrays whose items
are separated by commas or newlines (``;`` too in maps); ``#`` and ``//`` comments where a
token may start; double-quoted strings with escapes, single-quoted raw strings, bare
strings; ints, floats, booleans (true/false/yes/no/on/off), sizes (``10MB``, ``1K``) turned
into ints; ``include "file"`` (relative to the including file) and ``$VAR`` (a key defined
earlier in an enclosing map, else the environment, whose text is parsed as a value).

Maps are ``ConfMap``: a dict that also records where each key was written, so that
later checks can name the file and line. Keys keep the case they were written in (channel
names in ``store_limits.channels`` are case-sensitive); the options layer matches the other
keys case-insensitively. A key given twice keeps its last value.
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Mapping

from .flags import (INT64_MAX, INT64_MIN, SIZE_RE, ConfigError, parse_duration, parse_list,
                    size_suffix_value)

MAX_INCLUDE_DEPTH = 10

_TRUE = frozenset(("true", "yes", "on"))
_FALSE = frozenset(("false", "no", "off"))
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?[0-9]+\.[0-9]+")
_VAR_RE = re.compile(r"[A-Za-z0-9_]+")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\", "/": "/", "$": "$"}
_BARE_KEY_END = frozenset(" \t\r\n:={[")
_BARE_VALUE_END = frozenset(" \t\r\n,;}]")


class ConfMap(dict):
    """A map of the file. ``where[key]`` is the ``(file, line)`` the key was written at."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.where: dict[str, tuple[str, int]] = {}


class SizeInt(int):
    """An int written with a size suffix (``2m`` is 2000000); ``text`` is what was written.

    nats-server reads ``ping_interval: 2m`` the same way, as two million; keeping the text
    lets the options layer refuse such a value for a duration instead of misreading it.
    """

    text: str

    def __new__(cls, value: int, text: str) -> "SizeInt":
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __reduce__(self):
        return (SizeInt, (int(self), self.text))


def parse_text(text: str, file: str = "<string>", env: Mapping[str, str] | None = None) -> ConfMap:
    """The top-level map of a configuration written as ``text``."""
    env = os.environ if env is None else env
    root = ConfMap()
    _Parser(text, file, env, [], 0).entries(root, closer=None)
    return root


def parse_file(path: str, env: Mapping[str, str] | None = None) -> ConfMap:
    """The top-level map of the configuration file at ``path``."""
    return parse_text(_read(path, None), path, env)


def _read(path: str, parser: "_Parser | None") -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        message = f"cannot read configuration file {path!r}: {reason}"
        if parser is None:
            raise ConfigError(message) from None
        raise parser.error(message) from None


class _Parser:
    """Recursive descent over one file's text; ``stack`` holds the enclosing maps."""

    def __init__(self, text: str, file: str, env: Mapping[str, str], stack: list, depth: int):
        self.text = text[1:] if text.startswith("\ufeff") else text
        self.file, self.env, self.stack, self.depth = file, env, stack, depth
        self.pos, self.line = 0, 1

    # -- characters ---------------------------------------------------------
    def error(self, message: str) -> ConfigError:
        return ConfigError(message, self.file, self.line)

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def advance(self, count: int = 1) -> str:
        chunk = self.text[self.pos:self.pos + count]
        self.line += chunk.count("\n")
        self.pos += len(chunk)
        return chunk

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces and comments, and newlines too when ``newlines``."""
        while self.pos < len(self.text):
            char = self.peek()
            if char in " \t\r" or (newlines and char == "\n"):
                self.advance()
            elif char == "#" or self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    # -- maps ---------------------------------------------------------------
    def entries(self, target: ConfMap, closer: str | None) -> None:
        """Read ``key value`` entries into ``target`` until ``closer`` (or the end)."""
        self.stack.append(target)
        try:
            while True:
                self.skip_blank(newlines=True)
                if not self.peek():
                    if closer:
                        raise self.error(f"unexpected end of file, expected {closer!r}")
                    return
                if self.peek() == closer:
                    self.advance()
                    return
                self.entry(target)
                self.end_of_entry(closer)
        finally:
            self.stack.pop()

    def end_of_entry(self, closer: str | None) -> None:
        self.skip_blank(newlines=False)
        char = self.peek()
        if char in (",", ";"):
            self.advance()
        elif char not in ("\n", "") and char != closer:
            raise self.error(f"unexpected {char!r} after a value "
                             f"(expected a new line, ',' or ';')")

    def entry(self, target: ConfMap) -> None:
        line, quoted = self.line, self.peek() in ('"', "'")
        key = self.key()
        self.skip_blank(newlines=False)
        if not quoted and key.lower() == "include" and self.peek() not in (":", "="):
            self.include(target)
            return
        separated = self.peek() in (":", "=")
        if separated:
            self.advance()
            self.skip_blank(newlines=False)
        if self.at_value_end():
            if not separated:
                raise self.error(f"key {key!r} has no value")
            value = None
        else:
            value = self.value()
        target[key] = value
        target.where[key] = (self.file, line)

    def key(self) -> str:
        char = self.peek()
        if char == '"':
            return self.dq_string()
        if char == "'":
            return self.sq_string()
        if char in "}],;":
            raise self.error(f"unexpected {char!r}, expected a key")
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _BARE_KEY_END:
            self.pos += 1
        if self.pos == start:
            raise self.error(f"unexpected {char!r}, expected a key")
        return self.text[start:self.pos]

    def at_value_end(self) -> bool:
        char = self.peek()
        return char in ("", "\n", ",", ";", "}", "#") or self.text.startswith("//", self.pos)

    # -- include ------------------------------------------------------------
    def include(self, target: ConfMap) -> None:
        if self.at_value_end():
            raise self.error("include needs a file name")
        name = self.value()
        if not isinstance(name, str) or not name:
            raise self.error("include needs a file name")
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise self.error(f"includes nested deeper than {MAX_INCLUDE_DEPTH} (a cycle?)")
        base = os.path.dirname(self.file) if not self.file.startswith("<") else ""
        path = os.path.join(base, name)
        child = _Parser(_read(path, self), path, self.env, self.stack, self.depth + 1)
        child.entries(target, closer=None)  # the included keys join the including map

    # -- values -------------------------------------------------------------
    def value(self) -> Any:
        char = self.peek()
        if char == "{":
            self.advance()
            result = ConfMap()
            self.entries(result, closer="}")
            return result
        if char == "[":
            return self.array()
        if char == '"':
            return self.dq_string()
        if char == "'":
            return self.sq_string()
        if char == "$":
            return self.variable()
        return self.bare_value()

    def array(self) -> list:
        self.advance()
        items: list = []
        while True:
            self.skip_blank(newlines=True)
            char = self.peek()
            if char == "]":
                self.advance()
                return items
            if not char:
                raise self.error("unexpected end of file, expected ']'")
            items.append(self.value())
            self.skip_blank(newlines=False)
            char = self.peek()
            if char == ",":
                self.advance()
            elif char not in ("\n", "]", ""):
                raise self.error(f"unexpected {char!r} in an array (expected ',' or ']')")

    def dq_string(self) -> str:
        self.advance()
        out: list[str] = []
        while True:
            if self.peek() in ("", "\n"):
                raise self.error("unterminated string")
            char = self.advance()
            if char == '"':
                return "".join(out)
            out.append(self.escape() if char == "\\" else char)

    def escape(self) -> str:
        char = self.advance()
        if char in _ESCAPES:
            return _ESCAPES[char]
        width = {"u": 4, "U": 8}.get(char)
        digits = self.text[self.pos:self.pos + width] if width else ""
        if not width or len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
            raise self.error(f"invalid escape sequence \\{char}{digits}")
        self.advance(width)
        try:
            return chr(int(digits, 16))
        except ValueError:
            raise self.error(f"invalid escape sequence \\{char}{digits}") from None

    def sq_string(self) -> str:
        self.advance()
        end = self.text.find("'", self.pos)
        newline = self.text.find("\n", self.pos)
        if end < 0 or 0 <= newline < end:
            raise self.error("unterminated string")
        return self.advance(end - self.pos + 1)[:-1]

    def variable(self) -> Any:
        self.advance()
        match = _VAR_RE.match(self.text, self.pos)
        if match is None:
            raise self.error("a variable name must follow '$'")
        name = self.advance(match.end() - self.pos)
        for scope in reversed(self.stack):
            if name in scope:
                return copy.deepcopy(scope[name])
        if name in self.env:
            return self.env_value(name, self.env[name])
        raise self.error(f"variable reference for '{name}' can not be found")

    def env_value(self, name: str, text: str) -> Any:
        """An environment value parsed as a configuration value; the raw text if it is
        not exactly one value (``node a``, ``C:\\dir``)."""
        sub = _Parser(text, f"${name}", self.env, [], self.depth + 1)
        try:
            sub.skip_blank(newlines=True)
            value = sub.value() if sub.peek() else ""
            sub.skip_blank(newlines=True)
        except ConfigError:
            return text
        return text if sub.peek() else value

    def bare_value(self) -> Any:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _BARE_VALUE_END:
            self.pos += 1
        token = self.text[start:self.pos]
        if not token:
            raise self.error(f"unexpected {self.peek()!r}, expected a value")
        try:
            return classify(token)
        except ValueError as exc:
            raise self.error(str(exc)) from None


def classify(token: str) -> Any:
    """The value of an unquoted token: bool, int, size (an int), float or string."""
    lower = token.lower()
    if lower in _TRUE:
        return True
    if lower in _FALSE:
        return False
    if _INT_RE.fullmatch(token):
        return _in_range(int(token), token)
    match = SIZE_RE.fullmatch(token)
    if match:
        number, suffix = int(match.group(1)), token[len(match.group(1)):]
        return SizeInt(_in_range(size_suffix_value(number, suffix), token), token)
    if _FLOAT_RE.fullmatch(token):
        return float(token)
    return token


def _in_range(value: int, token: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"integer {token} is out of range")
    return value


# ---------------------------------------------------------------------------
# Typed access: a value read from the file, checked against the kind a parameter
# expects. Messages use Go's kind names, as nats-streaming-server prints them.

_ZERO = {"string": "", "int": 0, "size": 0, "bool": False, "duration": 0.0,
         "seconds": 0.0, "list": [], "hostport": ("", 0), "map": {}}


def go_kind(value: Any) -> str:
    """The Go ``reflect.Kind`` name of a value read from the file."""
    for kind, name in ((bool, "bool"), (int, "int64"), (float, "float64"), (str, "string"),
                       (dict, "map"), (list, "slice")):
        if isinstance(value, kind):
            return name
    return "invalid"


def file_value(kind: str, key: str, value: Any, where: tuple = (None, None)) -> Any:
    """``value`` read from the file for a parameter of ``kind``, or a ConfigError."""
    if value is None:  # a key with no value takes the zero value
        return _ZERO[kind]
    actual = go_kind(value)
    if kind in ("duration", "seconds") and isinstance(value, SizeInt):
        raise ConfigError(f'parameter "{key}" value {value.text} was read as the number '
                          f'{int(value)}; write a duration in quotes: "{value.text}"', *where)
    try:
        return _CONVERT[kind](value, actual)
    except _Mismatch as exc:
        raise ConfigError(f'parameter "{key}" value is expected to be {exc}, got {actual}',
                          *where) from None
    except ValueError as exc:
        raise ConfigError(f'parameter "{key}": {exc}', *where) from None


class _Mismatch(Exception):
    """Raised with the expected Go kind name."""


def _expect(expected: str):
    def check(value: Any, actual: str) -> Any:
        if actual != expected:
            raise _Mismatch(expected)
        return value
    return check


def _duration(value: Any, actual: str) -> float:
    return parse_duration(_expect("string")(value, actual))


def _seconds(value: Any, actual: str) -> float:
    return float(value) if actual in ("int64", "float64") else _duration(value, actual)


def _list(value: Any, actual: str) -> list[str]:
    if actual == "string":
        return parse_list(value)
    if actual != "slice" or not all(isinstance(item, str) for item in value):
        raise _Mismatch("slice of strings")
    return list(value)


def _hostport(value: Any, actual: str) -> tuple[str, int]:
    """``4222`` or ``"host:4222"`` (``[::1]:4222`` for IPv6)."""
    if actual == "int64":
        return "", value
    host, sep, port = _expect("string")(value, actual).rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected <host>:<port> or a port, got {value!r}")
    return host.strip("[]"), int(port)


_CONVERT = {"string": _expect("string"), "int": _expect("int64"), "size": _expect("int64"),
            "bool": _expect("bool"), "map": _expect("map"), "duration": _duration,
            "seconds": _seconds, "list": _list, "hostport": _hostport}
