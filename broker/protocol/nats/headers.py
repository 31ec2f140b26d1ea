"""NATS message headers (HPUB/HMSG): the `NATS/1.0` block, parsed and built.

The block is ``NATS/1.0[ <status>[ <description>]]\\r\\n`` then ``Name: Value\\r\\n``
lines, then an empty ``\\r\\n``. Names keep their case; a name may repeat.
"""
from __future__ import annotations

VERSION_LINE = b"NATS/1.0"
NO_RESPONDERS = b"NATS/1.0 503\r\n\r\n"  # the 16-byte block of the no-responders reply


class HeaderError(ValueError):
    pass


def parse_headers(block: bytes) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """Return (status, description, [(name, value), ...]) of a header block."""
    if not block.startswith(VERSION_LINE) or not block.endswith(b"\r\n\r\n"):
        raise HeaderError("header block must start with NATS/1.0 and end with an empty line")
    lines = block[:-4].split(b"\r\n")
    try:
        status, description = _status_line(lines[0][len(VERSION_LINE):])
        pairs = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                raise HeaderError(f"malformed header line {line[:40]!r}")
            pairs.append((name.strip().decode(), value.strip().decode()))
    except UnicodeDecodeError as exc:
        raise HeaderError(f"header block is not UTF-8: {exc}") from None
    return status, description, pairs


def _status_line(rest: bytes) -> tuple[str | None, str | None]:
    rest = rest.strip()
    if not rest:
        return None, None
    code, _, description = rest.partition(b" ")
    if len(code) != 3 or not code.isdigit():
        raise HeaderError(f"bad status {code[:10]!r}")
    return code.decode(), (description.decode() or None)


def build_headers(pairs: list[tuple[str, str]], status: str | None = None,
                  description: str | None = None) -> bytes:
    first = VERSION_LINE.decode()
    if status:
        first += " " + status + (" " + description if description else "")
    lines = [first] + [f"{name}: {value}" for name, value in pairs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
