"""A writer killed with SIGKILL in the middle of many write transactions
leaves a consistent store whose last_applied_index is the last committed
batch, with every effect of that batch and nothing of the next one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

import storage
from storage import ChannelStats, LmdbStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(storage.__file__)))
PER_BATCH = 200
KEEP = 3000

CHILD = textwrap.dedent(f"""
    import sys
    from storage import LmdbStore
    store = LmdbStore(sys.argv[1], sync=True, map_size_initial=64 << 10)
    with store.read() as r:
        start = r.get_last_applied_index() + 1
    for i in range(start, start + 100_000):
        with store.write() as txn:
            chan = txn.get_channel("a")
            cid = chan.channel_id if chan else txn.create_channel("a", b"")
            first = (i - 1) * {PER_BATCH} + 1
            txn.append_messages(cid, [(s, b"%d" % s * 20)
                                      for s in range(first, first + {PER_BATCH})])
            txn.trim_messages(cid, msgs_max={KEEP})
            txn.put_client("c", b"%d" % i)
            txn.put_subscription(cid, 1, b"%d" % i)
            if i % 10 == 0:
                tmp = txn.create_channel("tmp%d" % i, b"")
                txn.append_messages(tmp, [(s, b"t") for s in range(1, 51)])
                old = txn.get_channel("tmp%d" % (i - 10))
                if old:
                    txn.delete_channel(old.channel_id)
            txn.set_last_applied_index(i)
        print(i, flush=True)
""")


def _run_and_kill(path: str, kill_after: int) -> int:
    """Run the writer until it has reported ``kill_after`` more commits,
    SIGKILL it, and return the last index it reported as committed."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path], env=env,
                            stdout=subprocess.PIPE, text=True)
    reported = 0
    try:
        for count, line in enumerate(proc.stdout, 1):
            if count >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(10)
        # every report written before the kill is still in the pipe
        for line in [line] + proc.stdout.readlines():
            reported = int(line)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return reported


def _check_state(store: LmdbStore, index: int) -> None:
    with store.read() as r:
        assert r.get_last_applied_index() == index
        chan = r.get_channel("a")
        last = index * PER_BATCH
        msgs = min(last, KEEP)
        nbytes = sum(len(b"%d" % s * 20) for s in range(last - msgs + 1, last + 1))
        assert chan.stats == ChannelStats(last - msgs + 1, last, msgs, nbytes)
        assert r.get_message(chan.channel_id, last) == b"%d" % last * 20
        assert r.get_message(chan.channel_id, last + 1) is None
        assert r.get_client("c") == b"%d" % index
        assert r.get_subscription(chan.channel_id, 1) == b"%d" % index
        tmps = [c.name for c in r.list_channels() if c.name.startswith("tmp")]
        assert tmps == ([f"tmp{index // 10 * 10}"] if index >= 10 else [])


def test_sigkill_mid_writes_leaves_last_committed_batch(tmp_path):
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    path = str(tmp_path / "s")
    for _round in range(3):
        reported = _run_and_kill(path, rnd.randrange(20, 120))
        store = LmdbStore(path)
        try:
            store.check()
            with store.read() as r:
                index = r.get_last_applied_index()
            # the kill may land after a commit and before its report
            assert reported <= index <= reported + 1, f"seed {seed}"
            _check_state(store, index)
        finally:
            store.close()
