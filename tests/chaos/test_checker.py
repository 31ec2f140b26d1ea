"""The checker finds each problem in a crafted history, and only that problem."""
from __future__ import annotations

import json

from chaos import history
from chaos.checker import MUST_BE_ZERO, check, summary_line

from .histories import H


def failures(h: H) -> list[str]:
    return check(h.events).failures


def test_clean_history_is_valid():
    h = H().sub("final", "c1", kind="final").log("c1", ["w1-0", "w1-1", "w2-0"])
    result = check(h.events)
    assert result.valid, result.as_dict()
    f = result.figures
    assert (f["attempted"], f["acknowledged"], f["read"], f["lost"]) == (3, 3, 3, 0)
    assert all(f[name] == 0 for name in MUST_BE_ZERO)
    assert summary_line(result).startswith("VALID")


def test_lost_postfix():
    h = H().log("c1", ["w1-0", "w1-1"]).publish("c1", "w1-2").publish("c1", "w1-3")
    result = check(h.events)
    f = result.figures
    assert (f["lost"], f["lost_postfix"], f["lost_prefix"], f["lost_middle"]) == (2, 2, 0, 0)
    assert result.samples["lost_postfix"] == [["c1", "w1-2"], ["c1", "w1-3"]]
    assert result.failures == ["lost"]


def test_lost_prefix():
    h = H().publish("c1", "w1-0").log("c1", ["w1-1", "w1-2"])
    f = check(h.events).figures
    assert (f["lost"], f["lost_prefix"], f["lost_middle"], f["lost_postfix"]) == (1, 1, 0, 0)


def test_lost_middle_is_split_per_writer_and_channel():
    h = H()
    for v in ("w1-0", "w1-1", "w1-2", "w2-0"):
        h.publish("c1", v)
    h.publish("c2", "w1-3")
    h.deliver("c1", 1, "w1-0").deliver("c1", 2, "w1-2").deliver("c1", 3, "w2-0")
    h.deliver("c2", 1, "w1-3")
    f = check(h.events).figures
    assert (f["lost"], f["lost_middle"], f["lost_prefix"], f["lost_postfix"]) == (1, 1, 0, 0)


def test_writer_with_nothing_read_counts_as_postfix():
    h = H().log("c1", ["w1-0"]).publish("c1", "w2-0")
    f = check(h.events).figures
    assert (f["lost"], f["lost_postfix"]) == (1, 1)


def test_unacknowledged_values_are_not_lost():
    h = H().log("c1", ["w1-0"]).publish("c1", "w1-1", "unknown").publish("c1", "w1-2", "fail")
    h.invoke("c1", "w1-3")  # never completed (the run ended)
    result = check(h.events)
    assert result.valid
    assert (result.figures["unknown"], result.figures["failed"]) == (2, 1)


def test_unexpected():
    h = H().log("c1", ["w1-0"]).deliver("c1", 2, "w9-0")
    result = check(h.events)
    assert result.failures == ["unexpected"]
    assert result.samples["unexpected"] == [["c1", "w9-0"]]


def test_value_published_on_another_channel_is_unexpected():
    h = H().log("c1", ["w1-0"]).deliver("c2", 1, "w1-0")
    assert failures(h) == ["unexpected"]


def test_recovered_is_allowed_but_failed_read_is_not():
    h = H().log("c1", ["w1-0"]).publish("c1", "w1-1", "unknown").deliver("c1", 2, "w1-1")
    result = check(h.events)
    assert result.valid and result.figures["recovered"] == 1
    h.publish("c1", "w1-2", "fail").deliver("c1", 3, "w1-2")
    assert failures(h) == ["failed_read"]


def test_duplicate_at_two_sequences():
    h = H().log("c1", ["w1-0", "w1-1"]).deliver("c1", 3, "w1-1")
    result = check(h.events)
    assert result.failures == ["duplicates"]
    assert result.samples["duplicates"] == [["c1", "w1-1", [2, 3]]]


def test_redelivery_at_the_same_sequence_is_not_a_duplicate():
    h = H().log("c1", ["w1-0"]).deliver("c1", 1, "w1-0", redelivered=True)
    result = check(h.events)
    assert result.valid and result.figures["redeliveries"] == 1


def test_duplicate_seen_only_in_a_dump():
    h = H().log("c1", ["w1-0"])
    h.dump("n1", {"c1": [[1, "w1-0"], [2, "w1-0"]]}).dump("n2", {"c1": [[1, "w1-0"], [2, "w1-0"]]})
    assert failures(h) == ["duplicates"]


def test_conflict_two_values_at_one_sequence():
    h = H().publish("c1", "w1-0").publish("c1", "w2-0")
    h.deliver("c1", 1, "w1-0", "a").deliver("c1", 1, "w2-0", "b")
    result = check(h.events)
    assert "conflicts" in result.failures
    assert result.samples["conflicts"] == [["c1", 1, ["w1-0", "w2-0"]]]


def test_gap():
    h = H()
    for v in ("w1-0", "w1-1", "w1-2"):
        h.publish("c1", v, "unknown")
    h.deliver("c1", 1, "w1-0").deliver("c1", 4, "w1-2").deliver("c1", 5, "w1-1")
    result = check(h.events)
    assert "gaps" in result.failures and result.figures["gaps"] == 2
    assert result.samples["gaps"] == [["c1", "2-3"]]


def test_per_writer_order():
    # w1-0 acknowledged before w1-1 was invoked, yet stored after it
    h = H().publish("c1", "w1-0").publish("c1", "w1-1")
    h.deliver("c1", 1, "w1-1").deliver("c1", 2, "w1-0")
    result = check(h.events)
    assert result.figures["order"] == 1 and result.figures["realtime_order"] == 1
    assert result.samples["order"][0]["earlier"] == "w1-0"


def test_concurrent_publishes_may_commit_in_any_order():
    h = H().invoke("c1", "w1-0").invoke("c1", "w2-0").done("c1", "w1-0").done("c1", "w2-0")
    h.deliver("c1", 1, "w2-0").deliver("c1", 2, "w1-0")
    assert check(h.events).valid


def test_unknown_outcome_committed_late_is_not_an_order_violation():
    h = H().publish("c1", "w1-0", "unknown").publish("c1", "w1-1")
    h.deliver("c1", 1, "w1-1").deliver("c1", 2, "w1-0")
    assert check(h.events).valid


def test_realtime_order_across_writers():
    h = H().publish("c1", "w1-0").publish("c1", "w2-0")
    h.deliver("c1", 1, "w2-0").deliver("c1", 2, "w1-0")
    result = check(h.events)
    assert result.figures["order"] == 0 and result.failures == ["realtime_order"]


def test_max_inflight_bound():
    h = H().sub("final", "c1", kind="final").log("c1", ["w1-0", "w1-1", "w1-2"])
    h.sub("s1", "c1", 2)
    h.deliver("c1", 1, "w1-0", "s1").deliver("c1", 2, "w1-1", "s1")
    h.deliver("c1", 1, "w1-0", "s1", redelivered=True)  # same seq: still 2 outstanding
    h.ack("c1", 1, "s1").deliver("c1", 3, "w1-2", "s1")
    result = check(h.events)
    assert result.valid and result.figures["max_outstanding"] == 2  # not the final reader
    h.deliver("c1", 1, "w1-0", "s1", redelivered=True)  # crossed the ack: not counted
    assert check(h.events).valid
    h.publish("c1", "w1-3").deliver("c1", 4, "w1-3", "final")
    h.deliver("c1", 4, "w1-3", "s1")  # never acked, 3 outstanding
    result = check(h.events)
    assert result.failures == ["inflight_violations"]
    assert result.samples["inflight"][0] == {"subscriber": "s1", "t": h.t, "seq": 4,
                                             "outstanding": 3, "max_inflight": 2}


def test_a_new_subscription_restarts_the_clients_view():
    h = H().sub("final", "c1", kind="final").log("c1", ["w1-0", "w1-1", "w1-2"])
    h.sub("q1", "c1", 2).deliver("c1", 1, "w1-0", "q1").deliver("c1", 2, "w1-1", "q1")
    h.sub("q1", "c1", 2)  # reconnected: seqs 1 and 2 went to another member
    h.deliver("c1", 3, "w1-2", "q1")
    assert check(h.events).valid


def test_convergence():
    h = H().log("c1", ["w1-0", "w1-1"])
    same = {"c1": [[1, "w1-0"], [2, "w1-1"]]}
    h.dump("n1", same).dump("n2", same).dump("n3", same)
    result = check(h.events)
    assert result.valid and result.figures["dumps"] == 3
    h.dump("n3", {"c1": [[1, "w1-0"]]})  # n3's later dump replaces its first
    result = check(h.events)
    assert result.failures == ["divergence"] and result.figures["divergence"] == 1
    assert result.samples["divergence"][0]["values"] == {"n1": "w1-1", "n2": "w1-1", "n3": None}


def test_divergent_values_and_missing_channel():
    h = H().log("c1", ["w1-0"])
    h.dump("n1", {"c1": [[1, "w1-0"]], "c2": [[1, "x"]]}).dump("n2", {"c1": [[1, "w1-9"]]})
    assert check(h.events).figures["divergence"] == 2


def test_no_read_at_all_is_not_valid():
    h = H().publish("c1", "w1-0")
    result = check(h.events)
    assert not result.valid and result.notes


def test_load_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "h.jsonl"
    rec = history.Recorder(str(path))
    rec.record("invoke", process="w1", channel="c1", value="w1-0")
    rec.record("ok", process="w1", channel="c1", value="w1-0")
    rec.close()
    with open(path, "a") as f:
        f.write('{"type": "deliver", "chan')
    events = history.load(str(path))
    assert [e["type"] for e in events] == ["invoke", "ok"]
    assert json.loads(path.read_text().splitlines()[0])["t"] >= 0
