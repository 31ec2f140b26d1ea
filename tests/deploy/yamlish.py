"""A reader for the small YAML subset that deploy/'s compose file and manifests are written in,
so the deploy tests need no PyYAML (the project's .venv has none).

The subset: block mappings and block sequences (a sequence may sit at its key's indentation,
as kubectl writes it), one-line flow sequences and mappings of scalars (``[a, b]``, ``{}``),
plain, single- and double-quoted scalars, literal block scalars (``|`` and ``|-``), comments,
and ``---`` between documents. No anchors, aliases, tags, folded scalars or multi-line flow
collections.

Plain scalars are strings, except ``null``/``~``, ``true``/``false`` and decimal integers. A
plain scalar that YAML 1.1 (PyYAML, Docker Compose's Go parser in places) could read as
something else - ``yes``/``no``/``on``/``off``, ``4222:4222`` (base 60), ``012``, ``1.5`` - is
refused with its line: quote it. So a file this reader accepts means the same to every YAML
parser; tests/deploy/test_manifests.py also compares it with PyYAML where one is installed.
"""
from __future__ import annotations

import re

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)\Z")
_AMBIGUOUS = re.compile(
    r"(?i)(y|n|yes|no|on|off|\.inf|\.nan|[-+]?\.inf)\Z"        # YAML 1.1 booleans, floats
    r"|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?\Z"         # base 60: 4222:4222
    r"|[-+]?0[0-9_]+\Z|[-+]?0[xXoObB][0-9a-fA-F_]+\Z"         # octal, hex, binary
    r"|[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?\Z"     # floats
    r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+\Z|[-+]?[0-9]+_[0-9_]*\Z")
_NULLS = ("null", "Null", "NULL", "~")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False}


class YamlError(ValueError):
    pass


def load_all(text: str) -> list:
    """Every document of ``text`` (``---`` separates them; empty documents are dropped)."""
    docs, current = [], []
    for line in text.splitlines():
        if line.rstrip() == "---" or line.startswith("--- "):
            docs.append(current)
            current = []
        else:
            current.append(line)
    docs.append(current)
    out = []
    offset = 0
    for lines in docs:
        value = _Parser(lines, offset).document()
        offset += len(lines) + 1
        if value is not None:
            out.append(value)
    return out


def load(text: str):
    """The single document of ``text``."""
    docs = load_all(text)
    if len(docs) != 1:
        raise YamlError(f"expected one document, found {len(docs)}")
    return docs[0]


class _Parser:
    def __init__(self, lines: list[str], offset: int):
        self.lines = lines
        self.offset = offset
        self.pos = 0

    def error(self, message: str, index: int | None = None):
        index = self.pos if index is None else index
        return YamlError(f"line {self.offset + index + 1}: {message}")

    # -- lines --

    def _meaningful(self, index: int) -> tuple[int, str] | None:
        """(indent, content without comment) of line ``index``, or None if blank/comment."""
        line = self.lines[index]
        if "\t" in line[:len(line) - len(line.lstrip())]:
            raise self.error("tab in indentation", index)
        content = _strip_comment(line).rstrip()
        if not content.strip():
            return None
        return len(content) - len(content.lstrip(" ")), content.strip()

    def peek(self) -> tuple[int, str] | None:
        while self.pos < len(self.lines):
            item = self._meaningful(self.pos)
            if item is not None:
                return item
            self.pos += 1
        return None

    # -- structure --

    def document(self):
        if self.peek() is None:
            return None
        indent, _ = self.peek()
        value = self.node(indent)
        if self.peek() is not None:
            raise self.error("unexpected content (bad indentation?)")
        return value

    def node(self, indent: int):
        at = self.peek()
        if at is None or at[0] < indent:
            return None
        if at[0] > indent:
            raise self.error("unexpected indentation")
        if _is_seq_item(at[1]):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent: int, first: str | None = None) -> dict:
        result: dict = {}
        while True:
            if first is not None:
                content, first = first, None
            else:
                at = self.peek()
                if at is None or at[0] < indent:
                    return result
                if at[0] > indent:
                    raise self.error("unexpected indentation")
                if _is_seq_item(at[1]):
                    if not result:
                        raise self.error("a sequence item where a mapping key was expected")
                    return result
                content = at[1]
            key, rest = self._split_key(content)
            if key in result:
                raise self.error(f"duplicate key {key!r}")
            line = self.pos
            self.pos += 1
            result[key] = self.value_after_key(rest, indent, line)

    def value_after_key(self, rest: str, indent: int, line: int):
        if rest.startswith("|"):
            return self.block_scalar(rest, indent, line)
        if rest.startswith(">"):
            raise self.error("folded scalars (>) are not in the subset", line)
        if rest:
            return _scalar_or_flow(rest, lambda m: self.error(m, line))
        at = self.peek()
        if at is None or at[0] < indent:
            return None
        if at[0] == indent:  # "key:" then "- item" at the key's indentation
            return self.sequence(indent) if _is_seq_item(at[1]) else None
        return self.node(at[0])

    def sequence(self, indent: int) -> list:
        result = []
        while True:
            at = self.peek()
            if at is None or at[0] < indent:
                return result
            if at[0] > indent:
                raise self.error("unexpected indentation")
            if not _is_seq_item(at[1]):
                return result
            rest = at[1][1:].lstrip(" ")
            column = indent + len(at[1]) - len(rest)
            if not rest:
                self.pos += 1
                nxt = self.peek()
                result.append(None if nxt is None or nxt[0] <= indent else self.node(nxt[0]))
            elif _is_seq_item(rest):
                raise self.error("nested '- -' sequences are not in the subset")
            elif self._looks_like_key(rest):
                result.append(self.mapping(column, first=rest))
            else:
                line = self.pos
                self.pos += 1
                result.append(_scalar_or_flow(rest, lambda m: self.error(m, line)))

    def block_scalar(self, header: str, indent: int, line: int) -> str:
        if header not in ("|", "|-"):
            raise self.error(f"block scalar header {header!r} is not in the subset", line)
        body: list[str] = []
        block_indent = None
        while self.pos < len(self.lines):
            raw = self.lines[self.pos]
            if not raw.strip():
                body.append("")
                self.pos += 1
                continue
            this = len(raw) - len(raw.lstrip(" "))
            if block_indent is None:
                if this <= indent:
                    break
                block_indent = this
            elif this < block_indent:
                break
            body.append(raw[block_indent:])
            self.pos += 1
        while body and body[-1] == "":
            body.pop()
            # blank lines after the block belong to no one; keep the position after them
        text = "\n".join(body)
        return text if header == "|-" or not text else text + "\n"

    # -- keys --

    def _looks_like_key(self, content: str) -> bool:
        if content[0] in "[{\"'":
            return content[0] in "\"'" and _split_key(content) is not None
        return _split_key(content) is not None

    def _split_key(self, content: str) -> tuple[str, str]:
        split = _split_key(content)
        if split is None:
            raise self.error(f"expected 'key: value', got {content!r}")
        key, rest = split
        return key, rest


def _is_seq_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _split_key(content: str) -> tuple[str, str] | None:
    """``key: rest`` -> (key, rest) with the key unquoted; None if ``content`` is no key."""
    if content[0] in "\"'":
        end = _quote_end(content, 0)
        if end is None or not content[end + 1:].startswith(":"):
            return None
        after = content[end + 2:]
        if after and not after.startswith(" "):
            return None
        return _quoted(content[:end + 1], lambda m: YamlError(m)), after.strip()
    index = 0
    while True:
        index = content.find(":", index)
        if index < 0:
            return None
        if index == len(content) - 1 or content[index + 1] == " ":
            key = content[:index].rstrip()
            if not key or key[0] in "[{&*!|>%@`":
                return None
            return key, content[index + 1:].strip()
        index += 1


def _quote_end(text: str, start: int) -> int | None:
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and text[index + 1:index + 2] == "'":
                index += 2
                continue
            return index
        index += 1
    return None


def _strip_comment(line: str) -> str:
    index, quote = 0, None
    while index < len(line):
        char = line[index]
        if quote:
            if quote == '"' and char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "\"'" and (index == 0 or line[index - 1] in " [{,:-"):
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] == " "):
            return line[:index]
        index += 1
    return line


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "/": "/", "0": "\0", "r": "\r"}


def _quoted(text: str, error) -> str:
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    out, index, body = [], 0, text[1:-1]
    while index < len(body):
        char = body[index]
        if char == "\\":
            nxt = body[index + 1:index + 2]
            if nxt not in _ESCAPES:
                raise error(f"escape \\{nxt} is not in the subset")
            out.append(_ESCAPES[nxt])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _scalar_or_flow(text: str, error):
    text = text.strip()
    if text[0] in "[{":
        close = "]" if text[0] == "[" else "}"
        if not text.endswith(close):
            raise error(f"a flow collection must end on its line: {text!r}")
        inner = text[1:-1].strip()
        items = _split_flow(inner, error) if inner else []
        if text[0] == "[":
            return [_scalar(item, error) for item in items]
        result = {}
        for item in items:
            split = _split_key(item)
            if split is None:
                raise error(f"expected 'key: value' in {text!r}")
            result[split[0]] = _scalar(split[1], error)
        return result
    return _scalar(text, error)


def _split_flow(inner: str, error) -> list[str]:
    items, start, index = [], 0, 0
    while index < len(inner):
        char = inner[index]
        if char in "\"'":
            end = _quote_end(inner, index)
            if end is None:
                raise error("unterminated quote")
            index = end + 1
            continue
        if char in "[]{}":
            raise error("nested flow collections are not in the subset")
        if char == ",":
            items.append(inner[start:index].strip())
            start = index + 1
        index += 1
    items.append(inner[start:].strip())
    if any(not item for item in items):
        raise error("empty item in a flow collection")
    return items


def _scalar(text: str, error):
    text = text.strip()
    if not text:
        return None
    if text[0] in "\"'":
        end = _quote_end(text, 0)
        if end != len(text) - 1:
            raise error(f"bad quoted scalar {text!r}")
        return _quoted(text, error)
    if text[0] in "&*!|>%@`[]{},":
        raise error(f"{text!r}: anchors, aliases, tags and flow indicators are not in the subset")
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.match(text):
        return int(text)
    if _AMBIGUOUS.match(text):
        raise error(f"{text!r} means different things to different YAML parsers: quote it")
    if ": " in text or text.endswith(":") or " #" in text:
        raise error(f"{text!r}: quote a scalar that contains ': ' or ' #'")
    return text
