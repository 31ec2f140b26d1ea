"""Determinism (ARCHITECTURE §2): hypothesis builds random command logs (connects,
publishes to a few channels, subscribes of every kind, acks of delivered sequences,
unsubscribes and closes, client closes, expiry and channel deletion). The same log is
applied

* in this process, on a MemoryStore, checking the model's invariants after every entry;
* in two worker processes (replay_worker.py) started with different PYTHONHASHSEED
  values, each on an LmdbStore, straight through and with a restart (store closed and
  reopened, model reloaded) part way;

and the canonical dumps (results, effects, model, every table and record of the store,
sorted) must be identical byte for byte.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.protocol.stan import First
from broker.state import effects as fx
from storage import MemoryStore
from tests.state.statekit import (GEN_LIMITS, NS, REPO, Harness, check_model, limits,
                                  replay)

WORKER = Path(__file__).with_name("replay_worker.py")
HASH_SEEDS = ("1", "2718281")
CLIENTS = ["c1", "c2", "c3"]
CHANNELS = ["a", "a", "a", "b", "b", "c", "A"]   # "A" conflicts with "a"; 3 channels max
KINDS = (["publish"] * 6 + ["subscribe"] * 4 + ["ack"] * 4 + ["connect"] * 2 +
         ["unsubscribe"] * 3 + ["resume"] * 2 +
         ["close_client", "expire", "delete_channel", "tick"])


class Worker:
    def __init__(self, seed: str):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, request: dict) -> None:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> None:
        line = self.proc.stdout.readline()
        assert line == "ok\n", line.replace("\\n", "\n")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def workers():
    started = [Worker(seed) for seed in HASH_SEEDS]
    yield started
    for worker in started:
        worker.close()


def build_log(data) -> list[tuple[int, bytes]]:
    """Draw a command log step by step, looking at an in-process machine to ack what
    was really delivered and to close subscriptions that really exist."""
    h = Harness(MemoryStore(), limits(**GEN_LIMITS))
    conns: dict[str, bytes] = {}
    subs: list[tuple[str, str, str, str]] = []        # (cid, channel, inbox, ack inbox)
    sent: dict[str, set[int]] = {}                     # ack inbox -> delivered seqs
    by_id: dict[int, str] = {}
    draw = data.draw

    def seconds() -> int:
        return h.tick(draw(st.integers(-2, 8), label="dt"))

    def record(applied) -> None:
        for effect in applied.effects:
            if isinstance(effect, fx.SubOpened):
                by_id[effect.sub_id] = effect.ack_inbox
            elif isinstance(effect, fx.MsgsDelivered):
                sent.setdefault(by_id[effect.sub_id], set()).update(
                    seq for seq, _ in effect.records)
        check_model(h.sm)

    for cid in CLIENTS:                                # a prelude: everybody connected
        h.connect(cid, f"{cid}-0".encode())
        conns[cid] = f"{cid}-0".encode()
    group_dur = draw(st.sampled_from(["", "d"]), label="group durable")
    for cid in CLIENTS:                                # ... and most in one queue group
        if draw(st.integers(0, 3), label="member"):
            name = f"pre.{cid}"
            record(h.subscribe(cid, "a", name, q="g", dur=group_dur,
                               mif=draw(st.integers(1, 6)), sp=First))
            subs.append((cid, "a", f"in.{name}", f"ack.{name}"))
    for step in range(1, draw(st.integers(10, 60), label="steps")):
        kind = draw(st.sampled_from(KINDS), label="kind")
        cid = draw(st.sampled_from(CLIENTS), label="cid")
        if kind == "connect":
            conn = draw(st.sampled_from([b"", f"{cid}-{step}".encode()]))
            applied = h.connect(cid, conn, replace=draw(st.booleans()), proto=int(bool(conn)))
            if applied.result is None:
                conns[cid] = conn
        elif kind == "close_client":
            applied = h.close_client(cid)
        elif kind == "publish":
            msgs = []
            for _ in range(draw(st.integers(1, 5))):
                who = draw(st.sampled_from(CLIENTS * 3 + ["ghost"]))
                conn = draw(st.sampled_from([conns.get(who, b"")] * 4 + [b"", b"bogus"]))
                msgs.append([who, conn, draw(st.sampled_from(CHANNELS)), "",
                             b"x" * draw(st.integers(0, 60))])
            applied = h.publish_batch(msgs, now=seconds())
        elif kind == "subscribe":
            q = draw(st.sampled_from(["", "", "g", "g", "g", "h"]))
            dur = draw(st.sampled_from(["", "", "d", "d", "bad:x"] if q else ["", "d", "e"]))
            channel = draw(st.sampled_from(CHANNELS))
            now = seconds()
            name = f"{step}"
            applied = h.subscribe(cid, channel, name, q=q, dur=dur,
                                  mif=draw(st.integers(1, 6)), sp=draw(st.integers(0, First)),
                                  seq=draw(st.integers(0, 9)),
                                  delta=draw(st.integers(0, 30)) * NS, now=now)
            if applied.result is None:
                subs.append((cid, channel, f"in.{name}", f"ack.{name}"))
        elif kind == "resume":                         # an offline durable or a shadow
            offline = [(name, sub) for name in sorted(h.sm.channels)
                       for sub in h.sm.channels[name].subs.values() if sub.offline]
            if not offline:
                continue
            channel, sub = draw(st.sampled_from(offline))
            dur, _, q = sub.queue.partition(":") if sub.queue else (sub.durable_name, "", "")
            name = f"{step}"
            if sub.client_id not in h.sm.clients:
                conns[sub.client_id] = f"{sub.client_id}-{step}".encode()
                record(h.connect(sub.client_id, conns[sub.client_id]))
            applied = h.subscribe(sub.client_id if not q else cid, channel, name, q=q, dur=dur,
                                  mif=draw(st.integers(1, 4)), now=seconds())
            if applied.result is None:
                subs.append((applied.effects[0].client_id, channel, f"in.{name}", f"ack.{name}"))
        elif kind == "ack":
            if not subs:
                continue
            _, channel, _, ack = draw(st.sampled_from(subs))
            known = sorted(sent.get(ack, ()))
            if draw(st.booleans()):
                seqs = list(known)                     # everything it was ever sent
            else:
                seqs = draw(st.lists(st.sampled_from(known), max_size=6)) if known else []
            seqs += draw(st.lists(st.integers(0, 30), max_size=1))
            if draw(st.integers(0, 9)) == 0:
                channel = draw(st.sampled_from(CHANNELS))
            applied = h.ack(ack, channel, seqs)
        elif kind == "unsubscribe":
            if not subs:
                continue
            owner, channel, inbox, ack = draw(st.sampled_from(subs))
            who = owner if draw(st.integers(0, 5)) else cid
            which = ack if draw(st.integers(0, 3)) else inbox
            applied = h.unsubscribe(who, channel, which, close=draw(st.booleans()))
        elif kind == "expire":
            applied = h.expire(now=seconds())
        elif kind == "delete_channel":
            names = sorted(h.sm.channels)
            if not names:
                continue
            name = draw(st.sampled_from(names))
            channel_id = h.sm.channels[name].channel_id + draw(st.sampled_from([0, 0, 0, 1]))
            applied = h.delete_channel(name, channel_id, now=seconds())
        else:
            h.tick(draw(st.integers(1, 30)))
            continue
        record(applied)
    return h.log


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_same_log_same_everything_across_processes_and_restarts(workers, tmp_path_factory, data):
    log = build_log(data)
    if not log:
        return
    cut = data.draw(st.integers(1, len(log)), label="restart at")
    tmp = tmp_path_factory.mktemp("det")
    log_path = tmp / "log.msgpack"
    log_path.write_bytes(msgpack.packb(log, use_bin_type=True))
    for number, worker in enumerate(workers):
        worker.send({"log": str(log_path), "out": str(tmp / f"w{number}"), "cut": cut})
    # meanwhile, here: a MemoryStore, straight and restarted at the same point
    stores = [MemoryStore(), MemoryStore()]
    here = replay(lambda reopen: stores[0], log)
    here_restart = replay(lambda reopen: stores[1], log, cut)
    for worker in workers:
        worker.answer()
    dumps = {f"w{n}.{mode}": (tmp / f"w{n}.{mode}").read_bytes()
             for n in range(len(workers)) for mode in ("straight", "restart")}
    dumps["here.memory"] = here
    dumps["here.memory.restart"] = here_restart
    reference = dumps["w0.straight"]
    differ = [name for name, dump in dumps.items() if dump != reference]
    assert not differ, _first_difference(reference, {n: dumps[n] for n in differ})


def _first_difference(reference: bytes, others: dict[str, bytes]) -> str:
    out = []
    ref = json.loads(reference)
    for name, dump in others.items():
        other = json.loads(dump)
        for key in ref:
            if ref[key] != other.get(key):
                out.append(f"{name} differs from w0.straight in {key!r}")
                if isinstance(ref[key], list):
                    for i, (x, y) in enumerate(zip(ref[key], other[key])):
                        if x != y:
                            out.append(f"  first at [{i}]: {x!r}\n  vs {y!r}")
                            break
    return "\n".join(out)


def test_workers_really_use_different_hash_seeds():
    outs = set()
    for seed in HASH_SEEDS:
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", "print(hash('runnel'))"], env=env,
                                capture_output=True, text=True, check=True).stdout)
    assert len(outs) == len(HASH_SEEDS)
