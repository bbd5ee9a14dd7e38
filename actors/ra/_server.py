"""`RaServer`: the gen_server that runs one cluster member (ra's `ra_server_proc`).

Rules of this module:
* It is registered locally under the member's name, so its server id
  `(name, node)` is an ordinary gen_server reference on any node.
* `init` recovers the member from disk (snapshot + segments + WAL, through the
  segment writer, which serialises file access) and builds the pure core. A
  corrupt log stops it with `("corrupt_log", "<file> at offset <n>: ...")`.
* Peer messages arrive as `("$ra", message)` (anything in that envelope that is
  not a raft peer message is logged and dropped); logical time as `"$ra_tick"`
  every `tick_ms`; WAL completions as `("$ra_written", index, term)`.
* The leader refuses, with `("error", ("bad_command", why))`, a command that does
  not survive a pickle round trip: followers could never receive it.
* A request the member cannot serve because it is not the leader is answered
  `("redirect", leader_or_None)`; `actors.ra` follows redirects for the caller.
* A nodedown of the leader's node is fed to the core as `PeerDown`, so a SIGKILL
  of the leader's node is noticed at once rather than after an election timeout.
"""

from __future__ import annotations

import logging
import pickle
import random
import time
from typing import Any

from .. import _context, erlang, gen_server, net_kernel, ra_machine
from ..raft import (
    Campaign,
    ChangeMembership,
    Message,
    NoticeDue,
    Options,
    PeerDown,
    Propose,
    ProposeMany,
    RaftCore,
    ReadIndex,
    Tick,
    TransferLeadership,
    Written,
)
from . import _machine_effects
from ._member import NOTICE_DELAY_MS, Member, Pickled, run_query
from ._member_store import MemberStore
from ._names import SystemNames
from ._records import dumps

log = logging.getLogger("actors.ra")

TICK = "$ra_tick"


class RaServer(gen_server.GenServer):
    """One member. `init` takes the member config dict written by `start_server`."""

    def init(self, cfg: dict[str, Any]) -> Any:
        erlang.process_flag("trap_exit", True)
        delay = cfg.get("notice_delay_ms", NOTICE_DELAY_MS)
        if type(delay) is not int or delay < 0:
            log.error("ra member %s cannot start: notice_delay_ms %r", cfg["name"], delay)
            return ("stop", ("bad_option", ("notice_delay_ms", delay)))
        names = SystemNames(cfg["system"])
        uid = cfg["uid"]
        wal_ops = gen_server.call(names.wal, ("ops", uid), "infinity")
        recovered = gen_server.call(names.segment_writer, ("recover", uid, wal_ops), "infinity")
        if recovered[0] == "error":
            log.error("ra member %s cannot start: %s", cfg["name"], recovered[1])
            return ("stop", recovered[1])
        rec = recovered[1]
        machine, state = ra_machine.resolve(cfg["machine"])
        if rec.snapshot is not None:
            state = pickle.loads(rec.snapshot[1])
        me = (cfg["name"], erlang.node())
        opts = Options(election_ticks=cfg.get("election_ticks", 10),
                       max_batch=cfg.get("max_batch", 64), max_inflight=cfg.get("max_inflight", 16),
                       commit_notice=cfg.get("commit_notice", True),
                       defer_notice=delay > 0)
        core = RaftCore(me, cfg["members"], random.Random(), opts,
                        rec.hard_state, rec.entries, rec.snapshot)
        store = MemberStore(cfg["data_dir"], uid)
        member = Member(cfg, core, machine, state, store, names)
        member.publish()
        net_kernel.monitor_nodes(True)
        erlang.send_after(cfg.get("tick_ms", 50), erlang.self(), TICK)
        return ("ok", member)

    # ------------------------------------------------------------------ requests

    def handle_call(self, request: Any, from_: Any, m: Member) -> Any:
        core = m.core
        match request:
            case ("$ra_command", command):
                if core.role != "leader":
                    return ("reply", ("redirect", m.leader_id()), m)
                refused = _unreplicable(command)
                if refused is not None:
                    return ("reply", refused, m)
                _queue(m, command, ("call", from_))
                return ("noreply", m)
            case ("$ra_consistent_query", fun):
                if core.role != "leader":
                    return ("reply", ("redirect", m.leader_id()), m)
                _queue_read(m, from_, fun)
                return ("noreply", m)
            case ("$ra_local_query", fun):
                answer = run_query(fun, m.state, m.leader_id())
                if answer[0] == "ok":
                    answer = ("ok", ((core.applied, m.applied_term), answer[1]), answer[2])
                return ("reply", answer, m)
            case ("$ra_leader_query", fun):
                if core.role != "leader":
                    return ("reply", ("redirect", m.leader_id()), m)
                return self.handle_call(("$ra_local_query", fun), from_, m)
            case ("$ra_member", op, member) if op in ("add", "remove") and _is_server_id(member):
                if core.role != "leader":
                    return ("reply", ("redirect", m.leader_id()), m)
                m.step(ChangeMembership(op, tuple(member), ("member", from_)))
                return ("noreply", m)
            case "$ra_members":
                return ("reply", ("ok", sorted(core.voters), m.leader_id()), m)
            case ("$ra_transfer", target) if _is_server_id(target):
                return ("reply", self._transfer(m, tuple(target)), m)
            case "$ra_trigger_election":
                m.step(Campaign())
                return ("reply", "ok", m)
            case "$ra_overview":
                return ("reply", overview(m), m)
            case ("$ra_trace", fun) if fun is None or callable(fun):
                m.driver.trace = fun  # tools: fun(core, effect) before each effect runs
                return ("reply", "ok", m)
        return ("reply", ("error", ("bad_request", request)), m)

    @staticmethod
    def _transfer(m: Member, target: tuple[str, str]) -> Any:
        if m.core.role != "leader":
            return ("error", ("not_leader", m.leader_id()))
        if target == m.id:
            return "already_leader"
        if target not in m.core.voters:
            return ("error", "unknown_member")
        m.step(TransferLeadership(target))
        return "ok"

    def handle_cast(self, msg: Any, m: Member) -> Any:
        match msg:
            case ("$ra_pipeline", command, correlation, pid):
                _pipeline(m, [(command, correlation)], pid)
            case ("$ra_pipeline_many", list(items), pid) if all(
                    type(i) is tuple and len(i) == 2 for i in items):
                _pipeline(m, items, pid)
        return ("noreply", m)

    # ------------------------------------------------------------------ events

    def handle_info(self, msg: Any, m: Member) -> Any:
        match msg:
            case ("$ra", message) if isinstance(message, Message):
                m.step(message)
            case ("$ra", Pickled() as pickled):  # only if a transport ever skips pickling
                message = pickle.loads(pickled.data)
                if isinstance(message, Message):
                    m.step(message)
            case ("$ra", message):  # a core's local event or junk: never from a peer
                log.warning("%s: dropped %.200r: not a raft peer message", m.id, message)
            case ("$ra_written", index, term):
                m.step(Written(index, term))
            case "$ra_tick":
                self._tick(m)
            case "$ra_notice":
                m.step(NoticeDue())
            case "$ra_propose":
                _propose_queued(m)
            case "$ra_read":
                _read_queued(m)
            case ("nodedown", node):
                m.down_nodes.setdefault(node, time.monotonic())
                if m.core.leader is not None and m.core.leader[1] == node:
                    m.step(PeerDown(m.core.leader))
                self._machine_command(m, ("nodedown", node), lambda: _watches_node(m, node))
            case ("nodeup", node):
                m.down_nodes.pop(node, None)
                self._machine_command(m, ("nodeup", node), lambda: _watches_node(m, node))
            case ("DOWN", _ref, "process", pid, reason) if pid in m.monitors:
                del m.monitors[pid]
                self._machine_command(m, ("down", pid, reason), lambda: True)
            case (_machine_effects.TIMER_TAG, name):
                m.timers.pop(name, None)
                self._machine_command(m, ("timeout", name), lambda: True)
        return ("noreply", m)

    @staticmethod
    def _tick(m: Member) -> None:
        erlang.send_after(m.cfg.get("tick_ms", 50), erlang.self(), TICK)
        m.step(Tick())
        m.tick_count += 1
        if m.tick_count % m.ticks_per_machine_tick == 0:
            effects = m.machine.tick(erlang.system_time("millisecond"), m.state)
            m._run_machine_effects(effects)

    @staticmethod
    def _machine_command(m: Member, command: Any, relevant: Any) -> None:
        """ra's own commands reach the machine through the log, proposed by the leader."""
        if m.core.role == "leader" and relevant():
            m.step(Propose((erlang.system_time("millisecond"), command), None))

    def terminate(self, reason: Any, m: Any) -> Any:
        return "ok"


def _pipeline(m: Member, items: list[tuple[Any, Any]], pid: Any) -> None:
    """Pipelined commands (command, correlation) from `pid`: queued for one proposal, or
    answered at once if this member is not the leader or a command cannot replicate."""
    if m.core.role != "leader":
        leader = m.leader_id()
        for _command, correlation in items:
            erlang.send(pid, ("ra_event", m.id, ("rejected", ("not_leader", leader, correlation))))
        return
    refused = []
    all_fine = len(items) > 1 and _unreplicable([command for command, _ in items]) is None
    for command, correlation in items:
        why = None if all_fine else _unreplicable(command)
        if why is None:
            _queue(m, command, ("pipe", pid, correlation), len(items) > 1)
        else:
            refused.append((correlation, why))
    if refused:
        erlang.send(pid, ("ra_event", m.id, ("applied", refused)))


def _queue(m: Member, command: Any, correlation: Any, more: bool = False) -> None:
    """Commands that arrive together are proposed together. With nothing else in the
    mailbox (and no `more` to come with this one) the command is proposed at once.
    Otherwise the first of a batch sends the server a "$ra_propose", which queues behind
    every message already in its mailbox; one proposal then makes one WAL write and one
    AppendEntries per follower for all."""
    if not m.proposals and not more and _mailbox_empty():
        m.step(ProposeMany((((erlang.system_time("millisecond"), command), correlation),)))
        return
    if not m.proposals:
        erlang.send(erlang.self(), "$ra_propose")
    m.proposals.append((command, correlation))


def _propose_queued(m: Member) -> None:
    batch, m.proposals = m.proposals, []
    if batch:
        now = erlang.system_time("millisecond")
        m.step(ProposeMany(tuple([((now, cmd), corr) for cmd, corr in batch])))


def _queue_read(m: Member, from_: Any, fun: Any) -> None:
    """Consistent queries that arrive together share one ReadIndex round (one heartbeat
    to every follower), as commands share a proposal: each query still arrived before
    the round began, which is all linearizability needs."""
    if not m.reads and _mailbox_empty():
        m.read_rounds += 1
        m.step(ReadIndex(("read", from_, fun)))
        return
    if not m.reads:
        erlang.send(erlang.self(), "$ra_read")
    m.reads.append((from_, fun))


def _read_queued(m: Member) -> None:
    batch, m.reads = m.reads, []
    m.read_rounds += 1 if batch else 0
    if len(batch) == 1:
        m.step(ReadIndex(("read", *batch[0])))
    elif batch:
        m.step(ReadIndex(("reads", batch)))


def _mailbox_empty() -> bool:
    """Is the calling process's mailbox empty (nothing else to batch with)? Read without
    its lock: a message that lands meanwhile is simply not batched with this one."""
    proc = _context.current_process()
    return proc is None or not proc.mailbox


def _unreplicable(command: Any) -> tuple[str, Any] | None:
    """The error for a command that could not be replicated, which must not enter the log
    (followers would drop every AppendEntries holding it); None for any other command.
    A batch of pipelined commands is checked at once (a list of them), then one by one
    only if the batch fails."""
    try:
        pickle.loads(dumps(command))
    except Exception as exc:
        return ("error", ("bad_command", f"cannot be replicated: {exc!r:.200}"))
    return None


def _is_server_id(x: Any) -> bool:
    """A (name, node) pair, as a tuple or a list."""
    return (type(x) in (tuple, list) and len(x) == 2 and all(type(p) is str for p in x)
            and "@" in x[1])


def _watches_node(m: Member, node: str) -> bool:
    return any(erlang.node(pid) == node for pid in m.monitors)


def overview(m: Member) -> dict[str, Any]:
    """`ra.member_overview`: role, term, commit index, last applied, leader and more."""
    core = m.core
    return {
        "id": m.id,
        "uid": m.uid,
        "cluster_name": m.cfg["cluster_name"],
        "role": core.role,
        "term": core.term,
        "commit_index": core.commit,
        "last_applied": core.applied,
        "last_index": core.log.last_index,
        "snapshot_index": core.log.snapshot_index,
        "leader": m.leader_id(),
        "members": sorted(core.voters),
        "machine": m.machine.overview(m.state),
        "read_rounds": m.read_rounds,
    }
