"""Tests of the Raft paper's §7 (log compaction and InstallSnapshot); see test_paper.py."""

from __future__ import annotations

from actors.raft import (
    AppendEntries,
    AppendResult,
    InstallSnapshot,
    Options,
    PersistSnapshot,
    RestoreSnapshot,
    Send,
    SnapshotMeta,
    SnapshotTaken,
    SnapshotWritten,
    Written,
)

from .harness import Network
from .helpers import core, elect, ents, sent

# ---------------------------------------------------------------- §7 snapshots


def test_7_compaction_keeps_the_config_and_last_term() -> None:
    """§7: the snapshot records the last included index and term, and the configuration
    as of that index; the log keeps only what follows."""
    net = Network(3)
    elect(net, 1)
    net.propose(1, "x")
    net.stabilize()
    effects = net.step(1, SnapshotTaken(2, b"S"))
    meta = SnapshotMeta(2, 1, frozenset({1, 2, 3}))
    assert effects == [PersistSnapshot(meta, b"S")]
    log = net.cores[1].log
    assert (log.snapshot_index, log.snapshot_term, log.entries()) == (2, 1, ())


def test_7_snapshot_of_unapplied_state_is_refused() -> None:
    """§7: each server snapshots only committed (here: applied) state."""
    c = core(1, term=1, log="1/1 2/1")
    assert c.step(SnapshotTaken(2, b"S")) == []
    assert c.log.snapshot_index == 0


def test_7_follower_discards_a_conflicting_log_on_install() -> None:
    """§7: if the snapshot is newer than the follower's log, the whole log is discarded
    and the state machine is reset from the snapshot."""
    c = core(2, term=2, log="1/1 2/1 3/1")
    meta = SnapshotMeta(3, 2, frozenset({1, 2, 3}))
    effects = c.step(InstallSnapshot(2, 1, meta, 0, b"S", True))
    assert RestoreSnapshot(meta, b"S") in effects and PersistSnapshot(meta, b"S") in effects
    assert c.log.entries() == () and c.commit == 3 and c.applied == 3
    assert not any(isinstance(e, Send) and isinstance(e.msg, AppendResult) for e in effects)
    acked = c.step(SnapshotWritten(3, 2))
    assert sent(acked)[0].msg == AppendResult(2, 2, True, 3)


def test_7_follower_keeps_the_suffix_after_a_matching_snapshot() -> None:
    """§7: if the follower holds the snapshot's last entry, entries after it are retained."""
    c = core(2, term=1, log="1/1 2/1 3/1 4/1")
    meta = SnapshotMeta(2, 1, frozenset({1, 2, 3}))
    c.step(InstallSnapshot(1, 1, meta, 0, b"S", True))
    assert [e.index for e in c.log.entries()] == [3, 4]


def test_7_stale_snapshot_is_acknowledged_not_installed() -> None:
    """§7: a snapshot that covers nothing new (at or below the commit index) is not installed."""
    c = core(2, term=1)
    c.step(AppendEntries(1, 1, 0, 0, tuple(ents("1/1 2/1 3/1")), 3))
    c.step(Written(3, 1))
    meta = SnapshotMeta(2, 1, frozenset({1, 2, 3}))
    effects = c.step(InstallSnapshot(1, 1, meta, 0, b"S", True))
    assert [type(e).__name__ for e in effects] == ["Send"]
    assert c.log.snapshot_index == 0


def test_7_leader_sends_the_snapshot_in_chunks_when_entries_are_gone() -> None:
    """§7: a leader that discarded the entries a follower needs sends InstallSnapshot."""
    net = Network(3, Options(snapshot_chunk=2))
    elect(net, 1)
    net.isolated = {3}
    net.propose(1, "x")
    net.stabilize()
    net.step(1, SnapshotTaken(2, b"ABCDE"))
    net.isolated = set()
    net.propose(1, "y")
    net.stabilize()
    out = net.take_output().splitlines()
    chunks = [line for line in out if line.startswith("1->3 MsgSnap ")]
    assert len(chunks) == 3 and chunks[-1].endswith("done")
    assert net.cores[3].log.last_index == 3 and net.cores[3].commit == 3
