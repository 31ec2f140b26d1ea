"""The package boundaries of ARCHITECTURE §5, checked on the source (every import
statement, read with ast): the arrows point one way, the leaves import nothing of
Runnel's, and the pure layers read no clock and touch no socket or event loop."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("broker", "raft", "storage", "chaos")
IMPURE = ("asyncio", "socket", "time", "datetime", "uvloop", "selectors")

# package -> the Runnel packages it may import (prefixes); its own modules always may.
ALLOWED = {
    "storage": (),
    "raft": (),
    "broker/protocol": ("broker.protocol",),
    "broker/state": ("broker.protocol", "storage"),
    "broker/client": ("broker.protocol",),
}
PURE = ("broker/protocol", "broker/state")


def _imports(path: Path) -> list[str]:
    """Absolute module names imported by one file (relative imports resolved)."""
    package = path.relative_to(REPO).parent.parts
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names.append(".".join(base + ((node.module,) if node.module else ())))
            else:
                names.append(node.module or "")
    return names


def _files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_its_layer_may(package):
    own = package.replace("/", ".")
    allowed = ALLOWED[package] + (own,)
    wrong = [(path.name, name) for path in _files(package) for name in _imports(path)
             if name.split(".")[0] in OURS and not name.startswith(allowed)]
    assert wrong == [], f"{package} imports across its boundary: {wrong}"


@pytest.mark.parametrize("package", PURE)
def test_pure_layers_read_no_clock_and_open_no_socket(package):
    wrong = [(path.name, name) for path in _files(package) for name in _imports(path)
             if name.split(".")[0] in IMPURE]
    assert wrong == [], f"{package} is not pure: {wrong}"


def test_the_check_sees_a_violation():
    """The checker itself works: relative imports resolve to their package, and a module
    of the asyncio shell would be flagged under the state machine's rules."""
    assert "broker.protocol.stan" in _imports(REPO / "broker" / "state" / "records.py")
    shell = _imports(REPO / "broker" / "server" / "stan" / "service.py")
    assert "asyncio" in shell
    assert any(name.startswith("broker.server") for name in shell)
    assert not all(name.startswith(ALLOWED["broker/state"]) for name in shell
                   if name.split(".")[0] in OURS)
