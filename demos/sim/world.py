"""The simulated world around the cores: fault knobs, disks, members, client requests.

Everything here is plain data plus the disk's crash model;
`demos.sim.run.Sim` drives it from one seed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from actors.raft import (
    Entry,
    HardState,
    Options,
    PersistEntries,
    PersistSnapshot,
    RaftCore,
    SnapshotMeta,
)
from actors.raft.driver import Driver

TICK = 10  # simulated time units per logical tick


@dataclass(frozen=True)
class Knobs:
    """Fault and workload parameters, drawn from the seed."""

    n: int
    drop: float
    dup: float
    max_delay: int
    disk_max: int
    crash_every: int  # mean time between crashes (0: never)
    buggify: float  # chance to crash a member right after it votes or acknowledges
    partition_every: int  # mean time between partition changes (0: never)
    tear: float
    client_every: int
    snapshot_every: int  # compact after this many applied entries (0: never)
    notice_delay: int  # the longest an ArmNotice waits for its NoticeDue
    options: Options

    @classmethod
    def draw(cls, rng: random.Random) -> Knobs:
        return cls(
            n=rng.choice((3, 3, 5)),
            drop=rng.choice((0.0, 0.02, 0.1, 0.25)),
            dup=rng.choice((0.0, 0.02, 0.1)),
            max_delay=rng.choice((1, 5, 15, 30)),  # one way; keep RTT < election timeout
            disk_max=rng.choice((1, 5, 20)),
            crash_every=rng.choice((0, 300, 1000)),
            buggify=rng.choice((0.0, 0.0, 0.05)),
            partition_every=rng.choice((0, 200, 600)),
            tear=rng.choice((0.0, 0.5)),
            client_every=rng.choice((5, 20)),
            snapshot_every=rng.choice((0, 10, 50)),
            notice_delay=rng.choice((1, 5, 30)),
            options=Options(
                election_ticks=10,
                heartbeat_ticks=rng.choice((1, 2, 3)),
                max_batch=rng.choice((4, 16, 64)),
                max_inflight=rng.choice((1, 2, 8)),
                snapshot_chunk=rng.choice((256, 4096, 65536)),
                pre_vote=rng.random() < 0.7,
                check_quorum=rng.random() < 0.7,
                commit_notice=rng.random() < 0.5,  # off: followers learn commits by heartbeat
                defer_notice=rng.random() < 0.5,  # on: notices wait for a NoticeDue
            ),
        )


@dataclass
class Disk:
    """A member's disk: the synced hard state, snapshot and log, plus unsynced writes.

    Writes are group-committed: one fsync covers every write issued before it
    started, and completes after a random latency. The log is kept as a dict
    from index to entry, holding only entries after the snapshot.
    """

    hard: HardState = field(default_factory=HardState)
    log: dict[int, Entry] = field(default_factory=dict)
    snapshot: tuple[SnapshotMeta, bytes] | None = None
    pending: deque[PersistEntries | PersistSnapshot] = field(default_factory=deque)
    syncing: int = 0  # how many of `pending` the fsync in progress covers

    def finish_sync(self) -> list[PersistEntries | PersistSnapshot]:
        done = [self.pending.popleft() for _ in range(self.syncing)]
        for op in done:
            self.write(op)
        self.syncing = 0
        return done

    def write(self, op: PersistEntries | PersistSnapshot, torn_at: int | None = None) -> None:
        if isinstance(op, PersistSnapshot):
            held = self.log.get(op.meta.index)
            keep = held is not None and held.term == op.meta.term
            self.log = {i: e for i, e in self.log.items() if keep and i > op.meta.index}
            self.snapshot = (op.meta, op.data)
            return
        for i in [i for i in self.log if i >= op.from_index]:
            del self.log[i]
        for e in op.entries[:torn_at]:
            self.log[e.index] = e

    def crash(self, rng: random.Random, tear: float) -> None:
        """Unsynced writes: a prefix reached the platter, the last of it maybe torn."""
        survived = rng.randint(0, len(self.pending))
        for k in range(survived):
            op = self.pending[k]
            torn = k == survived - 1 and isinstance(op, PersistEntries) and rng.random() < tear
            # torn: the checksum of the last record fails and recovery drops it and the rest
            self.write(op, rng.randrange(len(op.entries)) if torn else None)  # type: ignore[union-attr]
        self.pending.clear()
        self.syncing = 0

    def entries(self) -> list[Entry]:
        return [self.log[i] for i in sorted(self.log)]


@dataclass
class Member:
    id: int
    disk: Disk
    core: RaftCore | None = None
    driver: Driver | None = None  # runs `core`; None while down
    incarnation: int = 0
    applied: list[Entry] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.core is not None


@dataclass
class Request:
    member: int
    incarnation: int
    command: str | None  # None for a read
    issued_after: int  # highest acknowledged index when issued (reads)
