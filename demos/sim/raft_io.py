"""The simulator's `RaftIO`: how one simulated member executes its core's effects.

The loop that calls these methods is `actors.raft.driver.Driver`, the same one
the production member runs; only the I/O below is simulated. Messages go on
the simulated network, writes on the simulated disk (completed later by a
`disk` event), and the checkers look at every vote, acknowledgement, write,
application and restore as it happens.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

from actors.raft import (
    Accepted,
    AppendResult,
    Entry,
    Event,
    HardState,
    Message,
    NodeId,
    PersistEntries,
    PersistSnapshot,
    ReadReady,
    Rejected,
    Reply,
    Role,
    RoleChanged,
    SnapshotMeta,
    Vote,
)

from . import drivers
from .world import Member

if TYPE_CHECKING:
    from .run import Sim


class SimIO:
    """One member's simulated shell; see the module docstring."""

    def __init__(self, sim: Sim, m: Member) -> None:
        self.sim = sim
        self.m = m

    def send(self, to: NodeId, msg: Message) -> None:
        assert isinstance(to, int)
        self._check_send(to, msg)
        self.sim.send(self.m.id, to, msg)

    def _check_send(self, to: int, msg: Message) -> None:
        sim, m = self.sim, self.m
        sim.check(sim.invariants.barrier_kept(m.id, to, m.disk, msg))
        if isinstance(msg, Vote):
            sim.check(sim.invariants.vote_sent(m.id, to, msg))
        elif isinstance(msg, AppendResult) and msg.success and m.core is not None:
            sim.check(sim.invariants.ack_sent(m.core, m.disk, msg.index))
        else:
            return
        if not sim.healed and sim.rng.random() < sim.knobs.buggify:
            sim._at(sim.now + 1, "crash", m.id, m.incarnation)  # crash at a bad moment

    def persist_state(self, term: int, voted_for: NodeId | None) -> None:
        self.m.disk.hard = HardState(term, voted_for)  # write + fsync: a barrier

    def persist_entries(self, from_index: int, entries: tuple[Entry, ...]) -> None:
        m = self.m
        assert m.core is not None
        eff = PersistEntries(from_index, entries)
        self.sim.check(self.sim.invariants.persisted(m.core, eff))
        m.disk.pending.append(eff)
        self.sim.start_sync(m)

    def persist_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        self.m.disk.pending.append(PersistSnapshot(meta, data))
        self.sim.start_sync(self.m)

    def restore_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        entries = pickle.loads(data)
        self.sim.check(self.sim.invariants.restored(self.m.id, meta.index, entries))
        self.m.applied = list(entries)

    def apply(self, entries: tuple[Entry, ...]) -> None:
        for e in entries:
            self.sim.on_apply(self.m, e)

    def reply(self, correlation: object, result: Accepted | Rejected) -> None:
        drivers.on_reply(self.sim, self.m, Reply(correlation, result))

    def read_ready(self, correlation: object, index: int) -> None:
        drivers.on_read_ready(self.sim, self.m, ReadReady(correlation, index))

    def role_changed(self, role: Role, term: int, leader: NodeId | None) -> None:
        self.sim.on_role(self.m, RoleChanged(role, term, leader))

    def arm_notice(self) -> None:
        self.sim.arm_notice(self.m)

    def snapshot_data(self, index: int) -> bytes:
        return pickle.dumps(tuple(self.m.applied[:index]))

    def stepped(self, event: Event) -> None:
        if self.m.core is not None:
            self.sim.check_member(self.m)

    def idle(self) -> None:
        pass

