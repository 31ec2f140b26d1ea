"""Fixtures shared by every test: real server processes on loopback ports."""
from __future__ import annotations

import pytest

from tests.support.procs import ServerProcess, runnel_process


@pytest.fixture
def runnel_factory(tmp_path):
    """Start Runnel nodes with the given flags; every one is stopped at the end."""
    started: list[ServerProcess] = []

    def start(*flags: str, http: bool = True, **kwargs) -> ServerProcess:
        node = runnel_process(tmp_path, *flags, http=http, name=f"runnel-{len(started)}", **kwargs)
        started.append(node)
        return node.start()

    yield start
    for node in started:
        node.kill()


@pytest.fixture
def runnel(runnel_factory) -> ServerProcess:
    """One Runnel node with monitoring, default options."""
    return runnel_factory()
