"""Log entries, peer messages and local events: the closed set of inputs to a core.

Everything here is a frozen dataclass so a shell can log, hash, pickle or
replay it. Members are named by opaque ids (`NodeId`) that the shell chooses.

Inputs to `RaftCore.step` are of three kinds:

* peer messages (`RequestVote` ... `TimeoutNow`), received from the network;
* `Tick`, one unit of logical time (the core never reads a clock);
* local events: `Written`, `SnapshotWritten` (storage completions),
  `SnapshotTaken` (the state machine made a snapshot), `NoticeDue` (a delay the
  core asked for passed), and the client requests `Propose`, `ReadIndex`,
  `TransferLeadership`, `ChangeMembership`, `Campaign`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal


class _Wire:
    """Base of the types that cross the network: pickled as (class, field values), which
    is several times cheaper than the default path for a frozen, slotted dataclass. The
    field values are read by one `attrgetter` per class, made on first use."""

    __slots__ = ()

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        cls = type(self)
        fields = cls.__dict__.get("_wire_fields")
        if fields is None:
            names: tuple[str, ...] = cls.__slots__
            fields = attrgetter(*names) if len(names) > 1 else \
                (lambda x, g=attrgetter(names[0]): (g(x),))
            cls._wire_fields = fields  # type: ignore[attr-defined]
        return (cls, fields(self))


NodeId = Any
"""A member's id, opaque to the core: any hashable value that sorts among the ids of its
cluster (ints in the simulator and the tests, ra's `(name, node)` server ids in the
shell). The core only hashes, compares and sorts ids, and hands them back in `Send.to`,
`RoleChanged.leader` and `Rejected.leader`, so a shell reads them as its own type."""
EntryKind = Literal["command", "noop", "config"]


@dataclass(frozen=True, slots=True)
class Entry(_Wire):
    """One log entry. A `config` entry's command is the new voter set (a frozenset)."""

    term: int
    index: int
    command: object = None
    kind: EntryKind = "command"


# ---------------------------------------------------------------- peer messages


@dataclass(frozen=True, slots=True)
class RequestVote(_Wire):
    """Ask for a vote. For a pre-vote, `term` is the term the sender *would* use (§9.6)."""

    term: int
    frm: NodeId
    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False  # sent because of TimeoutNow: voters ignore their leader lease


@dataclass(frozen=True, slots=True)
class Vote(_Wire):
    """Answer to `RequestVote`; `term` echoes the request's term when granted."""

    term: int
    frm: NodeId
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntries(_Wire):
    """Replicate `entries` after (prev_index, prev_term); carry the leader's commit index.

    `notice` marks an empty append sent only to tell a new commit index to a follower the
    leader knows to match up to `prev_index`: a follower whose acknowledgement would say
    no more than that sends none (it would change nothing at the leader).
    """

    term: int
    frm: NodeId
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    notice: bool = False

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Pickled with its entries as plain (term, index, command, kind) tuples: pickle
        then handles them in C, about five times faster than one `Entry` at a time."""
        flat = tuple([(e.term, e.index, e.command, e.kind) for e in self.entries])
        return (_append_entries, (self.term, self.frm, self.prev_index, self.prev_term, flat,
                                  self.commit, self.notice))


def _append_entries(term: int, frm: NodeId, prev_index: int, prev_term: int,
                    flat: tuple[tuple[Any, ...], ...], commit: int,
                    notice: bool) -> AppendEntries:
    """Unpickle an `AppendEntries` (see its `__reduce__`)."""
    return AppendEntries(term, frm, prev_index, prev_term,
                         tuple([new_entry(*e) for e in flat]), commit, notice)


_new = object.__new__
# The slots' own setters (their member descriptors, found in the class's __dict__).
_Setter = Callable[[Entry, Any], None]
_set_term: _Setter = Entry.__dict__["term"].__set__
_set_index: _Setter = Entry.__dict__["index"].__set__
_set_command: _Setter = Entry.__dict__["command"].__set__
_set_kind: _Setter = Entry.__dict__["kind"].__set__


def new_entry(term: int, index: int, command: object = None,
              kind: EntryKind = "command") -> Entry:
    """`Entry(term, index, command, kind)`, built without the frozen dataclass's `__init__`
    (which sets each field through `object.__setattr__`): the same object, about twice as
    fast, for the hot paths that build entries by the batch."""
    e = _new(Entry)
    _set_term(e, term)
    _set_index(e, index)
    _set_command(e, command)
    _set_kind(e, kind)
    return e


@dataclass(frozen=True, slots=True)
class AppendResult(_Wire):
    """Answer to `AppendEntries`.

    On success `index` is the highest index the follower has durably stored and
    knows to match the leader. On rejection `index` echoes the rejected
    `prev_index` and (`hint_index`, `hint_term`) let the leader skip a whole
    conflicting term at once (§5.3, "fast back-off").
    """

    term: int
    frm: NodeId
    success: bool
    index: int
    hint_index: int = 0
    hint_term: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat(_Wire):
    """Leader liveness; `commit` is already capped at what this follower matches.

    `read_ctx` is the newest ReadIndex round the leader wants confirmed (§6.4).
    """

    term: int
    frm: NodeId
    commit: int
    read_ctx: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatResult(_Wire):
    """Answer to `Heartbeat`, echoing `read_ctx`."""

    term: int
    frm: NodeId
    read_ctx: int = 0


@dataclass(frozen=True, slots=True)
class TimeoutNow(_Wire):
    """Leadership transfer: start an election now, skipping pre-vote (§3.10)."""

    term: int
    frm: NodeId


@dataclass(frozen=True, slots=True)
class SnapshotMeta(_Wire):
    """What a snapshot stands for: the log up to (index, term), and the config then."""

    index: int
    term: int
    voters: frozenset[NodeId]


@dataclass(frozen=True, slots=True)
class InstallSnapshot(_Wire):
    """One chunk of the leader's snapshot (§7), starting at byte `offset`."""

    term: int
    frm: NodeId
    meta: SnapshotMeta
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class SnapshotResult(_Wire):
    """Answer to a chunk: the follower holds `offset` bytes of the snapshot at `index`.

    The leader sends the chunk at `offset` next. Once the whole snapshot is
    durable the follower answers with an `AppendResult` instead.
    """

    term: int
    frm: NodeId
    index: int
    offset: int


Message = (
    RequestVote
    | Vote
    | AppendEntries
    | AppendResult
    | Heartbeat
    | HeartbeatResult
    | TimeoutNow
    | InstallSnapshot
    | SnapshotResult
)


# ---------------------------------------------------------------- local events


@dataclass(frozen=True, slots=True)
class Tick:
    """One unit of logical time."""


@dataclass(frozen=True, slots=True)
class Written:
    """Storage completion: every entry up to `index` (whose term is `term`) is durable."""

    index: int
    term: int


@dataclass(frozen=True, slots=True)
class SnapshotWritten:
    """Storage completion of a `PersistSnapshot` for the snapshot at (index, term)."""

    index: int
    term: int


@dataclass(frozen=True, slots=True)
class SnapshotTaken:
    """The state machine's snapshot `data` at applied index `index`: compact the log."""

    index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Propose:
    """Client command. Answered by `Reply(correlation, Accepted | Rejected)`."""

    command: object
    correlation: object


@dataclass(frozen=True, slots=True)
class ProposeMany:
    """Several client commands at once: `(command, correlation)` pairs, appended as one
    batch (one `PersistEntries`, one AppendEntries per follower). Each is answered as a
    `Propose` would be."""

    items: tuple[tuple[object, object], ...]


@dataclass(frozen=True, slots=True)
class ReadIndex:
    """Linearizable read. Answered by `ReadReady` or `Reply(correlation, Rejected)`."""

    correlation: object


@dataclass(frozen=True, slots=True)
class TransferLeadership:
    """Ask the leader to hand leadership to `to`."""

    to: NodeId


@dataclass(frozen=True, slots=True)
class ChangeMembership:
    """Add or remove one voter (single-server change, dissertation §4.1)."""

    op: Literal["add", "remove"]
    member: NodeId
    correlation: object = None


@dataclass(frozen=True, slots=True)
class PeerDown:
    """The shell learned that `peer`'s node is down (the transport's nodedown).

    A follower whose leader it was ends that leader's lease and campaigns after
    a short randomised delay, instead of waiting a whole election timeout.
    """

    peer: NodeId


@dataclass(frozen=True, slots=True)
class Campaign:
    """Start an election now (a test or operator hook; same as an election timeout)."""


@dataclass(frozen=True, slots=True)
class NoticeDue:
    """The delay asked for by an `ArmNotice` effect has passed (see `Options.defer_notice`)."""


Event = (
    Message
    | Tick
    | Written
    | SnapshotWritten
    | SnapshotTaken
    | Propose
    | ProposeMany
    | ReadIndex
    | TransferLeadership
    | ChangeMembership
    | PeerDown
    | Campaign
    | NoticeDue
)


@dataclass(frozen=True, slots=True)
class HardState:
    """What must survive a crash besides the log: the term and the vote in it."""

    term: int = 0
    voted_for: NodeId | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """Tunables, all in ticks or counts."""

    election_ticks: int = 10
    heartbeat_ticks: int = 1
    commit_notice: bool = True  # tell idle followers a new commit index (else: by the
    # next AppendEntries or heartbeat, at most `heartbeat_ticks` later)
    defer_notice: bool = False  # tell them after a delay the shell picks (`ArmNotice`), so
    # that an AppendEntries going out meanwhile carries the commit index instead
    max_batch: int = 16  # entries per AppendEntries
    max_inflight: int = 8  # unacknowledged AppendEntries per follower
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_chunk: int = 65536  # bytes per InstallSnapshot message
