"""Effects: the closed set of outputs of `RaftCore.step`, and the I/O contract.

A shell executes the effects of one step **in list order**. The contract:

* `PersistState` is a barrier. The shell makes the term and vote durable
  (write + fsync) *before* it executes any later effect of the same list. The
  core places it before the messages that depend on it (a granted vote, a
  candidate's vote requests), so honouring list order is enough.
* `PersistEntries` may complete asynchronously. The entries count as written
  only when the shell feeds back `Written(index, term)`; until then the core
  neither acknowledges them to a leader nor counts them towards its own
  quorum. Writes must reach the disk in the order they were issued.
* `Send` is fire-and-forget; messages may be lost, duplicated or reordered.
* `Apply` hands committed entries to the state machine, in index order, each
  exactly once per incarnation of the core (after a restart, application
  starts again from the beginning of the log, or from a snapshot).
* `Reply` and `ReadReady` answer client requests. A `Reply(c, Accepted(i))`
  always follows the `Apply` that applied index `i`, so the shell can answer
  with the state machine's result for `i`.
* `RoleChanged` is informational (metrics, leader hints, redirecting clients).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .messages import Entry, Message, NodeId

Role = Literal["follower", "pre_candidate", "candidate", "leader"]


@dataclass(frozen=True, slots=True)
class Send:
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
    correlation: object
    result: Accepted | Rejected


@dataclass(frozen=True, slots=True)
class ReadReady:
    """A linearizable read may be served once the state machine has applied `index`."""

    correlation: object
    index: int


@dataclass(frozen=True, slots=True)
class RoleChanged:
    role: Role
    term: int
    leader: NodeId | None


Effect = Send | PersistState | PersistEntries | Apply | Reply | ReadReady | RoleChanged
