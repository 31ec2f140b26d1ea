"""Golden fixtures of the replicated log (ARCHITECTURE §2): old logs must still replay.

``golden/v<N>.json`` holds commands encoded at format version N, one or more of EVERY op,
as the bytes that went into the Raft log, together with the body each decodes to, the
result and the effects of applying them in order on a fresh store, and the final
content of the store (every table and record). The test proves that today's code still
decodes those exact bytes to the same bodies and applies them with the same results,
effects and store content, on a MemoryStore and on an LmdbStore.

Never edit or regenerate an existing v<N>.json: it is what a log written by that version
contains. To add a version after changing an op's body or meaning:
  1. bump ``envelope.FORMAT_VERSION`` and teach ``envelope.decode`` to keep reading every
     older version (this test fails until it does);
  2. extend ``golden_commands`` below if an op was added or a body changed;
  3. run ``PYTHONPATH=. .venv/bin/python tests/state/test_golden.py`` from the repository
     root: it writes golden/v<FORMAT_VERSION>.json, and refuses to overwrite a file.
If a behaviour change legitimately alters what an OLD command does (a fixed bug), the
old file's expectations may only change together with a note in broker/DESIGN.md saying
why replaying an old log now ends differently.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from broker.protocol.stan import First, LastReceived
from broker.state import envelope
from storage import LmdbStore, MemoryStore
from tests.state.statekit import (NS, T0, Harness, limits, plain, store_dump, unplain)

GOLDEN = Path(__file__).with_name("golden")
LIMITS = dict(max_channels=10, max_msgs=4, max_age_s=10, max_inactivity_s=5)


def golden_commands(h: Harness) -> None:
    """The history recorded in the golden files (every op at least once)."""
    h.connect("c1", b"conn-1")
    h.connect("c2", b"", proto=0, node="n2")
    h.connect("c1", b"conn-1b", replace=True)
    h.subscribe("c1", "foo", "p", sp=First, mif=2, now=T0 + 1 * NS)
    h.subscribe("c2", "foo", "q", q="grp", dur="dur", sp=LastReceived, now=T0 + 2 * NS)
    h.subscribe("c2", "foo", "d", dur="plain", now=T0 + 2 * NS)
    h.publish_batch([["c1", b"conn-1b", "foo", "", b"one"],
                     ["c2", b"", "foo", "reply.x", b"two"],
                     ["c1", b"conn-1", "foo", "", b"stale conn"],
                     ["c1", b"conn-1b", "bar", "", b"\x00\xff"],
                     ["c1", b"conn-1b", "foo", "", b"three"]], now=T0 + 3 * NS)
    h.acks([["ack.p", "foo", [1, 9]], ["ack.q", "foo", [2]]])
    h.unsubscribe("c2", "foo", "ack.d", close=True)
    h.publish("c1", "foo", b"4", b"5", b"6", conn=b"conn-1b", now=T0 + 4 * NS)
    h.close_client("c2")
    h.unsubscribe("c1", "foo", "in.p")
    h.expire(now=T0 + 13 * NS + 1)
    h.delete_channel("bar", now=T0 + 20 * NS)
    h.subscribe("c1", "foo", "q2", q="grp", dur="dur", now=T0 + 21 * NS)
    h.move_client("c1", "n2")


def _record(version: int) -> dict:
    h = Harness(MemoryStore(), limits(**LIMITS))
    golden_commands(h)
    effects = dict(h.all_effects)
    entries = []
    for index, command in h.log:
        op, body = envelope.decode(command)
        entries.append({"index": index, "op": op, "op_name": envelope.OP_NAMES[op],
                        "command": command.hex(), "body": plain(body)})
    # results come from a second, identical run (the harness keeps no results)
    results = _apply(MemoryStore(), entries)[0]
    for entry, result in zip(entries, results):
        entry["result"] = plain(result)
        entry["effects"] = plain(effects.get(entry["index"], []))
    return {"format_version": version, "limits": LIMITS, "entries": entries,
            "store": plain(store_dump(h.store))}


def _apply(store, entries) -> tuple[list, list, dict]:
    h = Harness(store, limits(**LIMITS))
    results = [h.apply_raw(bytes.fromhex(e["command"]), e["index"]).result for e in entries]
    return results, h.all_effects, store_dump(store)


def _golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("v*.json"))


def test_there_is_a_golden_file_for_the_current_version():
    assert (GOLDEN / f"v{envelope.FORMAT_VERSION}.json").exists()


@pytest.mark.parametrize("path", _golden_files(), ids=lambda p: p.stem)
def test_golden_commands_cover_every_op(path):
    golden = json.loads(path.read_text())
    assert {e["op"] for e in golden["entries"]} == set(envelope.OP_NAMES)
    for entry in golden["entries"]:
        assert bytes.fromhex(entry["command"])[1] == golden["format_version"]  # [v, op, body]


@pytest.mark.parametrize("path", _golden_files(), ids=lambda p: p.stem)
def test_golden_commands_still_decode(path):
    for entry in json.loads(path.read_text())["entries"]:
        op, body = envelope.decode(bytes.fromhex(entry["command"]))
        assert (op, body) == (entry["op"], unplain(entry["body"])), entry["op_name"]


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
@pytest.mark.parametrize("path", _golden_files(), ids=lambda p: p.stem)
def test_golden_commands_still_apply_identically(path, kind, tmp_path):
    golden = json.loads(path.read_text())
    assert golden["limits"] == LIMITS
    store = MemoryStore() if kind == "memory" else LmdbStore(tmp_path / "s", sync=False)
    with store:
        results, effects, dump = _apply(store, golden["entries"])
    effects = dict(effects)
    for entry, result in zip(golden["entries"], results):
        label = f"{entry['op_name']} at {entry['index']}"
        assert plain(result) == entry["result"], label
        assert plain(effects.get(entry["index"], [])) == entry["effects"], label
    assert plain(dump) == golden["store"]


def test_unknown_version_or_op_is_refused():
    """An entry this code cannot read must stop apply (fatal), never be skipped."""
    import msgpack
    for bad in ([envelope.FORMAT_VERSION + 1, envelope.CONNECT, {}],
                [envelope.FORMAT_VERSION, 99, {}], [envelope.FORMAT_VERSION, 1], "x"):
        with pytest.raises(envelope.EnvelopeError):
            envelope.decode(msgpack.packb(bad))
    with pytest.raises(envelope.EnvelopeError):
        envelope.decode(b"\xc1")
    h = Harness(MemoryStore(), limits(**LIMITS))
    with pytest.raises(envelope.EnvelopeError):
        h.sm.apply(1, msgpack.packb([envelope.FORMAT_VERSION + 1, envelope.CONNECT, {}]))
    assert h.sm.last_applied == 0


def test_current_encoder_matches_current_golden():
    """The commands built today are byte-identical to the current version's file."""
    path = GOLDEN / f"v{envelope.FORMAT_VERSION}.json"
    golden = json.loads(path.read_text())
    assert _record(envelope.FORMAT_VERSION)["entries"] == golden["entries"]


def main() -> None:
    path = GOLDEN / f"v{envelope.FORMAT_VERSION}.json"
    if path.exists():
        sys.exit(f"{path} exists: golden files are never rewritten")
    GOLDEN.mkdir(exist_ok=True)
    path.write_text(json.dumps(_record(envelope.FORMAT_VERSION), indent=1, sort_keys=True)
                    + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
