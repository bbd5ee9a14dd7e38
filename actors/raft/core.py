"""`RaftCore`: one member's state and the `step(event) -> effects` entry point.

Rules of this module:
* `step` is the only way in. It never blocks, reads no clock, does no I/O and
  draws randomness only from the `random.Random` it was given.
* The returned effects must be executed in order (see `effects`).
* The state lives here; the per-concern modules (`election`, `replication`,
  `read_index`, `transfer`, `membership`) are functions over this state.
* A restart is a new `RaftCore` built from what storage says was synced:
  the hard state, the latest snapshot and the entries after it. Commit and
  apply positions start at the snapshot index (0 without one).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from . import election, membership, read_index, replication, snapshot, transfer
from .effects import Effect, PersistState, Rejected, Reply, Role, Send
from .log import RaftLog
from .messages import (
    AppendEntries,
    AppendResult,
    Campaign,
    ChangeMembership,
    Entry,
    Event,
    HardState,
    Heartbeat,
    HeartbeatResult,
    InstallSnapshot,
    NodeId,
    Options,
    PeerDown,
    Propose,
    ProposeMany,
    ReadIndex,
    RequestVote,
    SnapshotMeta,
    SnapshotResult,
    SnapshotTaken,
    SnapshotWritten,
    Tick,
    TimeoutNow,
    TransferLeadership,
    Vote,
    Written,
    new_entry,
)
from .read_index import ReadState
from .replication import Progress
from .snapshot import Incoming


class RaftCore:
    """One Raft member, as a pure state machine over events.

    `voters` is the initial configuration (ignored when `snapshot` is given:
    the snapshot carries its own); `rng` is the only source of randomness;
    `hard_state`, `snapshot` and `entries` are what storage synced before a
    restart (the entries follow the snapshot). Several cores share nothing.
    """

    def __init__(
        self,
        node_id: NodeId,
        voters: Iterable[NodeId],
        rng: random.Random,
        options: Options | None = None,
        hard_state: HardState | None = None,
        entries: Iterable[Entry] = (),
        snapshot: tuple[SnapshotMeta, bytes] | None = None,
    ) -> None:
        hs = hard_state or HardState()
        base = snapshot[0] if snapshot else SnapshotMeta(0, 0, frozenset(voters))
        self.id = node_id
        self.rng = rng
        self.opts = options or Options()
        self.term = hs.term
        self.voted_for = hs.voted_for
        self.log = RaftLog(entries, base.index, base.term)
        self.snapshot = snapshot
        self.incoming: Incoming | None = None
        self.base_voters: frozenset[NodeId] = base.voters
        self.voters = membership.config_from_log(self.log, self.base_voters)
        self.role: Role = "follower"
        self.leader: NodeId | None = None
        self.commit = base.index
        self.applied = base.index
        self.stable = self.log.last_index  # entries known durable
        self.known_match = 0  # follower: our log matches the leader's up to here
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = 0
        self.votes: dict[NodeId, bool] = {}
        self.progress: dict[NodeId, Progress] = {}
        self.pending: dict[int, object] = {}  # leader: index -> correlation
        self.reads = ReadState()
        self.recent_active: set[NodeId] = set()
        self.transferee: NodeId | None = None
        self.config_index = membership.last_config_index(self.log)
        election.reset_election_timer(self)

    # ------------------------------------------------------------ entry point

    def step(self, event: Event) -> list[Effect]:
        """Consume one event; return the effects to execute, in order."""
        out: list[Effect] = []
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not a raft event: {event!r}")
        if hasattr(event, "frm") and not election.observe_term(self, event, out):
            return out
        handler(self, event, out)
        return _coalesce_hard_state(out)

    # ------------------------------------------------------------ inspection

    @property
    def hard_state(self) -> HardState:
        return HardState(self.term, self.voted_for)

    def status(self) -> str:
        """One line for golden files and debugging."""
        return (
            f"{self.id}: {self.role} term={self.term} leader={self.leader} "
            f"last={self.log.last_index} commit={self.commit} applied={self.applied}"
        )


def _propose(c: RaftCore, ev: Propose, out: list[Effect]) -> None:
    if c.role != "leader":
        out.append(Reply(ev.correlation, Rejected("not_leader", c.leader)))
    elif c.transferee is not None:
        out.append(Reply(ev.correlation, Rejected("busy", c.leader)))
    else:
        index = c.log.last_index + 1
        c.pending[index] = ev.correlation
        replication.leader_append(c, [Entry(c.term, index, ev.command)], out)


def _propose_many(c: RaftCore, ev: ProposeMany, out: list[Effect]) -> None:
    if c.role != "leader" or c.transferee is not None:
        reason = "not_leader" if c.role != "leader" else "busy"
        out.extend(Reply(corr, Rejected(reason, c.leader)) for _cmd, corr in ev.items)
        return
    first = c.log.last_index + 1
    term = c.term
    entries = [new_entry(term, first + i, cmd) for i, (cmd, _corr) in enumerate(ev.items)]
    for e, (_cmd, corr) in zip(entries, ev.items, strict=True):
        c.pending[e.index] = corr
    if entries:
        replication.leader_append(c, entries, out)


def _tick(c: RaftCore, ev: Tick, out: list[Effect]) -> None:
    if c.role == "leader":
        replication.tick_leader(c, out)
    else:
        election.tick_election(c, out)


def _campaign(c: RaftCore, ev: Campaign, out: list[Effect]) -> None:
    election.campaign(c, out, transfer=False)


def _coalesce_hard_state(out: list[Effect]) -> list[Effect]:
    """Drop a `PersistState` superseded by a later one before any message is sent."""
    if sum(1 for e in out if isinstance(e, PersistState)) < 2:
        return out
    kept: list[Effect] = []
    for pos, e in enumerate(out):
        if isinstance(e, PersistState):
            later = next((x for x in out[pos + 1 :] if isinstance(x, PersistState | Send)), None)
            if isinstance(later, PersistState):
                continue
        kept.append(e)
    return kept


_HANDLERS: dict[type, Callable[[RaftCore, Any, list[Effect]], None]] = {
    RequestVote: election.handle_request_vote,
    Vote: election.handle_vote,
    AppendEntries: replication.handle_append_entries,
    AppendResult: replication.handle_append_result,
    Heartbeat: replication.handle_heartbeat,
    HeartbeatResult: replication.handle_heartbeat_result,
    TimeoutNow: transfer.handle_timeout_now,
    Tick: _tick,
    Written: replication.handle_written,
    InstallSnapshot: snapshot.handle_install_snapshot,
    SnapshotResult: snapshot.handle_snapshot_result,
    SnapshotWritten: snapshot.handle_snapshot_written,
    SnapshotTaken: snapshot.handle_snapshot_taken,
    Propose: _propose,
    ProposeMany: _propose_many,
    ReadIndex: read_index.handle_read_index,
    TransferLeadership: transfer.handle_transfer,
    ChangeMembership: membership.handle_change,
    PeerDown: election.handle_peer_down,
    Campaign: _campaign,
}
