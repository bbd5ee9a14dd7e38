"""`RaftState`: the fields of one member, and the small records they hold.

Rules of this module:
* Data only. The behaviour is in the modules above it, which form a one-way
  chain (each imports only modules listed before it):
  `messages`, `effects`, `log`, `quorum`, `config` -> `state` -> `roles`
  (role transitions and every message the core sends) -> `replication`,
  `election` -> `snapshot`, `read_index`, `transfer`, `membership` -> `core`
  (`step`: dispatch, and it passes the facts that replication returns on to
  reads, membership and transfer).
* A restart is a new state built from what storage says was synced: the hard
  state, the latest snapshot and the entries after it. Commit and apply
  positions start at the snapshot index (0 without one).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable

from .config import config_from_log, last_config_index
from .effects import Role
from .log import RaftLog
from .messages import Entry, HardState, NodeId, Options, SnapshotMeta


class Progress:
    """The leader's view of one follower."""

    __slots__ = (
        "commit_sent", "inflight", "match", "next", "probe_sent", "probing", "silent",
        "snap_index", "snap_offset",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.probing = True
        self.probe_sent = False
        self.inflight: deque[int] = deque()  # last index of each unacknowledged batch
        self.silent = 0  # ticks without an AppendResult while behind
        self.snap_index = 0  # snapshot being sent, and the byte offset the peer holds
        self.snap_offset = 0
        self.commit_sent = 0  # the highest commit index this peer was told

    def __repr__(self) -> str:
        mode = "probe" if self.probing else "replicate"
        return f"Progress({mode} match={self.match} next={self.next})"


class ReadState:
    """A leader's ReadIndex rounds (see `read_index`)."""

    __slots__ = ("acks", "next_ctx", "rounds", "waiting")

    def __init__(self) -> None:
        self.next_ctx = 1
        self.rounds: deque[tuple[int, object, int]] = deque()  # (ctx, correlation, index)
        self.waiting: list[object] = []  # before the first commit of the term
        self.acks: dict[NodeId, int] = {}  # highest ctx echoed per peer, this term


class Incoming:
    """A snapshot being received, chunk by chunk."""

    __slots__ = ("buf", "key")

    def __init__(self, key: tuple[int, NodeId, SnapshotMeta]) -> None:
        self.key = key  # (term, leader, meta)
        self.buf = bytearray()


class RaftState:
    """One member's state. `voters` is the initial configuration (ignored when
    `snapshot` is given: the snapshot carries its own); `rng` is the only source
    of randomness; `hard_state`, `snapshot` and `entries` are what storage synced
    before a restart (the entries follow the snapshot)."""

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
        self.voters = config_from_log(self.log, self.base_voters)
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
        self.notice_armed = False  # an ArmNotice went out and its NoticeDue has not come
        self.notice_commit = 0  # the commit index when it went out
        self.config_index = last_config_index(self.log)
        reset_election_timer(self)

    @property
    def hard_state(self) -> HardState:
        return HardState(self.term, self.voted_for)


def reset_election_timer(c: RaftState) -> None:
    """A fresh randomised timeout in [election_ticks, 2 * election_ticks)."""
    c.election_elapsed = 0
    c.randomized_timeout = c.opts.election_ticks + c.rng.randrange(c.opts.election_ticks)
