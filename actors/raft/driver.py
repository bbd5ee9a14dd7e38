"""`Driver`: the one interpreter of a `RaftCore`'s effects, shared by every shell.

The production member (`actors.ra._member`), the seeded simulator
(`demos/sim/run.py`) and the golden-file harness (`tests/raft/harness.py`)
all run their core through this loop; they differ only in their `RaftIO`.
So every simulator seed also exercises the interpreter that production runs.

Rules of this module:
* `step(event)` feeds the core and executes the returned effects **in list
  order**, one branch per effect, each a call to one `RaftIO` method (the
  contract of each effect is in `actors.raft.effects`).
* The core is never re-entered from inside an effect. An event that an effect
  causes at once (a storage write that completed synchronously, a snapshot
  taken after an `Apply`) is given to `post`, queued, and stepped after the
  current list is done (as ra's `next_event`). A `step` called while the loop
  runs is queued the same way.
* With `leader_sends_first`, a leader's own `PersistEntries` runs after the
  `Send`s that directly follow it, so the AppendEntries leave before the local
  write is handed over. Allowed: a leader counts itself towards a commit only
  after `Written` (dissertation §10.2.1); `PersistState` is never moved.
* Snapshot policy: with `snapshot_every` = n > 0, once the applied index is n
  or more past the core's snapshot index after an `Apply`, the driver asks
  `RaftIO.snapshot_data` for the state at the applied index and posts
  `SnapshotTaken`.
* `trace`, if given, is called as `trace(core, effect)` just before each
  effect executes (in the order executed); it must not raise or step the core.
  It can be set or cleared at any time (`driver.trace = ...`).
* `RaftIO.stepped(event)` runs after the effects of each event;
  `RaftIO.idle()` runs once the queue is empty (the outermost `step` ends).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from .core import RaftCore
from .effects import (
    Accepted,
    Apply,
    ArmNotice,
    Effect,
    PersistEntries,
    PersistSnapshot,
    PersistState,
    ReadReady,
    Rejected,
    Reply,
    RestoreSnapshot,
    Role,
    RoleChanged,
    Send,
)
from .messages import Entry, Event, Message, NodeId, SnapshotMeta, SnapshotTaken

Trace = Callable[[RaftCore, Effect], None]
"""`trace(core, effect)`: called just before `effect` executes."""


class RaftIO(Protocol):
    """What a shell provides to run a core: one method per effect, and two hooks."""

    def send(self, to: NodeId, msg: Message) -> None:
        """Best effort delivery of `msg` to member `to`."""

    def persist_state(self, term: int, voted_for: NodeId | None) -> None:
        """Write and fsync the hard state before returning (a barrier)."""

    def persist_entries(self, from_index: int, entries: tuple[Entry, ...]) -> None:
        """Queue the write; feed back `Written` (via `Driver.post` or `step`) once durable."""

    def persist_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """Queue the snapshot write, ordered with entry writes; feed back `SnapshotWritten`."""

    def restore_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """Replace the state machine's state with the snapshot's."""

    def apply(self, entries: tuple[Entry, ...]) -> None:
        """Run committed entries through the state machine, in order."""

    def reply(self, correlation: object, result: Accepted | Rejected) -> None:
        """Answer the client request tagged `correlation`."""

    def read_ready(self, correlation: object, index: int) -> None:
        """Serve the read `correlation` once the machine has applied `index`."""

    def role_changed(self, role: Role, term: int, leader: NodeId | None) -> None:
        """The member's role or known leader changed."""

    def arm_notice(self) -> None:
        """Step `NoticeDue()` after a short delay (the followers' commit freshness)."""

    def snapshot_data(self, index: int) -> bytes:
        """The machine state as of the applied `index`, serialised (snapshot policy)."""

    def stepped(self, event: Event) -> None:
        """After the effects of one event (checks, metrics)."""

    def idle(self) -> None:
        """The queue of events is empty: flush what was batched during the steps."""


class Driver:
    """Runs one `RaftCore` against one `RaftIO`. Not thread-safe: one caller at a time."""

    __slots__ = ("core", "io", "leader_sends_first", "queue", "running", "snapshot_every",
                 "trace")

    def __init__(self, core: RaftCore, io: RaftIO, *, trace: Trace | None = None,
                 leader_sends_first: bool = True, snapshot_every: int = 0) -> None:
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every must be >= 0, got {snapshot_every!r}")
        self.core = core
        self.io = io
        self.trace = trace
        self.leader_sends_first = leader_sends_first
        self.snapshot_every = snapshot_every
        self.queue: deque[Event] = deque()
        self.running = False

    def post(self, event: Event) -> None:
        """Queue a follow-up event; it is stepped after the effects being executed."""
        self.queue.append(event)

    def step(self, event: Event) -> list[Effect]:
        """Step `event` and everything it causes; return the effects of `event` itself.

        Called while the loop runs (from inside an effect), the event is only
        queued and the result is empty."""
        self.queue.append(event)
        if self.running:
            return []
        self.running = True
        first: list[Effect] | None = None
        try:
            queue = self.queue
            while queue:
                ev = queue.popleft()
                effects = self.run(ev)
                if first is None:
                    first = effects
        finally:
            self.running = False
            self.queue.clear()
        self.io.idle()
        return first or []

    def run(self, event: Event) -> list[Effect]:
        """One event: the core's step, then its effects in order."""
        core = self.core
        effects = core.step(event)
        if self.leader_sends_first and core.role == "leader":
            effects = sends_first(effects)
        trace, execute = self.trace, self.execute
        for effect in effects:
            if trace is not None:
                trace(core, effect)
            execute(effect)
        self.io.stepped(event)
        return effects

    def execute(self, e: Effect) -> None:
        """One branch per effect."""
        io = self.io
        if isinstance(e, Send):
            io.send(e.to, e.msg)
        elif isinstance(e, PersistEntries):
            io.persist_entries(e.from_index, e.entries)
        elif isinstance(e, Apply):
            io.apply(e.entries)
            self._maybe_snapshot()
        elif isinstance(e, Reply):
            io.reply(e.correlation, e.result)
        elif isinstance(e, PersistState):
            io.persist_state(e.term, e.voted_for)
        elif isinstance(e, ReadReady):
            io.read_ready(e.correlation, e.index)
        elif isinstance(e, RoleChanged):
            io.role_changed(e.role, e.term, e.leader)
        elif isinstance(e, PersistSnapshot):
            io.persist_snapshot(e.meta, e.data)
        elif isinstance(e, RestoreSnapshot):
            io.restore_snapshot(e.meta, e.data)
        elif isinstance(e, ArmNotice):
            io.arm_notice()
        else:
            raise TypeError(f"not a raft effect: {e!r}")

    def _maybe_snapshot(self) -> None:
        every = self.snapshot_every
        core = self.core
        if every and core.applied - core.log.snapshot_index >= every:
            self.post(SnapshotTaken(core.applied, self.io.snapshot_data(core.applied)))


def sends_first(effects: list[Effect]) -> list[Effect]:
    """Move each `PersistEntries` after the run of `Send`s that directly follows it."""
    for pos, e in enumerate(effects):
        if type(e) is PersistEntries and pos + 1 < len(effects) and \
                type(effects[pos + 1]) is Send:
            end = pos + 1
            while end < len(effects) and type(effects[end]) is Send:
                end += 1
            return [*effects[:pos], *effects[pos + 1:end], e, *sends_first(effects[end:])]
    return effects


class NullIO:
    """A `RaftIO` that does nothing; subclass it and override what a shell needs."""

    def send(self, to: NodeId, msg: Message) -> None:
        pass

    def persist_state(self, term: int, voted_for: NodeId | None) -> None:
        pass

    def persist_entries(self, from_index: int, entries: tuple[Entry, ...]) -> None:
        pass

    def persist_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        pass

    def restore_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        pass

    def apply(self, entries: tuple[Entry, ...]) -> None:
        pass

    def reply(self, correlation: object, result: Accepted | Rejected) -> None:
        pass

    def read_ready(self, correlation: object, index: int) -> None:
        pass

    def role_changed(self, role: Role, term: int, leader: NodeId | None) -> None:
        pass

    def arm_notice(self) -> None:
        pass  # a core run here must not set `Options.defer_notice`: no NoticeDue comes

    def snapshot_data(self, index: int) -> bytes:
        raise NotImplementedError("this shell takes no snapshots by policy")

    def stepped(self, event: Event) -> None:
        pass

    def idle(self) -> None:
        pass


__all__ = ["Driver", "NullIO", "RaftIO", "Trace", "sends_first"]
