"""The nemesis: real faults on the node processes, chosen from a seed, one at a time.

Each round waits a gap, applies one fault, holds it, then heals it; every fault is
recorded on the timeline (monotonic seconds since the run's start, and what was done).

    kill       SIGKILL one or two nodes (the leader half the time); restart them from disk,
               after appending a torn record to the newest WAL file half the time
    pause      SIGSTOP one or two nodes (the leader half the time); SIGCONT
    partition  random halves (2|3), the leader isolated, or a bridge (A | B with one node
               that still sees both), cut with a `Partitioner`
    member     remove a follower's member and add a new one on its node (RegisterDb only)

At most a minority (two of five) is ever down at once, so a healthy majority exists
outside the faults. `heal_all` undoes whatever is in force: the run calls it before the
final checks.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from actors import erlang, net_kernel
from actors.ra import _records

from .cluster import Db, Nodes
from .netns import NetnsNetwork, reconnect

KINDS = ("kill", "pause", "partition", "member")
HEAL_ATTEMPTS = 3  # a heal that fails this often ends the run with its error

log = logging.getLogger("demos.jepsen")


@dataclass
class Fault:
    kind: str
    start_s: float
    end_s: float | None
    what: str


class Partitioner(Protocol):
    def cut(self, side_a: list[str], side_b: list[str]) -> None: ...
    def heal(self, side_a: list[str], side_b: list[str]) -> None: ...


class TransportPartitioner:
    """Cuts through the transport's partition API (`net_kernel.partition`): every frame
    between the two sides is dropped, heartbeats too."""

    def cut(self, side_a: list[str], side_b: list[str]) -> None:
        result = net_kernel.partition(side_a, side_b, 5000)
        if result != "ok":
            raise RuntimeError(f"net_kernel.partition: {result!r}")

    def heal(self, side_a: list[str], side_b: list[str]) -> None:
        net_kernel.heal(side_a, side_b, 5000)


class NetnsPartitioner:
    """Cuts packets for real: blackhole routes between the nodes' network namespaces (the
    controller's links stay up). After a heal the nodes are told to reconnect: a node
    does not redial a peer it lost."""

    def __init__(self, net: NetnsNetwork) -> None:
        self.net = net

    def cut(self, side_a: list[str], side_b: list[str]) -> None:
        index = {node: i for i, node in enumerate(self.net.nodes())}
        self.net.cut([index[n] for n in side_a], [index[n] for n in side_b])

    def heal(self, side_a: list[str], side_b: list[str]) -> None:
        self.net.heal()
        reconnect(self.net.nodes())


class Nemesis:
    """Run `rounds` until `stop_at` (monotonic s); `t0` is the run's start."""

    def __init__(self, seed: int, kinds: list[str], nodes: Nodes, db: Db,
                 partitioner: Partitioner, t0: float, *, gap_s: tuple[float, float] = (1.0, 3.0),
                 hold_s: tuple[float, float] = (2.0, 5.0)) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown nemesis kinds {sorted(unknown)}; known: {KINDS}")
        self.rng = random.Random(seed)
        self.kinds = list(kinds)
        self.nodes, self.db, self.partitioner = nodes, db, partitioner
        self.t0 = t0
        self.gap_s, self.hold_s = gap_s, hold_s
        self.timeline: list[Fault] = []
        self._undo: list[Any] = []  # what heal_all must still do, in order

    def now(self) -> float:
        return time.monotonic() - self.t0

    def run(self, stop_at: float) -> None:
        """Faults until `stop_at`; each one healed before the next."""
        while self.kinds and self._wait_until(min(stop_at, time.monotonic() +
                                                  self.rng.uniform(*self.gap_s)), stop_at):
            kind = self.rng.choice(self.kinds)
            fault = Fault(kind, self.now(), None, "")
            try:
                fault.what = getattr(self, f"_{kind}")()
            except Exception as exc:  # e.g. a node that did not answer: heal what was done
                fault.what = f"{kind} failed half-way: {exc!r}"
                log.warning("nemesis: %s", fault.what)
            self.timeline.append(fault)
            self._wait_until(time.monotonic() + self.rng.uniform(*self.hold_s), float("inf"))
            self.heal_all()
            fault.end_s = self.now()

    def _wait_until(self, when: float, stop_at: float) -> bool:
        left = when - time.monotonic()
        if left > 0:
            erlang.receive(lambda _m: False, int(left * 1000))
        return time.monotonic() < stop_at

    def heal_all(self) -> None:
        """Undo every fault in force (resume, heal, restart), oldest first."""
        while self._undo:
            for attempt in range(1, HEAL_ATTEMPTS + 1):
                try:
                    self._undo[0]()
                    break
                except Exception as exc:  # e.g. a restarted node not reachable yet
                    log.warning("nemesis: heal attempt %d failed: %r", attempt, exc)
                    if attempt == HEAL_ATTEMPTS:
                        raise
            self._undo.pop(0)

    # -- the faults ---------------------------------------------------------------------------

    def _victims(self) -> list[str]:
        """One or two nodes; the leader among them half the time."""
        alive = self.nodes.alive()
        count = self.rng.choice([1, 2])
        leader = self.db.leader()
        chosen: list[str] = []
        if leader in alive and self.rng.random() < 0.5:
            chosen.append(leader)
        rest = [n for n in alive if n not in chosen]
        self.rng.shuffle(rest)
        chosen += rest[:count - len(chosen)]
        return chosen

    def _kill(self) -> str:
        victims = self._victims()
        torn = self.rng.random() < 0.5
        killed: list[str] = []  # the undo is registered first, for what a failure leaves
        self._undo.append(lambda: self._restart(killed, torn))
        for node in victims:
            self.nodes.kill(node)
            killed.append(node)
        return f"SIGKILL {_short(victims)}" + ("; torn WAL tail on restart" if torn else "")

    def _restart(self, victims: list[str], torn: bool) -> None:
        for node in victims:
            if torn:
                tear_wal_tail(self.nodes.data_dir(node), self.rng)
            self.nodes.restart(node)
            self.db.restart(node)

    def _pause(self) -> str:
        victims = self._victims()
        paused: list[str] = []

        def resume() -> None:
            for node in paused:
                self.nodes.resume(node)
        self._undo.append(resume)  # first, for what a failure leaves
        for node in victims:
            self.nodes.pause(node)
            paused.append(node)
        return f"SIGSTOP {_short(victims)}"

    def _partition(self) -> str:
        nodes = list(self.nodes.all)
        self.rng.shuffle(nodes)
        shape = self.rng.choice(["halves", "isolate-leader", "bridge"])
        leader = self.db.leader()
        if shape == "isolate-leader" and leader is not None:
            side_a, side_b = [leader], [n for n in nodes if n != leader]
        elif shape == "bridge":
            side_a, side_b = nodes[:2], nodes[3:]  # nodes[2] sees both sides
        else:
            shape = "halves"
            side_a, side_b = nodes[:2], nodes[2:]
        # the heal is registered first: a cut that fails half-way (a node did not answer)
        # has cut some links already, and heal_all must undo those too
        self._undo.append(lambda: self.partitioner.heal(side_a, side_b))
        self.partitioner.cut(side_a, side_b)
        bridge = f" (bridge {_short([nodes[2]])})" if shape == "bridge" else ""
        return f"partition {shape}: {_short(side_a)} | {_short(side_b)}{bridge}"

    def _member(self) -> str:
        replace = getattr(self.db, "replace", None)
        if replace is None:
            return "member: not supported by this workload (skipped)"
        leader = self.db.leader()
        followers = [n for n in self.db.members() if n != leader and n in self.nodes.alive()]
        if not followers:
            return "member: no follower to replace (skipped)"
        return str(replace(self.rng.choice(sorted(followers))))


def tear_wal_tail(data_dir: str, rng: random.Random) -> str:
    """A torn write at the end of the newest WAL file, as a crash in the middle of a write
    leaves one: a proper prefix of a framed record, or zeros (the OS extended the file but
    never wrote its blocks). Recovery must truncate it, with a warning. (Other bytes there
    are corruption, which stops the member loudly: see `actors.ra._records`.)"""
    wal = Path(data_dir) / "wal"
    files = sorted(wal.glob("*.wal")) if wal.is_dir() else []
    if not files:
        return "no WAL file"
    if rng.random() < 0.5:
        torn = bytes(rng.randint(1, 4096))
    else:
        record = _records.encode(rng.randbytes(rng.randint(16, 256)))
        torn = record[:rng.randint(1, len(record) - 1)]
    with open(files[-1], "ab") as f:
        f.write(torn)
    return f"{len(torn)} torn bytes"


def _short(nodes: list[str]) -> str:
    return ",".join(n.split("@")[0] for n in nodes)
