"""The programs of examples/ run against a real node and do what their README says."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.stan.conftest import start_stan_node
from tests.support.procs import REPO

pytestmark = pytest.mark.timeout(90)

EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    started = start_stan_node(tmp_path_factory.mktemp("client-examples"), label="examples")
    yield started
    started.kill()


def run(script: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done


def test_hello_publishes_once_a_second_and_starts_from_the_last_received(node):
    first = run("hello.py", "-s", node.url, "-id", "hello-1", "--count", "3",
                "--interval", "0.1").stderr
    assert re.findall(r"published: (hello message \d)", first) == [
        "hello message 1", "hello message 2", "hello message 3"]
    assert re.findall(r"received #(\d+) on foo1: (hello message \d)", first) == [
        ("1", "hello message 1"), ("2", "hello message 2"), ("3", "hello message 3")]
    assert "closed" in first

    # A second run starts with the last message stored, then its own new ones.
    second = run("hello.py", "-s", node.url, "-id", "hello-2", "--count", "1").stderr
    assert re.findall(r"received #(\d+) on foo1: (hello message \d)", second) == [
        ("3", "hello message 3"), ("4", "hello message 1")]


def test_hello_without_a_server_says_why(tmp_path):
    from tests.support.procs import free_port
    url = f"nats://127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, str(EXAMPLES / "hello.py"), "-s", url], cwd=REPO,
                          text=True, capture_output=True, timeout=30)
    assert done.returncode == 1 and "cannot connect: nats: no servers available" in done.stderr
    assert "Traceback" not in done.stderr


def test_worker_queue_does_every_job_once_and_keeps_its_place(node):
    run("worker_queue.py", "-s", node.url, "produce", "--jobs", "6")
    log = run("worker_queue.py", "-s", node.url, "work", "--workers", "2", "--count", "6").stderr
    done = re.findall(r"(worker-\d): job (\d+) done", log)
    assert sorted(int(job) for _, job in done) == [1, 2, 3, 4, 5, 6], log
    assert len({worker for worker, _ in done}) == 2, "both workers got jobs"

    # the pool stopped (closed, not unsubscribed): the next one continues after job 6
    run("worker_queue.py", "-s", node.url, "produce", "--jobs", "2")
    log = run("worker_queue.py", "-s", node.url, "work", "--count", "2").stderr
    assert sorted(int(job) for job in re.findall(r"job (\d+) done", log)) == [1, 2], log
    assert "again" not in log
