"""Seeded fault simulator for the Raft core (TigerBeetle VOPR / FoundationDB style).

One seed drives everything: the cluster size, the fault knobs, the network
(loss, duplication, delay, reordering, partitions), the disk (write latency,
unsynced writes lost at a crash, a torn last write), crashes and restarts
(fast ones too, to test that votes are durable), operator actions (leadership
transfers, single-server membership changes), snapshots with log compaction
and chunked InstallSnapshot, and the clients' proposals and reads. Checkers
(`tests/raft/sim_checks.py`) run after every step:

* election safety -- at most one leader per term;
* log matching -- two entries with the same (index, term) hold the same
  command and follow the same term (which, by induction, makes the prefixes
  equal);
* leader completeness -- a leader's log holds every committed entry of an
  earlier term, from the moment it takes office;
* state-machine safety -- no two members apply different entries at one
  index, and a restored snapshot holds exactly the committed prefix;
* durability -- an acknowledged command is committed at the index it was
  acknowledged at (and, at the end, is in every member's log);
* linearizable reads -- a ReadReady index covers every write acknowledged
  before the read was issued.

After the chaos phase the network heals, every member restarts, the operator
re-adds removed members, and the cluster must converge (one leader, the full
configuration, equal logs, equal applied states, every client request
answered) within a bound.

    python -m tests.sim --seed 17          # replay one seed (--trace: every step)
    python -m tests.sim --seeds 5000       # the long run
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import pickle
import random
import sys
import time
import traceback
from collections import deque

from actors.raft import (
    Accepted,
    AppendResult,
    Apply,
    ChangeMembership,
    Effect,
    Entry,
    Event,
    HardState,
    Message,
    PersistEntries,
    PersistSnapshot,
    PersistState,
    Propose,
    RaftCore,
    ReadIndex,
    ReadReady,
    Reply,
    RestoreSnapshot,
    RoleChanged,
    Send,
    SnapshotTaken,
    SnapshotWritten,
    Tick,
    TransferLeadership,
    Vote,
    Written,
)
from tests.raft.sim_checks import Invariants
from tests.raft.sim_world import Disk, Knobs, Member, Request

TICK = 10  # simulated time units per logical tick


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
            f"replay: python -m tests.sim --seed {self.seed}"
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
        jitter = self.rng.randrange(1, TICK + 1)
        self._at(self.now + jitter, "tick", m.id, m.incarnation)

    def crash(self, m: Member) -> None:
        m.core = None
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
        elif kind == "client":
            self.on_client()
        elif kind == "fault":
            self.on_fault()
        elif kind == "crash":
            if self.members[mid].incarnation == inc:
                self.crash_and_restart(self.members[mid], quick=True)
        elif kind == "restart":
            m = self.members[mid]
            if not m.up:
                self.start(m)
        elif kind == "heal":
            self.heal()
        elif kind == "repair":
            self.on_repair()

    def on_tick(self, mid: int, inc: int) -> None:
        m = self.members[mid]
        if not m.up or m.incarnation != inc:
            return
        self.step(m, Tick())
        self._at(self.now + TICK, "tick", mid, inc)

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
        assert m.core is not None
        effects = m.core.step(event)
        self.interpret(m, effects)
        self.check_member(m)
        every = self.knobs.snapshot_every
        c = m.core
        if every and c is not None and c.applied - c.log.snapshot_index >= every:
            data = pickle.dumps(tuple(m.applied[: c.applied]))
            self.interpret(m, c.step(SnapshotTaken(c.applied, data)))

    # ------------------------------------------------------------ effects

    def interpret(self, m: Member, effects: list[Effect]) -> None:
        """The simulated shell: one branch per effect, executed in order."""
        for eff in effects:
            if isinstance(eff, Send):
                self.check_send(m, eff)
                self.send(m.id, eff.to, eff.msg)
            elif isinstance(eff, PersistState):
                m.disk.hard = HardState(eff.term, eff.voted_for)  # write + fsync: a barrier
            elif isinstance(eff, PersistEntries):
                assert m.core is not None
                self.check(self.invariants.persisted(m.core, eff))
                m.disk.pending.append(eff)
                self.start_sync(m)
            elif isinstance(eff, PersistSnapshot):
                m.disk.pending.append(eff)
                self.start_sync(m)
            elif isinstance(eff, RestoreSnapshot):
                self.on_restore(m, eff)
            elif isinstance(eff, Apply):
                for e in eff.entries:
                    self.on_apply(m, e)
            elif isinstance(eff, Reply):
                self.on_reply(m, eff)
            elif isinstance(eff, ReadReady):
                self.on_read_ready(m, eff)
            elif isinstance(eff, RoleChanged):
                self.on_role(m, eff)
            else:
                self.fail(f"unknown effect {eff!r}")

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

    # ------------------------------------------------------------ faults and clients

    def on_fault(self) -> None:
        if self.healed:
            return
        k = self.knobs
        total = k.crash_every + k.partition_every
        if self.rng.random() < 0.2:
            self.admin()
        elif self.rng.randrange(total) < k.crash_every:
            self.crash_and_restart(self.members[self.rng.choice(self.ids)], quick=False)
        elif self.rng.random() < 0.3:
            self.group = {i: 0 for i in self.ids}
        else:
            self.group = {i: self.rng.randrange(2) for i in self.ids}
        mean = min(x for x in (k.crash_every, k.partition_every) if x)
        self._at(self.now + self.rng.randint(1, 2 * mean), "fault", 0, 0)

    def crash_and_restart(self, m: Member, quick: bool) -> None:
        if not m.up:
            return
        self.crash(m)
        quick = quick or self.rng.random() < 0.5  # a fast restart can re-vote in the same term
        delay = self.rng.randint(1, TICK) if quick else self.rng.randint(TICK, 40 * TICK)
        self._at(self.now + delay, "restart", m.id, 0)

    def current_leader(self) -> Member | None:
        leaders = [m for m in self.members.values() if m.core and m.core.role == "leader"]
        return max(leaders, key=lambda m: m.core.term if m.core else 0) if leaders else None

    def admin(self) -> None:
        """Operator actions: leadership transfer, or a single-server membership change."""
        lead = self.current_leader()
        if lead is None or lead.core is None:
            return
        voters = lead.core.voters
        if self.rng.random() < 0.5:
            self.step(lead, TransferLeadership(self.rng.choice(self.ids)))
        elif len(voters) == len(self.ids):
            self.step(lead, ChangeMembership("remove", self.rng.choice(self.ids), "member"))
        else:
            missing = sorted(set(self.ids) - voters)
            self.step(lead, ChangeMembership("add", missing[0], "member"))

    def on_repair(self) -> None:
        """After healing: put every member back in the configuration."""
        lead = self.current_leader()
        if lead is not None and lead.core is not None and lead.core.voters != set(self.ids):
            self.admin()
        self._at(self.now + 5 * TICK, "repair", 0, 0)

    def heal(self) -> None:
        self.healed = True
        self.group = {i: 0 for i in self.ids}
        for m in self.members.values():
            if not m.up:
                self.start(m)
        self._at(self.now + 1, "repair", 0, 0)

    def on_client(self) -> None:
        if self.healed:
            return
        live = [i for i in self.ids if self.members[i].up]
        if live:
            hint = self.leader_hint
            target = hint if hint in live and self.rng.random() < 0.8 else self.rng.choice(live)
            m = self.members[target]
            assert m.core is not None
            corr = self.next_corr
            self.next_corr += 1
            if self.rng.random() < 0.8:
                cmd = f"c{corr}"
                self.requests[corr] = Request(m.id, m.incarnation, cmd, self.acked_hi)
                self.step(m, Propose(cmd, corr))
            else:
                self.requests[corr] = Request(m.id, m.incarnation, None, self.acked_hi)
                self.step(m, ReadIndex(corr))
        self._at(self.now + self.rng.randint(1, 2 * self.knobs.client_every), "client", 0, 0)

    def on_restore(self, m: Member, eff: RestoreSnapshot) -> None:
        entries = pickle.loads(eff.data)
        self.check(self.invariants.restored(m.id, eff.meta.index, entries))
        m.applied = list(entries)

    def on_reply(self, m: Member, eff: Reply) -> None:
        if eff.correlation == "member":
            return  # membership changes are fire-and-forget for the simulated operator
        req = self.requests.pop(eff.correlation, None)  # type: ignore[call-overload]
        if req is None:
            self.fail(f"reply to unknown or answered request {eff!r}")
        assert req is not None
        self.answered += 1
        if isinstance(eff.result, Accepted):
            index = eff.result.index
            if req.command is None or len(m.applied) < index:
                self.fail(f"{m.id} accepted {eff!r} before applying it")
            if m.applied[index - 1].command != req.command:
                self.fail(f"{m.id} acknowledged {req.command} at {index}, "
                          f"applied {m.applied[index - 1]!r}")
            self.acked[req.command] = index
            self.acked_hi = max(self.acked_hi, index)

    def on_read_ready(self, m: Member, eff: ReadReady) -> None:
        req = self.requests.pop(eff.correlation, None)  # type: ignore[call-overload]
        if req is None or req.command is not None:
            self.fail(f"ReadReady for unknown request {eff!r}")
        assert req is not None
        self.answered += 1
        if eff.index < req.issued_after:
            self.fail(f"stale read on {m.id}: read index {eff.index} < {req.issued_after}, "
                      "acknowledged before the read was issued")

    def on_role(self, m: Member, eff: RoleChanged) -> None:
        if eff.leader is not None and eff.leader != m.id:
            self.leader_hint = eff.leader
        if eff.role != "leader":
            return
        self.leader_hint = m.id
        assert m.core is not None
        self.check(self.invariants.leader_elected(m.core))

    # ------------------------------------------------------------ checkers

    def check_send(self, m: Member, eff: Send) -> None:
        msg = eff.msg
        if isinstance(msg, Vote):
            self.check(self.invariants.vote_sent(m.id, eff.to, msg))
        elif isinstance(msg, AppendResult) and msg.success and m.core is not None:
            self.check(self.invariants.ack_sent(m.core, m.disk, msg.index))
        else:
            return
        if not self.healed and self.rng.random() < self.knobs.buggify:
            self._at(self.now + 1, "crash", m.id, m.incarnation)  # crash at a bad moment

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, help="replay one seed")
    ap.add_argument("--seeds", type=int, default=100, help="run seeds start..start+N-1")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--trace", action="store_true", help="with --seed: print every step")
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    t0 = time.perf_counter()
    steps = 0
    failures = 0
    for seed in seeds:
        try:
            digest, n = run_seed(seed, echo=args.trace and args.seed is not None)
        except SimFailure as e:
            failures += 1
            print(e, file=sys.stderr)
            continue
        steps += n
        if args.seed is not None:
            print(f"seed {seed}: ok, {n} steps, knobs {Sim(seed).knobs}, trace {digest[:16]}")
    took = time.perf_counter() - t0
    print(f"{len(seeds)} seeds, {failures} failed, {steps} steps in {took:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
