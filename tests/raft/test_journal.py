"""DurableJournal on its own: format, group commit, torn tails, corruption."""

from __future__ import annotations

import os

import pytest

from raft.errors import JournalCorrupt
from raft.faultfs import PowerCutFS
from raft.journal import HEADER, DurableJournal, MetaStore, encode_record


def _fill(journal: DurableJournal, first: int, count: int, term: int = 1) -> None:
    for idx in range(first, first + count):
        journal.add(b"\x00cmd-%d" % idx, idx, term)


def test_entries_survive_a_reopen(tmp_path):
    j = DurableJournal(str(tmp_path))
    _fill(j, 1, 10)
    j.close(flush=True)
    j = DurableJournal(str(tmp_path))
    assert len(j) == 10 and j[0] == (b"\x00cmd-1", 1, 1) and j[-1][1] == 10
    assert j.synced_index == 10


def test_group_commit_is_one_fsync_for_everything_added_meanwhile(tmp_path):
    fs = PowerCutFS(str(tmp_path))
    j = DurableJournal(str(tmp_path), fs=fs)
    before = fs.fsyncs
    _fill(j, 1, 500)
    assert j.dirty and j.synced_index == 0
    assert j.flush() is True
    assert fs.fsyncs - before == 1 and j.synced_index == 500 and not j.dirty
    assert j.flush() is False  # nothing new: no fsync


def test_unflushed_entries_are_gone_after_a_crash(tmp_path):
    fs = PowerCutFS(str(tmp_path))
    j = DurableJournal(str(tmp_path), fs=fs)
    _fill(j, 1, 5)
    j.flush()
    _fill(j, 6, 5)
    j.close(flush=False)
    fs.power_cut()
    assert [e[1] for e in DurableJournal(str(tmp_path), fs=fs)] == [1, 2, 3, 4, 5]


def test_written_but_unsynced_entries_are_gone_after_a_power_cut(tmp_path):
    fs = PowerCutFS(str(tmp_path))
    j = DurableJournal(str(tmp_path), fs=fs, sync=False)
    _fill(j, 1, 5)
    j.flush()  # written, never fsynced
    j.close(flush=True)
    assert len(DurableJournal(str(tmp_path), fs=fs, sync=False)) == 5  # a crash keeps them
    fs.power_cut()
    assert len(DurableJournal(str(tmp_path), fs=fs, sync=False)) == 0  # a power cut does not


def test_a_torn_tail_is_dropped(tmp_path):
    j = DurableJournal(str(tmp_path))
    _fill(j, 1, 3)
    j.close(flush=True)
    with open(j.path, "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage")
    j = DurableJournal(str(tmp_path))
    assert [e[1] for e in j] == [1, 2, 3]
    _fill(j, 4, 1)
    j.close(flush=True)
    assert [e[1] for e in DurableJournal(str(tmp_path))] == [1, 2, 3, 4]


def test_truncation_and_compaction_are_persisted(tmp_path):
    j = DurableJournal(str(tmp_path))
    _fill(j, 1, 10)
    j.flush()
    j.deleteEntriesFrom(7)  # positions, as pysyncobj passes them: keeps indexes 1..7
    j.add(b"\x00new-8", 8, 2)
    j.flush()
    j.deleteEntriesTo(3)  # compaction: drops positions 0..2
    j.close(flush=True)
    j = DurableJournal(str(tmp_path))
    assert [(e[1], e[2]) for e in j] == [(4, 1), (5, 1), (6, 1), (7, 1), (8, 2)]


def test_clear_then_add_rewrites_the_file_at_the_next_flush(tmp_path):
    j = DurableJournal(str(tmp_path))
    _fill(j, 1, 10)
    j.flush()
    j.clear()
    j.add(b"\x01", 41, 3)
    j.add(b"\x00x", 42, 3)
    j.close(flush=True)
    assert [e[1] for e in DurableJournal(str(tmp_path))] == [41, 42]


def test_a_foreign_file_is_refused(tmp_path):
    with open(tmp_path / "raft.log", "wb") as f:
        f.write(b"PYSYNCOBJ" + b"\0" * 40)
    with pytest.raises(JournalCorrupt, match="bad header"):
        DurableJournal(str(tmp_path))


def test_an_index_gap_is_refused(tmp_path):
    j = DurableJournal(str(tmp_path))
    _fill(j, 1, 2)
    j.close(flush=True)
    with open(j.path, "ab") as f:
        f.write(encode_record(b"\x00x", 9, 1))
    with pytest.raises(JournalCorrupt, match="jumps"):
        DurableJournal(str(tmp_path))


def test_a_damaged_meta_file_is_refused(tmp_path):
    j = DurableJournal(str(tmp_path))
    j.setCurrentTerm(3, "a:1")
    j.close(flush=True)
    assert DurableJournal(str(tmp_path)).getCurrentTerm() == 3
    with open(tmp_path / "raft.meta", "r+b") as f:
        f.write(b"\xff")
    with pytest.raises(JournalCorrupt, match="refusing to vote"):
        DurableJournal(str(tmp_path))


def test_committed_entries_missing_is_corruption_only_with_sync(tmp_path):
    j = DurableJournal(str(tmp_path))
    _fill(j, 1, 10)
    j.setRaftCommitIndex(10)
    j.close(flush=True)  # writes the commit hint
    with open(j.path, "r+b") as f:
        f.truncate(len(HEADER) + 5 * (24 + len(b"\x00cmd-1")))  # keep 1..5 (same lengths 1..9)
    with pytest.raises(JournalCorrupt, match="acknowledged entries are missing"):
        DurableJournal(str(tmp_path))
    j = DurableJournal(str(tmp_path), sync=False)
    assert j.getRaftCommitIndex() == j.last_index == 5


def test_term_writes_are_durable_immediately(tmp_path):
    fs = PowerCutFS(str(tmp_path))
    j = DurableJournal(str(tmp_path), fs=fs, sync=False)
    j.setCurrentTerm(7, "b:2")
    fs.power_cut()
    assert MetaStore(fs, str(tmp_path)).load_term() == (7, "b:2")
    assert not os.path.exists(tmp_path / "raft.meta.tmp")
