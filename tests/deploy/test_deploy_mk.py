"""deploy/deploy.mk: `make compose-up` / `compose-down` run the compose commands of the
guide where a Docker engine answers, and fail with a clear message where none does.
A stub `docker` stands for the engine, so nothing here needs (or starts) Docker."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.deploy.engine import MAKE_TARGETS
from tests.deploy.layout import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def stub_docker(tmp_path, engine_answers: bool):
    log = tmp_path / "docker.log"
    stub = tmp_path / "docker"
    stub.write_text(f"""#!/bin/sh
echo "$*" >> "{log}"
if [ "$1" = info ]; then {"exit 0" if engine_answers else
                          'echo "Cannot connect to the Docker daemon" >&2; exit 1'}; fi
exit 0
""")
    stub.chmod(0o755)
    return stub, log


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-f", "deploy/deploy.mk", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("target", sorted(MAKE_TARGETS))
def test_without_an_engine_the_target_says_so_and_runs_nothing(tmp_path, target):
    docker, log = stub_docker(tmp_path, engine_answers=False)
    proc = make(target, f"DOCKER={docker}")
    assert proc.returncode != 0
    assert f"{target}: no Docker engine answers" in proc.stderr
    assert f"then run 'make {target}' again" in proc.stderr
    assert log.read_text().split("\n")[:-1] == ["info"]


@pytest.mark.parametrize("target", sorted(MAKE_TARGETS))
def test_with_an_engine_the_target_runs_the_guides_compose_command(tmp_path, target):
    docker, log = stub_docker(tmp_path, engine_answers=True)
    proc = make(target, f"DOCKER={docker}")
    assert proc.returncode == 0, proc.stderr
    expected = MAKE_TARGETS[target].removeprefix("docker ")
    assert log.read_text().split("\n")[:-1] == ["info", expected]


def test_the_fragment_does_not_take_the_default_goal(tmp_path):
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"include {REPO}/deploy/deploy.mk\n\nfirst:\n\t@echo first goal\n")
    proc = subprocess.run(["make", "--no-print-directory", "-f", str(makefile)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout == "first goal\n", proc.stderr
