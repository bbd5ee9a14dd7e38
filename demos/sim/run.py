"""The seeded simulator's engine: one `Sim` per seed, its event queue and run loop.

`Sim` is the simulated shell around the Raft cores: it schedules ticks, message
deliveries and disk syncs on a discrete-time queue, interprets the cores'
effects, and runs the checkers after every step. What acts on the cluster from
outside -- the fault injector, the operator, the clients -- is in
`drivers`; the invariants are in `checks`; the command line is
`python -m demos.sim`.
"""

from __future__ import annotations

import hashlib
import heapq
import pickle
import random
import traceback
from collections import deque

from actors.raft import (
    Entry,
    Event,
    Message,
    NoticeDue,
    PersistSnapshot,
    RaftCore,
    RoleChanged,
    SnapshotWritten,
    Tick,
    Written,
)
from actors.raft.driver import Driver

from . import drivers
from .checks import Invariants
from .raft_io import SimIO
from .world import TICK, Disk, Knobs, Member, Request


class SimFailure(AssertionError):
    """An invariant broke; the message names the seed and how to replay it."""


class Sim:
    """One seeded run. `run()` returns the trace hash or raises `SimFailure`."""

    def __init__(self, seed: int, chaos_time: int = 4000, settle_time: int = 6000) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.knobs = Knobs.draw(self.rng)
        self.chaos_time = chaos_time
        self.settle_time = settle_time
        self.now = 0
        self.healed = False
        self.steps = 0
        self.queue: list[tuple[int, int, str, int, int, object]] = []
        self.seq = 0
        self.ids = list(range(1, self.knobs.n + 1))
        self.members = {i: Member(i, Disk()) for i in self.ids}
        self.group = {i: 0 for i in self.ids}
        self.trace = hashlib.sha256()
        self.recent: deque[str] = deque(maxlen=40)
        self.invariants = Invariants()
        self.echo = False  # print every step (--trace)
        self.requests: dict[int, Request] = {}
        self.acked: dict[str, int] = {}
        self.acked_hi = 0
        self.answered = 0
        self.next_corr = 1
        self.leader_hint: int | None = None

    # ------------------------------------------------------------ scheduling

    def _at(self, when: int, kind: str, member: int, inc: int, payload: object = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, kind, member, inc, payload))

    def fail(self, why: str) -> None:
        recent = "\n  ".join(self.recent)
        raise SimFailure(
            f"seed {self.seed}: {why}\n  knobs: {self.knobs}\n  last steps:\n  {recent}\n"
            f"replay: python -m demos.sim --seed {self.seed}"
        )

    # ------------------------------------------------------------ lifecycle

    def start(self, m: Member) -> None:
        m.incarnation += 1
        snap = m.disk.snapshot
        m.applied = list(pickle.loads(snap[1])) if snap else []
        core_rng = random.Random(self.rng.getrandbits(64))
        m.core = RaftCore(
            m.id, self.ids, core_rng, self.knobs.options, m.disk.hard, m.disk.entries(), snap
        )
        m.driver = Driver(m.core, SimIO(self, m), snapshot_every=self.knobs.snapshot_every)
        jitter = self.rng.randrange(1, TICK + 1)
        self._at(self.now + jitter, "tick", m.id, m.incarnation)

    def crash(self, m: Member) -> None:
        m.core = None
        m.driver = None
        m.disk.crash(self.rng, self.knobs.tear)
        for corr, req in list(self.requests.items()):
            if req.member == m.id:
                del self.requests[corr]  # the client sees the connection drop
                self.answered += 1

    def run(self) -> str:
        for m in self.members.values():
            self.start(m)
        self._at(1, "client", 0, 0)
        if self.knobs.crash_every or self.knobs.partition_every:
            self._at(self.rng.randrange(50, 300), "fault", 0, 0)
        self._at(self.chaos_time, "heal", 0, 0)
        deadline = self.chaos_time + self.settle_time
        next_check = self.chaos_time
        for _ in range(2_000_000):
            if not self.queue:
                self.fail("event queue ran dry")
            when, _, kind, mid, inc, payload = heapq.heappop(self.queue)
            self.now = when
            if self.healed and when >= next_check:
                next_check = when + TICK
                if self.converged():
                    self.final_check()
                    return self.trace.hexdigest()
            if when > deadline:
                self.fail(f"no convergence {self.settle_time} time units after healing: "
                          + self.describe())
            self.steps += 1
            try:
                self.dispatch(kind, mid, inc, payload)
            except SimFailure:
                raise
            except Exception as e:  # a crash in the core is a failure of this seed too
                self.fail(f"exception {e!r}\n{traceback.format_exc()}")
        self.fail("step bound exceeded")
        return ""

    def dispatch(self, kind: str, mid: int, inc: int, payload: object) -> None:
        line = f"t={self.now} {kind} {mid} {payload!r}"
        self.trace.update(line.encode())
        self.recent.append(line)
        if self.echo:
            print(line)
        if kind == "tick":
            self.on_tick(mid, inc)
        elif kind == "deliver":
            m = self.members[mid]
            assert isinstance(payload, tuple)
            frm, msg = payload
            if m.up and self.group[frm] == self.group[mid]:
                self.step(m, msg)
        elif kind == "disk":
            self.on_disk(mid, inc)
        elif kind == "notice":
            self.on_notice(mid, inc)
        elif kind == "client":
            drivers.on_client(self)
        elif kind == "fault":
            drivers.on_fault(self)
        elif kind == "crash":
            if self.members[mid].incarnation == inc:
                drivers.crash_and_restart(self, self.members[mid], quick=True)
        elif kind == "restart":
            m = self.members[mid]
            if not m.up:
                self.start(m)
        elif kind == "heal":
            drivers.heal(self)
        elif kind == "repair":
            drivers.on_repair(self)

    def on_tick(self, mid: int, inc: int) -> None:
        m = self.members[mid]
        if not m.up or m.incarnation != inc:
            return
        self.step(m, Tick())
        self._at(self.now + TICK, "tick", mid, inc)

    def arm_notice(self, m: Member) -> None:
        self._at(self.now + self.rng.randint(1, self.knobs.notice_delay), "notice", m.id,
                 m.incarnation)

    def on_notice(self, mid: int, inc: int) -> None:
        m = self.members[mid]
        if m.up and m.incarnation == inc:
            self.step(m, NoticeDue())

    def start_sync(self, m: Member) -> None:
        if m.disk.syncing or not m.disk.pending:
            return
        m.disk.syncing = len(m.disk.pending)
        done = self.now + self.rng.randint(1, self.knobs.disk_max)
        self._at(done, "disk", m.id, m.incarnation)

    def on_disk(self, mid: int, inc: int) -> None:
        m = self.members[mid]
        if not m.up or m.incarnation != inc:
            return
        for op in m.disk.finish_sync():
            if m.core is None:
                break
            if isinstance(op, PersistSnapshot):
                self.step(m, SnapshotWritten(op.meta.index, op.meta.term))
            else:
                self.step(m, Written(op.entries[-1].index, op.entries[-1].term))
        self.start_sync(m)

    def step(self, m: Member, event: Event) -> None:
        """Run `event` through the member's driver (the production interpreter)."""
        assert m.driver is not None
        m.driver.step(event)

    # ------------------------------------------------------------ effects (see raft_io)

    def send(self, frm: int, to: int, msg: Message) -> None:
        k = self.knobs
        if self.group[frm] != self.group[to]:
            return
        drop, dup = (0.0, 0.0) if self.healed else (k.drop, k.dup)
        if self.rng.random() < drop:
            return
        copies = 2 if self.rng.random() < dup else 1
        for _ in range(copies):
            self._at(self.now + self.rng.randint(1, k.max_delay), "deliver", to, 0, (frm, msg))

    def on_role(self, m: Member, eff: RoleChanged) -> None:
        if eff.leader is not None and eff.leader != m.id:
            self.leader_hint = eff.leader
        if eff.role != "leader":
            return
        self.leader_hint = m.id
        assert m.core is not None
        self.check(self.invariants.leader_elected(m.core))

    # ------------------------------------------------------------ checkers

    def check(self, violation: str | None) -> None:
        if violation is not None:
            self.fail(violation)

    def on_apply(self, m: Member, e: Entry) -> None:
        if e.index != len(m.applied) + 1:
            self.fail(f"{m.id} applied {e.index} after {len(m.applied)}")
        m.applied.append(e)
        cores = [x.core for x in self.members.values() if x.core is not None]
        self.check(self.invariants.applied(m.id, e, cores))

    def check_member(self, m: Member) -> None:
        c = m.core
        assert c is not None
        if not c.applied <= c.commit <= c.log.last_index:
            self.fail(f"{m.id}: applied {c.applied} <= commit {c.commit} <= last broken")
        if c.term < m.disk.hard.term:
            self.fail(f"{m.id}: term {c.term} behind its durable term {m.disk.hard.term}")

    # ------------------------------------------------------------ the end

    def converged(self) -> bool:
        cores = [m.core for m in self.members.values()]
        if any(c is None for c in cores) or self.requests:
            return False
        leaders = [c for c in cores if c is not None and c.role == "leader"]
        if len(leaders) != 1:
            return False
        lead = leaders[0]
        if lead.voters != set(self.ids):
            return False
        last = lead.log.last_index
        return all(
            c is not None
            and c.term == lead.term
            and c.leader == lead.id
            and c.applied == last
            and c.log.last_index == last
            and c.log.last_term == lead.log.last_term
            for c in cores
        )

    def final_check(self) -> None:
        cores = {m.id: m.core for m in self.members.values() if m.core}
        floor = max(c.log.snapshot_index for c in cores.values())
        first = cores[self.ids[0]]
        for i, c in cores.items():
            if c.log.slice(floor + 1, c.log.last_index) != first.log.slice(floor + 1, 10**9):
                self.fail(f"converged logs differ after {floor}: {self.ids[0]} vs {i}")
        applied = self.members[self.ids[0]].applied
        for cmd, index in self.acked.items():
            if index > len(applied) or applied[index - 1].command != cmd:
                self.fail(f"acknowledged {cmd} at {index} is lost")
        for m in self.members.values():
            if m.applied != applied:
                self.fail(f"{m.id} applied state differs from {self.ids[0]}'s")
            if m.applied[floor:] != list(first.log.slice(floor + 1, 10**9)):
                self.fail(f"{m.id} applied state differs from the log")

    def describe(self) -> str:
        parts = [m.core.status() if m.core else f"{m.id}: down" for m in self.members.values()]
        return "; ".join(parts) + f"; open requests {len(self.requests)}"


def run_seed(seed: int, echo: bool = False) -> tuple[str, int]:
    """Run one seed; return (trace hash, steps). Raises `SimFailure` with the seed."""
    sim = Sim(seed)
    sim.echo = echo
    digest = sim.run()
    return digest, sim.steps
