"""One cluster member's state in its server process, and the effect interpreter.

Rules of this module:
* `Member` owns a `RaftCore`, the machine and its state, and is the core's
  `RaftIO`: it runs the core through `actors.raft.driver.Driver`, the same
  loop the simulator and the golden harness use (one branch per effect, effects
  in order, follow-up events queued, a leader's `PersistEntries` after the
  `Send`s that follow it). `PersistState` is written and fsynced here before
  anything else happens; `PersistEntries` goes to the node's WAL writer, which
  batches fsyncs and sends back `("$ra_written", index, term)`; `Send` goes
  over distribution; `PersistSnapshot` is synchronous and posts
  `SnapshotWritten`. `trace` (a callback given each effect) is for tools.
  `ArmNotice` sends the member `NOTICE` after `notice_delay_ms`, which
  `RaServer` steps as `NoticeDue`.
* Log entries of kind "command" hold `(system_time_ms, command)`: the
  leader's clock when it appended the command, replicated with it, so
  `meta["system_time"]` is the same on every member.
* Machine effects are run by the leader only, except `release_cursor`,
  which every member honours (log compaction is local).
* After each `Apply` (before the replies it answers) and after every outermost
  `step` (a new leader) the member publishes its *view*: an immutable
  `View(index, term, state, leader)` of what it has applied, stored in its
  process dictionary under `VIEW_KEY` by one attribute swap. `ra.local_query`
  on the same node reads it without a call or a lock (`local_view`).
* A correlation says who waits for an answer: `("call", from_)` for
  `process_command`, `("pipe", pid, corr)` for `pipeline_command`,
  `("read", from_, fun)` for `consistent_query` (`("reads", [(from_, fun),
  ...])` for several sharing one ReadIndex round), `("member", from_)` for
  membership changes. `None` means nobody waits (ra's own commands).
"""

from __future__ import annotations

import functools
import logging
import pickle
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from .. import _context, erlang, gen_server, ra_machine
from ..raft import (
    Accepted,
    AppendEntries,
    Entry,
    RaftCore,
    Rejected,
    SnapshotMeta,
    SnapshotTaken,
    SnapshotWritten,
)
from ..raft.driver import Driver, Trace
from . import _machine_effects
from ._records import dumps

log = logging.getLogger("actors.ra")

RECONNECT_INTERVAL = 1.0  # seconds between attempts to reach a member's node that is down

ServerId = tuple[str, str]
VIEW_KEY = "$ra_view"
NOTICE = "$ra_notice"
NOTICE_DELAY_MS = 2  # a deferred commit notice waits this long for an append to carry it


@dataclass(frozen=True, slots=True)
class View:
    """What a member has applied, as published for lock-free local reads. `state` is the
    machine state itself (not a copy): readers must not mutate it."""

    index: int
    term: int
    state: Any
    leader: ServerId | None


def local_view(server_id: Any) -> View | None:
    """The published view of member `server_id` if it runs on the caller's node, else None.

    Lock-free: one registry lookup and one dictionary read. A member that is not running
    (or not yet published) gives None, and the caller falls back to a call."""
    if type(server_id) not in (tuple, list) or len(server_id) != 2:
        return None
    name, node = server_id
    here = _context.current_node()
    if node != here.name or type(name) is not str:
        return None
    proc = here.whereis(name)
    if proc is None or not proc.alive:
        return None
    return proc.dictionary.get(VIEW_KEY)


class Member:
    """A member's shell state. Built by `RaServer.init` from recovered storage."""

    def __init__(self, cfg: dict[str, Any], core: RaftCore, machine: ra_machine.Machine,
                 state: Any, store: Any, names: Any, trace: Trace | None = None) -> None:
        self.cfg = cfg
        self.id: ServerId = core.id
        self.uid: str = cfg["uid"]
        self.core = core
        self.machine = machine
        self.state = state
        self.store = store  # MemberStore: hard state (the rest goes through the writers)
        self.names = names  # the system's registered names
        self.results: dict[int, Any] = {}  # index -> reply, for the Replies of one step
        self.pipe_out: dict[Any, list[tuple[Any, Any]]] = defaultdict(list)
        self.waiting_reads: list[tuple[int, Any]] = []  # (index, correlation)
        self.monitors: dict[Any, Any] = {}  # machine-monitored pid -> ref
        self.timers: dict[Any, Any] = {}  # machine timer name -> timer ref
        self.applied_term = core.log.snapshot_term
        self.proposals: list[tuple[Any, Any]] = []  # (command, correlation) not yet proposed
        self.reads: list[tuple[Any, Any]] = []  # (from, fun) of consistent queries not yet asked
        self.down_nodes: dict[str, float] = {}  # node -> when we last tried to reach it
        self.entered = ""  # the last role given to the machine's state_enter
        self.tick_count = 0
        self.view: View | None = None  # the last view published
        self.node = erlang.node()
        proc = _context.current_process()  # the member's own process: its dictionary
        self.pdict: dict[Any, Any] = proc.dictionary if proc is not None else {}
        self.last_wire: tuple[Any, Pickled] | None = None  # the last AppendEntries pickled
        self.read_rounds = 0  # ReadIndex rounds started (several queries may share one)
        tick_ms = cfg.get("tick_ms", 50)
        self.ticks_per_machine_tick = max(1, cfg.get("machine_tick_ms", 1000) // tick_ms)
        self.driver = Driver(core, self, trace=trace,
                             snapshot_every=cfg.get("snapshot_interval", 4096) or 0)

    # ------------------------------------------------------------------ stepping

    def step(self, event: Any) -> None:
        """Feed one event to the core through the driver (effects run in order; follow-up
        events are queued, never re-entered). Replies collected meanwhile are sent, and
        the view published, once the driver's queue is empty (`idle`)."""
        self.driver.step(event)

    def idle(self) -> None:
        self.last_wire = None
        self._flush_pipeline_replies()
        self.publish()

    def stepped(self, event: Any) -> None:
        pass

    def publish(self, index: int | None = None) -> None:
        """Swap in a new `View` if the applied index, the state or the leader changed.
        `index` is the last index applied to `self.state` (default: the core's). Called
        in the member's own process (its process dictionary)."""
        view = self.view
        leader = self.core.leader
        index = self.core.applied if index is None else index
        if view is not None and view.index == index and \
                view.state is self.state and view.leader == leader:
            return
        self.view = View(index, self.applied_term, self.state, leader)
        self.pdict[VIEW_KEY] = self.view

    # ------------------------------------------------------------------ RaftIO

    def send(self, to: Any, msg: Any) -> None:
        if self._reachable(to[1]):
            erlang.send(to, ("$ra", self._wire(to, msg)))

    def persist_state(self, term: int, voted_for: Any) -> None:
        self.store.save_hard_state(term, voted_for)

    def persist_entries(self, from_index: int, entries: tuple[Entry, ...]) -> None:
        erlang.send(self.names.wal, ("append", self.uid, from_index, entries, erlang.self()))

    def persist_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        # Mirror a dropped suffix to disk first, in order with the entry writes,
        # so a restart cannot bring back entries the core discarded (§7).
        gen_server.call(self.names.wal, ("sync_append", self.uid,
                                         self.core.log.last_index + 1, ()), "infinity")
        gen_server.call(self.names.segment_writer,
                        ("snapshot", self.uid, meta, data), "infinity")
        self.driver.post(SnapshotWritten(meta.index, meta.term))

    def restore_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        self.state = pickle.loads(data)
        self.applied_term = meta.term
        self.publish(meta.index)

    def reply(self, correlation: Any, result: Accepted | Rejected) -> None:
        self._reply(correlation, result)

    def read_ready(self, correlation: Any, index: int) -> None:
        self.waiting_reads.append((index, correlation))
        self._serve_reads()

    def role_changed(self, role: str, term: int, leader: Any) -> None:
        if role != self.entered and role in ("leader", "follower"):
            self.entered = role  # state_enter once per role change, not per leader
            self._run_machine_effects(self.machine.state_enter(role, self.state))

    def arm_notice(self) -> None:
        """`NOTICE` to this member after the notice delay. On a distributed node the I/O
        role's poll times it (`Distribution.call_later`): the member runs on that thread
        in the steady state, so arming and firing wake no timer thread."""
        delay_ms = self.cfg.get("notice_delay_ms", NOTICE_DELAY_MS)
        proc = _context.current_process()
        dist = proc.node.dist if proc is not None else None
        if proc is None or dist is None:
            erlang.send_after(delay_ms, erlang.self(), NOTICE)
            return
        dist.call_later(delay_ms / 1000.0, functools.partial(proc.deliver, NOTICE))

    def snapshot_data(self, index: int) -> bytes:
        return dumps(self.state)

    def _reachable(self, node: str) -> bool:
        """Messages to a node that is down are dropped (Raft retransmits), except one a
        second, which tries to reconnect: a dead node costs no connection attempt per
        heartbeat."""
        last = self.down_nodes.get(node)
        if last is None:
            return True
        now = time.monotonic()
        if now - last < RECONNECT_INTERVAL:
            return False
        self.down_nodes[node] = now
        return True

    def _wire(self, to: Any, msg: Any) -> Any:
        """`msg` as sent to `to`: an AppendEntries with entries for another node is pickled
        once, and the same bytes go to every follower that gets an equal message (the
        followers of a leader in step get the same batch)."""
        if type(msg) is not AppendEntries or not msg.entries or to[1] == self.node:
            return msg
        last = self.last_wire
        if last is None or last[0] != msg:
            last = self.last_wire = (msg, Pickled(pickle.dumps(msg, 5)))
        return last[1]

    # ------------------------------------------------------------------ applying

    def apply(self, entries: tuple[Entry, ...]) -> None:
        for entry in entries:
            self.applied_term = entry.term
            if entry.kind != "command":
                continue
            # a command entry holds what the shell proposed: (system_time_ms, command)
            system_time, command = cast("tuple[int, Any]", entry.command)
            meta = {"index": entry.index, "term": entry.term, "system_time": system_time}
            reply, effects = self._apply_one(meta, command)
            self.results[entry.index] = reply
            self._run_machine_effects(effects)
        if entries:  # before the Replies that follow: a caller then reads its own write
            self.publish(entries[-1].index)
        self._serve_reads()

    def _apply_one(self, meta: dict[str, Any], command: Any) -> tuple[Any, list[Any]]:
        """Run `apply`; an exception or a bad return leaves the state unchanged.

        Every member fails the same way (apply is deterministic), so the
        replicas stay identical; the caller gets ("error", ...).
        """
        try:
            state, reply, effects = ra_machine.normalise_result(
                self.machine.apply(meta, command, self.state))
        except Exception as exc:  # reported to the caller and logged
            log.error("%s: machine apply failed at index %s: %r", self.id, meta["index"], exc)
            return ApplyFailed(("machine_exception", repr(exc))), []
        self.state = state
        return reply, effects

    def _snapshot(self, index: int, state: Any) -> None:
        """Queued behind the effects being run if the driver is running (an Apply or a
        role change); stepped at once otherwise (the machine's tick)."""
        self.driver.step(SnapshotTaken(index, dumps(state)))

    def _run_machine_effects(self, effects: list[Any]) -> None:
        for effect in effects:
            if type(effect) is tuple and effect and effect[0] == "release_cursor":
                _, index, state = effect
                if index <= self.core.applied:
                    self._snapshot(index, state)
            elif self.core.role == "leader":
                _machine_effects.run(self, effect)

    # ------------------------------------------------------------------ replies

    def leader_id(self) -> ServerId | None:
        return self.core.leader

    def _reply(self, correlation: Any, result: Accepted | Rejected) -> None:
        if correlation is None:
            return
        kind = correlation[0]
        if isinstance(result, Accepted):
            reply = self.results.pop(result.index, None)
            if kind == "call":
                answer = ("error", reply.reason) if isinstance(reply, ApplyFailed) else \
                    ("ok", reply, self.id)
                gen_server.reply(correlation[1], answer)
            elif kind == "pipe":
                if isinstance(reply, ApplyFailed):
                    reply = ("error", reply.reason)
                self.pipe_out[correlation[1]].append((correlation[2], reply))
            elif kind == "member":
                gen_server.reply(correlation[1], ("ok", (result.index, self.core.term), self.id))
            return
        answer = rejection(result, self.leader_id())
        if kind in ("read", "reads"):
            for from_, _fun in _readers(correlation):
                gen_server.reply(from_, answer)
        elif kind == "pipe":
            erlang.send(correlation[1], ("ra_event", self.id, (
                "rejected", ("not_leader", answer[1] if answer[0] == "redirect" else None,
                             correlation[2]))))
        else:
            gen_server.reply(correlation[1], answer)

    def _flush_pipeline_replies(self) -> None:
        self.results.clear()
        if not self.pipe_out:
            return
        for pid, applied in self.pipe_out.items():
            erlang.send(pid, ("ra_event", self.id, ("applied", applied)))
        self.pipe_out.clear()

    def _serve_reads(self) -> None:
        if not self.waiting_reads:
            return
        ready = [w for w in self.waiting_reads if w[0] <= self.core.applied]
        self.waiting_reads = [w for w in self.waiting_reads if w[0] > self.core.applied]
        for _index, correlation in ready:
            for from_, fun in _readers(correlation):
                gen_server.reply(from_, run_query(fun, self.state, self.id))


def _readers(correlation: tuple[Any, ...]) -> list[tuple[Any, Any]]:
    """The (from, fun) pairs waiting on a read correlation: ("read", from, fun) for one
    consistent query, ("reads", [(from, fun), ...]) for a batch sharing one round."""
    if correlation[0] == "read":
        return [(correlation[1], correlation[2])]
    return list(correlation[1])


class Pickled:
    """A message pickled once, to be sent to several nodes: it pickles as a call to
    `pickle.loads` of its bytes, so the receiver gets the message itself."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (pickle.loads, (self.data,))


class ApplyFailed:
    """The reply of a command whose `apply` raised: its caller gets ("error", reason)."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


def rejection(result: Rejected, leader: ServerId | None) -> tuple[Any, ...]:
    """What a caller is told when the core refused its request."""
    if result.reason == "not_leader":
        return ("redirect", result.leader if result.leader is not None else leader)
    return ("error", result.reason)


def run_query(fun: Any, state: Any, leader: Any) -> tuple[Any, ...]:
    """("ok", fun(state), leader), or ("error", ("query_failed", repr)) if fun raises."""
    try:
        return ("ok", fun(state), leader)
    except Exception as exc:  # the query is the caller's code
        return ("error", ("query_failed", repr(exc)))
