"""`runnel pub` and `runnel sub` as subprocesses against a real FILE-store node.

sub is read line by line with deadlines (the Judge harness of tests/stan/conftest.py)
and stopped with SIGINT: it must exit 0 with no traceback. The bad input of the issue:
a node that is down, a plain nats-server, an invalid channel or client ID, bad flags,
Ctrl-C while still connecting.
"""
from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import nats
import pytest

from broker.protocol.stan import errors as texts
from broker.tools.sub import proto_quote
from tests.stan.conftest import CLUSTER, Judge, restart, start_stan_node, wait_stan_ready
from tests.support.procs import REPO, free_port, nats_server_process, runnel_process

pytestmark = pytest.mark.timeout(90)

WAIT = 10.0
LINE = re.compile(r"\[#(\d+)\] Received: sequence:(\d+) subject:\"([^\"]*)\" data:\"(.*)\" "
                  r"timestamp:(\d+) redelivered:(true|false)")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    started = start_stan_node(tmp_path_factory.mktemp("tools-pub-sub"), label="tools")
    yield started
    started.kill()


@pytest.fixture
def procs():
    """Start `runnel sub`-like long-running commands; every one still running is killed."""
    started: list[Judge] = []

    def start(*args: str) -> Judge:
        proc = Judge(f"runnel {args[0]}", [sys.executable, "-m", "broker", *args])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def runnel(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "broker", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout)


def pub(node, channel: str, *messages: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    done = runnel("pub", "-s", node.url, "-id", uid("pub"), *flags, channel, *messages)
    assert done.returncode == 0, done.stderr
    return done


def listening(proc: Judge) -> None:
    proc.wait_until(lambda j: any("Listening on [" in line for line in j.stderr),
                    what="'Listening on' on stderr", fail_on_error=False)


def received(proc: Judge, count: int) -> list[tuple[int, int, str, str, bool]]:
    """The first ``count`` message lines: (index, seq, channel, data, redelivered)."""
    proc.wait_until(lambda j: len(j.lines) >= count, what=f"{count} message lines",
                    fail_on_error=False)
    rows = []
    for line in proc.lines[:count]:
        match = LINE.fullmatch(line)
        assert match, f"not a message line: {line!r}\n{proc.describe()}"
        index, seq, channel, data, _, redelivered = match.groups()
        rows.append((int(index), int(seq), channel, data, redelivered == "true"))
    return rows


def interrupt(proc: Judge) -> None:
    """SIGINT, as Ctrl-C: a clean exit 0 and no traceback."""
    proc.proc.send_signal(signal.SIGINT)
    proc.finish(WAIT)
    assert proc.proc.returncode == 0, proc.describe()
    assert not any("Traceback" in line for line in proc.stderr + proc.lines), proc.describe()
    assert any("Received an interrupt" in line for line in proc.stderr), proc.describe()


# -- pub ------------------------------------------------------------------------------------

def test_pub_prints_what_it_published_and_sub_all_prints_every_message(node, procs):
    channel = uid("foo")
    assert pub(node, channel, "msg one").stdout == f"Published [{channel}] : 'msg one'\n"
    assert pub(node, channel, "msg two", "msg three").stdout.splitlines() == [
        f"Published [{channel}] : 'msg two'", f"Published [{channel}] : 'msg three'"]
    sub = procs("sub", "--all", "-c", CLUSTER, "-id", uid("myID"), "-s", node.url, channel)
    rows = received(sub, 3)
    assert [(i, seq, ch, data, red) for i, seq, ch, data, red in rows] == [
        (1, 1, channel, "msg one", False), (2, 2, channel, "msg two", False),
        (3, 3, channel, "msg three", False)]
    pub(node, channel, "msg four")                       # and what comes afterwards
    assert received(sub, 4)[3][:4] == (4, 4, channel, "msg four")
    interrupt(sub)
    assert any("Connected to " in line and "clientID: [" in line for line in sub.stderr)


def test_pub_async_prints_the_guid_and_its_ack(node):
    channel = uid("async")
    lines = pub(node, channel, "a", "b", flags=("-a",)).stdout.splitlines()
    published = [re.fullmatch(rf"Published \[{channel}\] : '(\w)' \[guid: (\w+)\]", line)
                 for line in lines[:2]]
    assert all(published), lines
    guids = [match.group(2) for match in published]
    assert lines[2:] == [f"Received ACK for guid {guid}" for guid in guids]


def test_sub_start_flags(node, procs):
    channel = uid("opts")
    pub(node, channel, "m1", "m2", "m3", "m4")

    def sequences(*flags: str, count: int) -> list[int]:
        sub = procs("sub", "-s", node.url, "-id", uid("s"), *flags, channel)
        rows = received(sub, count)
        interrupt(sub)
        return [row[1] for row in rows]

    assert sequences("--seq", "3", count=2) == [3, 4]
    assert sequences("--last", count=1) == [4]
    assert sequences("--since", "1m", count=4) == [1, 2, 3, 4]
    assert sequences("--all", count=4) == [1, 2, 3, 4]


def test_sub_new_only_by_default_and_with_new_only(node, procs):
    channel = uid("new")
    pub(node, channel, "old")
    default = procs("sub", "-s", node.url, "-id", uid("s"), channel)
    new_only = procs("sub", "-s", node.url, "-id", uid("s"), "--all", "--new_only", channel)
    listening(default)
    listening(new_only)
    pub(node, channel, "new")
    for sub in (default, new_only):
        assert received(sub, 1)[0][1:4] == (2, channel, "new")
        interrupt(sub)


def test_sub_durable_is_only_closed_on_exit_unless_unsubscribe(node, procs):
    channel, client_id = uid("durable"), uid("dur")
    pub(node, channel, "m1", "m2")
    args = ("sub", "-s", node.url, "-id", client_id, "--all", "--durable", "d")
    first = procs(*args, channel)
    assert [row[1] for row in received(first, 2)] == [1, 2]
    interrupt(first)                                   # closed: the durable stays
    pub(node, channel, "m3")
    resumed = procs(*args, "--unsubscribe", channel)
    assert [row[1] for row in received(resumed, 1)] == [3]
    time.sleep(0.3)
    assert len(resumed.lines) == 1, resumed.describe()
    interrupt(resumed)                                 # unsubscribed: forgotten
    fresh = procs(*args, channel)
    assert [row[1] for row in received(fresh, 3)] == [1, 2, 3]
    interrupt(fresh)


def test_sub_queue_group_members_share_the_messages(node, procs):
    channel = uid("queue")
    members = [procs("sub", "-s", node.url, "-id", uid("q"), "--qgroup", "workers", channel)
               for _ in range(2)]
    for member in members:
        listening(member)
    pub(node, channel, *[f"job-{i}" for i in range(1, 7)])
    deadline = time.monotonic() + WAIT
    while sum(len(m.lines) for m in members) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    seqs = sorted(int(LINE.fullmatch(line).group(2)) for m in members for line in m.lines)
    assert seqs == [1, 2, 3, 4, 5, 6]
    for member in members:
        interrupt(member)


def test_sub_escapes_data_as_go_s_text_format(node, procs):
    channel = uid("bytes")
    pub(node, channel, 'quote " backslash \\ tab\tnewline\n é')
    sub = procs("sub", "-s", node.url, "-id", uid("s"), "--all", channel)
    line = sub.wait_line("Received:")
    assert 'data:"quote \\" backslash \\\\ tab\\tnewline\\n \\303\\251"' in line
    interrupt(sub)
    assert proto_quote(b"\x00\x7f~") == '"\\000\\177~"'


# -- bad input ------------------------------------------------------------------------------

def test_a_node_that_is_down_is_a_clear_error_naming_the_cluster(tmp_path):
    url = f"nats://127.0.0.1:{free_port()}"
    for tool, args in (("pub", ("foo", "x")), ("sub", ("foo",))):
        started = time.monotonic()
        done = runnel(tool, "-s", url, *args)
        assert time.monotonic() - started < 8
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert "Can't connect: nats: no servers available for connection" in done.stderr
        assert repr(CLUSTER) in done.stderr and url in done.stderr


def test_a_plain_nats_server_is_a_connect_request_timeout(tmp_path):
    server = nats_server_process(tmp_path).start()
    try:
        for tool, args in (("pub", ("foo", "x")), ("sub", ("foo",))):
            done = runnel(tool, "-s", server.url, "-c", "some-cluster", *args)
            assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
            assert f"Can't connect: {texts.CONNECT_REQUEST_TIMEOUT}" in done.stderr
            assert "'some-cluster'" in done.stderr
    finally:
        server.kill()


def test_invalid_names_surface_the_server_s_text(node):
    done = runnel("pub", "-s", node.url, "-id", uid("p"), "foo..bar", "x")
    assert (done.returncode, done.stderr) == (1, f"Error during publish: {texts.INVALID_PUBLISH_REQUEST}\n")
    done = runnel("sub", "-s", node.url, "-id", uid("s"), "foo*")
    assert done.returncode == 1 and f"Can't subscribe: {texts.INVALID_SUBJECT}\n" in done.stderr
    done = runnel("pub", "-s", node.url, "-id", "not.valid", "foo", "x")
    assert done.returncode == 1 and f"Can't connect: {texts.INVALID_CLIENT_ID}." in done.stderr
    for result in (done,):
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args,text", [
    (("pub", "-x", "foo", "m"), "flag provided but not defined: -x"),
    (("pub", "foo"), "a channel and at least one message are needed"),
    (("pub", "-id"), "flag needs an argument: -id"),
    (("sub",), "exactly one channel is needed"),
    (("sub", "foo", "--all"), "unexpected arguments after the channel: --all"),
    (("sub", "--since", "90", "foo"), 'time: missing unit in duration "90"'),
    (("sub", "--seq", "x", "foo"), 'invalid value "x" for flag -seq'),
])
def test_bad_flags_are_exit_status_2_with_the_usage(args, text):
    done = runnel(*args)
    assert done.returncode == 2, done.stderr
    assert text in done.stderr and "usage: runnel " + args[0] in done.stderr
    assert "Traceback" not in done.stderr


def test_help_is_exit_0_on_stdout():
    for tool in ("pub", "sub"):
        done = runnel(tool, "-h")
        assert done.returncode == 0 and done.stdout.startswith(f"usage: runnel {tool}")


def test_ctrl_c_while_connecting_exits_without_a_traceback(tmp_path, procs):
    """A discover subject that never answers: sub is still connecting when Ctrl-C comes."""
    server = nats_server_process(tmp_path)
    asked = threading.Event()
    loop = asyncio.new_event_loop()

    async def hold_discover() -> nats.NATS:
        nc = await nats.connect(server.url)

        async def ignore(msg) -> None:
            asked.set()

        await nc.subscribe(f"_STAN.discover.{CLUSTER}", cb=ignore)
        await nc.flush()
        return nc

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    silent = None
    try:
        server.start()
        silent = loop.run_until_complete(hold_discover())
        thread.start()
        sub = procs("sub", "-s", server.url, "foo")
        assert asked.wait(WAIT), sub.describe()         # its ConnectRequest is pending
        sub.proc.send_signal(signal.SIGINT)
        sub.finish(WAIT)
        assert sub.proc.returncode == 130, sub.describe()
        assert not any("Traceback" in line for line in sub.stderr), sub.describe()
    finally:
        if thread.is_alive():
            asyncio.run_coroutine_threadsafe(silent.close(), loop).result(WAIT)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(WAIT)
        loop.close()
        server.kill()


def test_sub_exits_1_when_the_server_forgets_the_session(tmp_path, procs):
    """A MEMORY-store node restarted: sub's next PING (every 5 s, stan.go's default) is
    answered "client has been replaced or is no longer registered": exit 1, that text."""
    node = runnel_process(tmp_path, name="memory")
    try:
        wait_stan_ready(node.start())
        sub = procs("sub", "-s", node.url, "-id", uid("s"), "foo")
        listening(sub)
        node.kill()
        restart(node)
        sub.finish(15)
        assert sub.proc.returncode == 1, sub.describe()
        assert f"Connection lost, reason: {texts.CLIENT_REPLACED}" in sub.stderr, sub.describe()
        assert not any("Traceback" in line for line in sub.stderr), sub.describe()
    finally:
        node.kill()
