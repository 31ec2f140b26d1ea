"""The operator's guide, deploy/README.md, read as the tests run it: each fenced block that
follows a ``<!-- test: NAME -->`` mark, as a list of command lines (continuations joined,
comments and blank lines dropped)."""
from __future__ import annotations

import re

from tests.deploy.layout import DEPLOY

GUIDE_PATH = DEPLOY / "README.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_MARK = re.compile(r"<!-- test: ([\w-]+) -->\s*\n```")


def text() -> str:
    return GUIDE_PATH.read_text()


def blocks() -> list[tuple[str, str, str | None]]:
    """(language, body, test name or None) of every fenced block, in order."""
    source = text()
    marks = {m.end() - 3: m[1] for m in _MARK.finditer(source)}
    return [(m[1], m[2], marks.get(m.start())) for m in _BLOCK.finditer(source)]


def commands(body: str) -> list[str]:
    lines, pending = [], ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def tested() -> dict[str, list[str]]:
    """Test name -> the command lines of its block."""
    out = {}
    for _language, body, name in blocks():
        if name:
            assert name not in out, f"two blocks marked {name}"
            out[name] = commands(body)
    return out
