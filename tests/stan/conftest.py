"""Fixtures for the STAN compatibility suite: real Runnel nodes judged by real clients.

The judges are the official clients, run as separate processes that print one
JSON object per line (see tests/stan/README.md):
  node  - node-nats-streaming 0.3.2   tests/js/stan/{pub,sub}.js
  py    - stan.py (asyncio-nats-streaming 0.4.0) in .venv-stanpy   tests/stanpy/{pub,sub}.py
  c     - Debian's libnats streaming API   build/stan_judge (tests/c/stan_judge.c)
`make judges` installs all three.

Every wait polls an observable condition with a deadline; nothing sleeps blindly.
The few "quiet" windows assert that nothing more arrives within a bounded time.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.support.procs import REPO, ServerProcess, runnel_process

NODE = shutil.which("node") or "node"
JS_JUDGES = REPO / "tests" / "js" / "stan"
STANPY_PY = REPO / ".venv-stanpy" / "bin" / "python"
STANPY_JUDGES = REPO / "tests" / "stanpy"
C_JUDGE = REPO / "build" / "stan_judge"
COMPAT_DIR = REPO.parent / "shared" / "compat"

CLUSTER = "test-cluster"
#: How long a judge may take to show a result we wait for.
WAIT = 10.0

INSTALL_HINT = "run `make judges` (tests/judges.mk) to install the STAN judges"


def _check_installed(kind: str) -> None:
    missing = {
        "node": not (JS_JUDGES.parent / "node_modules" / "node-nats-streaming").is_dir()
        or not (JS_JUDGES.parent / "node_modules" / "minimist").is_dir(),
        "py": not STANPY_PY.exists(),
        "c": not C_JUDGE.exists(),
    }[kind]
    if missing:
        pytest.fail(f"the {kind} STAN judge is not installed: {INSTALL_HINT}", pytrace=False)


class Judge:
    """A running judge: JSON events read from its stdout, commands written to its stdin."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None):
        self.name = name
        self.argv = argv
        self.lines: list[str] = []     # every stdout line
        self.events: list[dict] = []   # the lines that are JSON objects
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, text=True, bufsize=1,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, stream, is_stdout: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            with self._cond:
                if is_stdout:
                    self.lines.append(line)
                    if line.startswith("{"):
                        try:
                            self.events.append(self._event(json.loads(line)))
                        except ValueError:
                            pass
                else:
                    self.stderr.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _event(self, event: dict) -> dict:
        """A JSON line as it is kept (subclasses may add to it)."""
        return event

    # ---- what it printed -------------------------------------------------
    def of(self, event: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e.get("event") == event]

    @property
    def msgs(self) -> list[dict]:
        return self.of("msg")

    @property
    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.msgs]

    @property
    def errors(self) -> list[str]:
        return [e.get("error") for e in self.of("error")]

    @property
    def acks(self) -> list[dict]:
        return self.of("ack")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> str:
        with self._cond:
            out = "\n    ".join(self.lines[-60:])
            err = "\n    ".join(self.stderr[-20:])
        return (f"judge {self.name} (exit {self.proc.poll()}): {' '.join(map(str, self.argv))}\n"
                f"  stdout:\n    {out}\n  stderr:\n    {err}")

    # ---- waiting ---------------------------------------------------------
    def wait_until(self, condition, timeout: float = WAIT, what: str = "condition",
                   fail_on_error: bool = True):
        """Until ``condition(self)`` is truthy. Fails early if the judge exits, or prints an
        error event when ``fail_on_error``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = condition(self)
                if value:
                    return value
                if fail_on_error and any(e.get("event") == "error" for e in self.events):
                    break
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.05))
        value = condition(self)
        if value:
            return value
        pytest.fail(f"waiting for {what}:\n{self.describe()}", pytrace=False)

    def wait_event(self, event: str, timeout: float = WAIT, **kw) -> dict:
        return self.wait_until(lambda j: (j.of(event) or [None])[0], timeout,
                               what=f"event {event!r}", **kw)

    def wait_msgs(self, n: int, timeout: float = WAIT) -> list[dict]:
        self.wait_until(lambda j: len(j.msgs) >= n, timeout, what=f"{n} messages")
        return self.msgs

    def wait_line(self, text: str, timeout: float = WAIT) -> str:
        return self.wait_until(lambda j: next((l for l in j.lines if text in l), None), timeout,
                               what=f"a line containing {text!r}", fail_on_error=False)

    def quiet(self, seconds: float) -> list[dict]:
        """Observe for ``seconds``: fail if a message beyond those already seen arrives."""
        before = len(self.msgs)
        deadline = time.monotonic() + seconds
        with self._cond:
            while True:
                arrived = sum(1 for e in self.events if e.get("event") == "msg") != before
                left = deadline - time.monotonic()
                if arrived or left <= 0:
                    break
                self._cond.wait(left)
        msgs = self.msgs
        if len(msgs) != before:
            pytest.fail(f"expected no more messages for {seconds}s after {before}, got "
                        f"{[m['seq'] for m in msgs[before:]]}:\n{self.describe()}", pytrace=False)
        return msgs

    def finish(self, timeout: float = WAIT) -> "Judge":
        """Wait for the judge to exit by itself (it always does, by its deadline)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"judge did not exit within {timeout}s:\n{self.describe()}", pytrace=False)
        for t in self._threads:
            t.join(timeout)
        return self

    # ---- driving it ------------------------------------------------------
    def send(self, command: str) -> None:
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pytest.fail(f"cannot send {command!r}, the judge has exited:\n{self.describe()}", pytrace=False)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)

    def terminate(self, timeout: float = WAIT) -> "Judge":
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def expect_ok(self) -> "Judge":
        """The judge exited 0 and printed no error event."""
        self.finish()
        assert self.proc.returncode == 0 and not self.errors, self.describe()
        return self

    def expect_error(self, text: str, stage: str | None = None) -> "Judge":
        """The judge printed an error event whose text contains ``text``."""
        self.wait_until(lambda j: any(text in (e or "") for e in j.errors), fail_on_error=False,
                        what=f"an error containing {text!r}")
        if stage is not None:
            stages = [e.get("stage") for e in self.of("error") if text in (e.get("error") or "")]
            assert stage in stages, self.describe()
        return self


def _flags(**options) -> list[str]:
    argv: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


class Judges:
    """Starts judges against a node; every judge still running at the end is killed."""

    def __init__(self):
        self.started: list[Judge] = []
        self._stanpy_env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
        if COMPAT_DIR.is_dir():
            self._stanpy_env["PYTHONPATH"] = os.pathsep.join(
                [str(COMPAT_DIR)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
            self._stanpy_env["RUNNEL_COMPAT_DIR"] = str(COMPAT_DIR)

    def _start(self, name: str, argv: list[str], env=None) -> Judge:
        judge = Judge(name, argv, env)
        self.started.append(judge)
        return judge

    def _argv(self, kind: str, script: str, options: dict) -> tuple[list[str], dict | None]:
        _check_installed(kind)
        if kind == "node":
            return [NODE, str(JS_JUDGES / f"{script}.js")] + _flags(**options), None
        if kind == "py":
            return [str(STANPY_PY), str(STANPY_JUDGES / f"{script}.py")] + _flags(**options), self._stanpy_env
        raise ValueError(f"no {script} judge of kind {kind!r}")

    def pub(self, kind: str, url: str, client: str, channel: str | None = None, *,
            count: int = 1, deadline: int = 15000, **options) -> Judge:
        """Start a publisher (pub.js / pub.py); options: data, first, sync, hold, then, pub_ack_wait."""
        argv, env = self._argv(kind, "pub", dict(url=url, client=client, channel=channel,
                                                 count=count, deadline=deadline, **options))
        return self._start(f"{kind}-pub {client}", argv, env)

    def publish(self, kind: str, url: str, client: str, channel: str, count: int = 1,
                **options) -> Judge:
        """Publish and wait for every PubAck: all must succeed."""
        judge = self.pub(kind, url, client, channel, count=count, **options).finish(30)
        oks = [a for a in judge.acks if not a.get("error")]
        assert len(oks) == count and judge.proc.returncode == 0, judge.describe()
        return judge

    def sub(self, kind: str, url: str, client: str, channel: str, *, ready: bool = True,
            deadline: int = 20000, **options) -> Judge:
        """Start a subscriber (sub.js / sub.py) and, with ``ready``, wait until the server
        accepted the subscription. options: start, durable, queue, ack, ack_wait,
        max_inflight, count, then."""
        argv, env = self._argv(kind, "sub", dict(url=url, client=client, channel=channel,
                                                 deadline=deadline, **options))
        judge = self._start(f"{kind}-sub {client}", argv, env)
        if ready:
            judge.wait_event("ready")
        return judge

    def c(self, url: str, client: str, channel: str | None = None, *, deadline: int = 10000,
          **options) -> Judge:
        """The libnats judge: options pub=N, data, sub=N, start, durable."""
        _check_installed("c")
        argv = [str(C_JUDGE)] + _flags(url=url, client=client, channel=channel,
                                       deadline=deadline, **options)
        return self._start(f"c {client}", argv)

    def node_script(self, path: Path, *args: str) -> Judge:
        """Any node program (the examples), its output read line by line."""
        _check_installed("node")
        return self._start(f"node {path.name}", [NODE, str(path), *args])

    def close(self) -> None:
        for judge in self.started:
            judge.kill()


@pytest.fixture
def judges():
    made = Judges()
    yield made
    made.close()


@pytest.fixture
def name():
    """``name(prefix)``: a client ID / channel name unique to this test."""
    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"
    return make


async def _discover_answers(url: str, timeout: float) -> bool:
    import nats  # nats-py, the core client of the main venv
    from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

    deadline = time.monotonic() + timeout
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        while time.monotonic() < deadline:
            try:
                # An empty ConnectRequest has no heartbeat inbox: the server answers
                # "stan: invalid connection request" and registers nothing.
                await nc.request(f"_STAN.discover.{CLUSTER}", b"", timeout=0.25)
                return True
            except NoRespondersError:
                await asyncio.sleep(0.02)
            except NatsTimeout:
                pass
        return False
    finally:
        await nc.close()


def wait_stan_ready(node: ServerProcess, timeout: float = 10.0) -> ServerProcess:
    """The port opens before the streaming service answers: wait for its discover subject
    (a client's ConnectRequest sent earlier would be lost and time out after 2 s)."""
    if not asyncio.run(_discover_answers(node.url, timeout)):
        pytest.fail(f"the node's STAN service did not answer on _STAN.discover.{CLUSTER} "
                    f"within {timeout}s:\n{node.log_text()[-3000:]}", pytrace=False)
    return node


def start_stan_node(tmp_path: Path, *flags: str, label: str = "stan") -> ServerProcess:
    """A Runnel node with a FILE store under ``tmp_path`` (flags as nats-streaming-server),
    started and serving STAN."""
    data = tmp_path / f"{label}-data"
    node = runnel_process(tmp_path, "-st", "file", "-dir", str(data), *flags, name=label)
    node.data_dir = data
    return wait_stan_ready(node.start())


def restart(node: ServerProcess) -> ServerProcess:
    """Start a stopped or killed node again (same port, flags and data) and wait for STAN."""
    return wait_stan_ready(node.start())


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory):
    """One FILE-store node for a whole module. Tests on it use their own client IDs and
    channels (the ``name`` fixture), so they stay independent."""
    tmp = tmp_path_factory.mktemp("stan-node")
    node = start_stan_node(tmp, label="shared")
    yield node
    node.kill()


@pytest.fixture
def stan(shared_node) -> ServerProcess:
    """The module's shared node, checked alive before the test uses it."""
    if not shared_node.alive():
        pytest.fail(f"the shared Runnel node died earlier in this module:\n{shared_node.log_text()[-3000:]}",
                    pytrace=False)
    return shared_node


@pytest.fixture
def stan_factory(tmp_path):
    """``stan_factory(*flags)``: a node of this test alone (FILE store), killed at the end."""
    started: list[ServerProcess] = []

    def start(*flags: str) -> ServerProcess:
        node = start_stan_node(tmp_path, *flags, label=f"stan-{len(started)}")
        started.append(node)
        return node

    start.restart = restart
    yield start
    for node in started:
        node.kill()


@pytest.fixture(params=["node", "py"])
def client(request) -> str:
    """The two scriptable official clients: node-nats-streaming and stan.py."""
    return request.param
