"""Effects: the closed set of outputs of `RaftCore.step`, and the I/O contract.

The rule, as in etcd-io/raft's `Ready`: **persist the hard state and the
entries before you send the messages that depend on them.** The core honours
it in two ways: a `PersistState` comes before the `Send`s that depend on it in
the same list, and a follower's acknowledgement of entries is only emitted
after their `Written` event has come back. (A leader's own `AppendEntries` may
go out while its write is in flight, as the dissertation's §10.2.1 allows: it
counts itself towards a commit only after `Written`.)

A shell executes the effects of one step **in list order** (every shell does so through
`actors.raft.driver.Driver`, the one interpreter). In detail:

* `PersistState` is a barrier. The shell makes the term and vote durable
  (write + fsync) *before* it executes any later effect of the same list. The
  core places it before the messages that depend on it (a granted vote, a
  candidate's vote requests), so honouring list order is enough.
* `PersistEntries` may complete asynchronously. The entries count as written
  only when the shell feeds back `Written(index, term)`; until then the core
  neither acknowledges them to a leader nor counts them towards its own
  quorum. Writes must reach the disk in the order they were issued.
* `PersistSnapshot` is asynchronous too, ordered with the entry writes, and
  reported by `SnapshotWritten(index, term)`. Storing it, the shell applies the
  same rule as the core's log: keep the entries after the snapshot only if it
  holds the snapshot's last entry with the same term, otherwise drop them all;
  entries up to the snapshot index may then be deleted.
* `RestoreSnapshot` replaces the state machine's state with the snapshot's
  (a follower that was sent one). After a restart the shell restores its own
  latest snapshot before replaying entries, and passes it to `RaftCore`.
* `Send` is fire-and-forget; messages may be lost, duplicated or reordered.
* `Apply` hands committed entries to the state machine, in index order, each
  exactly once per incarnation of the core (after a restart, application
  starts again from the beginning of the log, or from a snapshot).
* `Reply` and `ReadReady` answer client requests. A `Reply(c, Accepted(i))`
  always follows the `Apply` that applied index `i`, so the shell can answer
  with the state machine's result for `i`.
* `RoleChanged` is informational (metrics, leader hints, redirecting clients).
* `ArmNotice` asks for a `NoticeDue` event after a short delay of the shell's
  choosing (with `Options.defer_notice`: when the leader then tells idle
  followers the commit index). The core asks again only after that event came,
  so the shell must deliver it unless the core itself is gone (a restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .messages import Entry, Message, NodeId, SnapshotMeta

Role = Literal["follower", "pre_candidate", "candidate", "leader"]


@dataclass(frozen=True, slots=True)
class Send:
    """Give `msg` to the transport for member `to` (best effort, no reply expected)."""

    to: NodeId
    msg: Message


@dataclass(frozen=True, slots=True)
class PersistState:
    """Barrier: make (term, voted_for) durable before the next effect."""

    term: int
    voted_for: NodeId | None


@dataclass(frozen=True, slots=True)
class PersistEntries:
    """Drop every stored entry with index >= `from_index`, then append `entries`.

    Completion is reported by `Written(entries[-1].index, entries[-1].term)`.
    """

    from_index: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class PersistSnapshot:
    """Store the snapshot durably (then compact the stored log, see module rules).

    Completion is reported by `SnapshotWritten(meta.index, meta.term)`.
    """

    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class RestoreSnapshot:
    """Replace the state machine's state with `data` (state as of `meta.index`)."""

    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class Apply:
    """Committed entries for the state machine, in order (noop/config included)."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The command is committed and applied at `index`."""

    index: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """The request failed. `reason` is one of:

    * ``not_leader`` -- nothing was done; try `leader` (may be None);
    * ``leadership_lost`` -- the leader stepped down: the outcome is unknown,
      the command may still commit;
    * ``busy`` -- a transfer or membership change is in progress.
    """

    reason: str
    leader: NodeId | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the client request tagged `correlation`."""

    correlation: object
    result: Accepted | Rejected


@dataclass(frozen=True, slots=True)
class ReadReady:
    """A linearizable read may be served once the state machine has applied `index`."""

    correlation: object
    index: int


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """This member's role or known leader changed (informational)."""

    role: Role
    term: int
    leader: NodeId | None


@dataclass(frozen=True, slots=True)
class ArmNotice:
    """Feed back `NoticeDue()` after a short delay (see the module rules)."""


Effect = (
    Send
    | PersistState
    | PersistEntries
    | PersistSnapshot
    | RestoreSnapshot
    | Apply
    | Reply
    | ReadReady
    | RoleChanged
    | ArmNotice
)
