"""ConsensusServer, Raft mode: the same protocol as the POC, on an ra cluster.

Rules of this module:
- Each node runs a member `(MEMBER_NAME, node)` of the ra cluster CLUSTER_NAME, and a
  ConsensusServer registered as SERVER_NAME in front of it. The server starts its member
  (or restarts it from disk) in `init`; the members of the cluster are the config's nodes.
- The replicated machine (`AuditMachine`) is deterministic: an entry's `execution_id` is
  its log index and its `timestamp` the `system_time` in the entry's meta (the leader's
  clock when it appended it). Every member holds the same audit log.
- The tool runs once, on the leader's node, in a supervised ToolRunner. The server never
  waits for a tool: it starts the run on an idle runner (`RunnerPool.start`; up to the
  pool's size at once, the others queue here in arrival order) and goes on with other
  requests; the run's answer comes back as a message. Then the entry, which carries the
  result, is committed with `ra.pipeline_commands` (the entries of tools that end while
  other messages wait go together), and the caller is answered when it is applied (or gets
  "commit_timeout" after COMMIT_TIMEOUT, "leader_changed" if leadership moved meanwhile:
  the outcome is then unknown, and a retry with the request id settles it). A follower's
  server forwards the request, from a helper process, to the server on the leader's node
  (FORWARD_TIMEOUT); "no_leader", "leader_unavailable" and "leader_timeout" mean what the
  POC's do.
- Request ids: before running a tool with an id, the leader asks the cluster with
  `consistent_query` whether that id is committed; if so it answers the stored reply. A
  retry that arrives while the first is queued, running or committing waits for the
  first's answer. The machine also refuses a second entry for an id. So the audit trail
  is exactly-once, and execution is effectively once: a leader that dies after running a
  tool and before committing its entry leaves no trace, and a retry runs the tool again.
  Tools receive the request id as an idempotency key for that case.
- Status and audit reads use `local_query` (this member's applied state, possibly a
  little behind); `("audit", {..., "consistent": True})` uses `consistent_query`.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from actors import Exit, Ref, erlang, gen_server, ra, ra_machine
from actors.ra import _system as ra_system

from . import audit_log
from .client import SERVER_NAME, call_failure
from .tool_runner import RUN_TRIES, SUP_NAME, Run, RunnerPool
from .tools import Tools, bad_request_id, default_tools, service_answer, valid_request_id

__all__ = ["CLUSTER_NAME", "MEMBER_NAME", "AuditMachine", "RaftConfig", "RaftConsensusServer",
           "start_link"]

log = logging.getLogger("actors.consensus")

CLUSTER_NAME = "erlmcp_consensus"
MEMBER_NAME = "erlmcp_consensus_member"
FORWARD_TIMEOUT = 5000
COMMIT_TIMEOUT = 5000
KICK_MS, KICKS = 100, 5  # the lowest-named node campaigns until a leader is known
SYSTEM = "default"


class AuditMachine(ra_machine.Machine):
    """State: {"entries": [oldest .. newest], "replies": {request_id: reply}}.

    Command: ("record", tool, args, result, request_id, executor, reply). The reply to the
    command is the reply the client gets: the recorded one for a request id seen before.
    """

    def init(self, config: Any) -> Any:
        return {"entries": [], "replies": {}}

    def apply(self, meta: ra_machine.Meta, command: Any, state: Any) -> tuple[Any, ...]:
        match command:
            case ("record", tool, args, result, request_id, executor, reply):
                if not valid_request_id(request_id):  # deterministic on every member
                    return (state, bad_request_id(request_id))
                if request_id is not None and request_id in state["replies"]:
                    return (state, state["replies"][request_id])
                state["entries"].append({
                    "execution_id": meta["index"], "tool": tool, "args": args,
                    "result": result, "timestamp": meta["system_time"],
                    "executor": executor, "request_id": request_id,
                })
                if request_id is not None:
                    state["replies"][request_id] = reply
                return (state, reply)
        return (state, ("error", ("bad_command", command)))

    def overview(self, state: Any) -> Any:
        return {"entries": len(state["entries"])}


@dataclass(frozen=True)
class RaftConfig:
    """`nodes`: every node of the cluster (this one included). Member options (tick_ms,
    snapshot_interval, ...) come from the ra system's, given to `app.start(ra_options=...)`."""

    nodes: tuple[str, ...]
    node_id: Any = None
    tools: Tools = field(default_factory=default_tools)
    forward_timeout: int = FORWARD_TIMEOUT
    runner_sup: Any = SUP_NAME


def start_link(config: RaftConfig) -> Any:
    return gen_server.start_link(("local", SERVER_NAME), RaftConsensusServer, config)


def _leader_node(member: tuple[str, str]) -> str | None:
    """The node of the leader `member` knows of, or None. A member on this node is read
    from the view it publishes after every step (no call, so a busy member does not hold
    up the server); another node's member is asked."""
    view = ra.local_view(member)
    if view is not None:
        return str(view.leader[1]) if view.leader is not None else None
    answer = ra.members(member, 2000)
    if answer[0] == "ok" and answer[2] is not None:
        return str(answer[2][1])
    return None


def _forward(from_: Any, member: tuple[str, str], request: tuple[Any, ...],
             timeout: int) -> None:
    """(a helper process) Ask the leader's server; follow a leader change at most twice."""
    answer: Any = ("error", "no_leader")
    for _ in range(3):
        leader = _leader_node(member)
        if leader is None:
            break
        try:
            answer = gen_server.call((SERVER_NAME, leader), ("$at_leader", *request), timeout)
        except Exit as exc:
            failure = call_failure(exc.reason)
            answer = ("error", "leader_timeout" if failure == "timeout" else "leader_unavailable")
            break
        if answer != ("error", "not_leader"):
            break
        answer = ("error", "no_leader")  # the leader we were told of is stale
    gen_server.reply(from_, answer)


def start_ra_system(data_dir: str | None, options: dict[str, Any]) -> Any:
    """This node's ra system, linked: a child of erlmcp_sup."""
    return ra_system.start_link(SYSTEM, data_dir, **options)


def start_audit_log(name: str = audit_log.NAME) -> Any:
    return gen_server.start_link(("local", name), RaftAuditLog, None)


class RaftAuditLog(gen_server.GenServer):
    """The AuditLog of Raft mode: the same queries as `audit_log.AuditLog`, answered from
    this node's member of the cluster (its applied, replicated state). No state of its own."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        me = (MEMBER_NAME, erlang.node())
        match request:
            case ("query", dict(q)):
                found = ra.local_query(me, lambda st: audit_log.select(st["entries"], q))
                return ("reply", found[1][1] if found[0] == "ok" else ("error", found[0]), state)
            case "size":
                found = ra.local_query(me, lambda st: len(st["entries"]))
                return ("reply", found[1][1] if found[0] == "ok" else 0, state)
        return ("reply", ("error", "unknown_request"), state)


@dataclass
class Pending:
    """A tool that ran here and whose entry is on its way to commit."""

    froms: list[Any]  # the callers to answer (a retry of the same request id joins them)
    request_id: Any
    deadline: int  # erlang.monotonic_time in ms: answered "commit_timeout" from then on


@dataclass
class Job:
    """A tool to run here: queued (`run` None) or running on a runner."""

    froms: list[Any]  # the callers to answer (a retry of the same request id joins them)
    call: tuple[Any, Any, Any, dict[str, Any] | None]  # tool, args, request_id, ctx
    run: Run | None = None
    tries: int = RUN_TRIES  # runners left to try (see tool_runner.RUN_TRIES)


@dataclass
class RaftState:
    node_id: Any
    member: tuple[str, str]
    pool: RunnerPool
    forward_timeout: int
    execution_count: int = 0  # tools this node's server ran as leader (committed)
    pending: dict[Any, Pending] = field(default_factory=dict)  # correlation -> Pending
    in_flight: dict[Any, Any] = field(default_factory=dict)  # request id -> correlation
    sweep: Any = None  # the one commit-timeout timer, armed while anything is pending
    outbox: list[tuple[Any, Any]] = field(default_factory=list)  # (command, correlation)
    running: dict[Any, Job] = field(default_factory=dict)  # its request's ref -> Job
    queued: deque[Job] = field(default_factory=deque)  # waiting for an idle runner
    jobs: dict[Any, Job] = field(default_factory=dict)  # request id -> queued or running Job


class RaftConsensusServer(gen_server.GenServer):
    """Tools run on the runner pool and their entries commit in the background
    (`ra.pipeline_commands`): the server waits for neither, and entries that wait together
    are committed together. A follower's server forwards from a helper process, so it is
    never blocked by the leader."""

    def init(self, config: RaftConfig) -> Any:
        me = (MEMBER_NAME, erlang.node())
        started = ra.restart_server(SYSTEM, me)
        if started == ("error", "name_not_registered"):
            ids = [(MEMBER_NAME, n) for n in config.nodes]
            started = ra.start_server(SYSTEM, CLUSTER_NAME, me, ("module", AuditMachine, None),
                                      ids)
        if started not in ("ok", ("error", "already_started")):
            return ("stop", ("ra_member_not_started", started))
        if erlang.node() == min(config.nodes):  # as ra's start_cluster: one member campaigns
            erlang.send_after(KICK_MS, erlang.self(), ("$kick_election", KICKS))
        return ("ok", RaftState(config.node_id or erlang.node(), me,
                                RunnerPool(config.tools, config.runner_sup),
                                config.forward_timeout))

    def handle_call(self, request: Any, from_: Any, s: RaftState) -> Any:
        match request:
            case ("execute_tool", tool, args):
                return self._execute(s, from_, tool, args, None)
            case ("execute_tool", tool, args, request_id):
                return self._execute(s, from_, tool, args, request_id)
            case ("execute_tool", tool, args, request_id, dict(ctx)):
                return self._execute(s, from_, tool, args, request_id, ctx)
            case ("$at_leader", tool, args, request_id, ctx):
                if not valid_request_id(request_id):
                    return ("reply", bad_request_id(request_id), s)
                if _leader_node(s.member) != erlang.node():
                    return ("reply", ("error", "not_leader"), s)
                return self._execute_here(s, from_, tool, args, request_id, ctx)
            case ("audit", dict(q)):
                return ("reply", self._audit(s, q), s)
            case "get_status":
                return ("reply", self._status(s), s)
        return ("reply", ("error", "unknown_request"), s)

    # -- execution --------------------------------------------------------------------------

    def _execute(self, s: RaftState, from_: Any, tool: Any, args: Any,
                 request_id: Any, ctx: dict[str, Any] | None = None) -> Any:
        if not valid_request_id(request_id):
            return ("reply", bad_request_id(request_id), s)
        leader = _leader_node(s.member)
        if leader is None:
            return ("reply", ("error", "no_leader"), s)
        if leader == erlang.node():
            return self._execute_here(s, from_, tool, args, request_id, ctx)
        erlang.spawn(_forward, from_, s.member, (tool, args, request_id, ctx),
                     s.forward_timeout)
        return ("noreply", s)

    def _execute_here(self, s: RaftState, from_: Any, tool: Any, args: Any,
                      request_id: Any, ctx: dict[str, Any] | None = None) -> Any:
        if request_id is not None:
            if request_id in s.in_flight:  # a retry while the first is committing
                s.pending[s.in_flight[request_id]].froms.append(from_)
                return ("noreply", s)
            if request_id in s.jobs:  # a retry while the first is queued or running
                s.jobs[request_id].froms.append(from_)
                return ("noreply", s)
            self._send_outbox(s)  # the query blocks us: let the waiting entries commit meanwhile
            found = ra.consistent_query(s.member, lambda st: st["replies"].get(request_id, None),
                                        COMMIT_TIMEOUT)
            if found[0] != "ok":
                return ("reply", ("error", "no_quorum"), s)
            if found[1] is not None:
                return ("reply", found[1], s)  # committed before: the stored reply; no run
        job = Job([from_], (tool, args, request_id, ctx))
        if request_id is not None:
            s.jobs[request_id] = job
        s.queued.append(job)
        self._start_queued(s)
        return ("noreply", s)

    def _start_queued(self, s: RaftState) -> None:
        """Start queued jobs, in order, while a runner is idle."""
        while s.queued:
            job = s.queued[0]
            run = s.pool.start(*job.call)
            if run == "busy":
                return
            s.queued.popleft()
            if not isinstance(run, Run):  # no live runner, even after waiting for a restart
                self._ran(s, job, ("error", "no_runner"))
                continue
            job.run = run
            s.running[run.req.ref] = job

    def _run_message(self, s: RaftState, key: Any, msg: Any) -> None:
        """A message about the run whose request's ref is `key`: its end, or not."""
        job = s.running[key]
        assert job.run is not None
        answer = s.pool.outcome(job.run, msg)
        if answer == "no_reply":
            return
        del s.running[key]
        job.run = None
        if answer == "again":  # its runner was gone before it got the run: not run yet
            job.tries -= 1
            if job.tries > 0:
                s.queued.appendleft(job)
            else:
                self._ran(s, job, ("error", "no_runner"))
        else:
            self._ran(s, job, answer[1])
        self._start_queued(s)

    def _ran(self, s: RaftState, job: Job, outcome: Any) -> None:
        """The job's run ended with `outcome`: commit its entry (or answer at once if
        nothing ran)."""
        tool, args, request_id, _ctx = job.call
        s.jobs.pop(request_id, None)
        outcome = service_answer(outcome)
        if outcome == ("error", "no_runner"):
            for from_ in job.froms:  # nothing ran: nothing to record, a retry may run it
                gen_server.reply(from_, outcome)
            return
        result = outcome[1] if outcome[0] == "ok" else outcome
        command = ("record", tool, args, result, request_id, erlang.node(), outcome)
        correlation = erlang.make_ref()
        self._commit(s, command, correlation)
        deadline = erlang.monotonic_time("millisecond") + COMMIT_TIMEOUT
        s.pending[correlation] = Pending(job.froms, request_id, deadline)
        if s.sweep is None:
            s.sweep = erlang.send_after(COMMIT_TIMEOUT, erlang.self(), "$commit_sweep")
        if request_id is not None:
            s.in_flight[request_id] = correlation

    def handle_info(self, msg: Any, s: RaftState) -> Any:
        match msg:
            case (Ref() as key, _) if key in s.running:  # a runner's answer
                self._run_message(s, key, msg)
            case ("DOWN", Ref() as key, "process", _, _) if key in s.running:
                self._run_message(s, key, msg)
            case ("timeout", _, ("$run_timeout", req)) if req.ref in s.running:
                self._run_message(s, req.ref, msg)
            case ("ra_event", _leader, ("applied", results)):
                for correlation, reply in results:
                    if self._answer(s, correlation, reply):
                        s.execution_count += 1
            case ("ra_event", _from, ("rejected", ("not_leader", _leader, correlation))):
                self._answer(s, correlation, ("error", "leader_changed"))
            case "$commit_sweep":
                self._sweep(s)
            case "$commit_outbox":
                self._send_outbox(s)
            case ("$kick_election", left) if _leader_node(s.member) is None:
                ra.trigger_election(s.member)  # pre-vote: harmless if the others are not up
                if left > 1:
                    erlang.send_after(KICK_MS, erlang.self(), ("$kick_election", left - 1))
        return ("noreply", s)

    @staticmethod
    def _answer(s: RaftState, correlation: Any, reply: Any) -> bool:
        pending = s.pending.pop(correlation, None)
        if pending is None:
            return False  # answered already (a late commit after its timeout)
        s.in_flight.pop(pending.request_id, None)
        for from_ in pending.froms:
            gen_server.reply(from_, reply)
        return True

    @classmethod
    def _commit(cls, s: RaftState, command: Any, correlation: Any) -> None:
        """Pipeline the entry of a tool that ran. With other requests waiting in the
        mailbox, it waits for them (a "$commit_outbox" queued behind them), so the tools
        that run back to back commit together: one message to the member, one proposal,
        one AppendEntries per follower. With none, it goes at once."""
        s.outbox.append((command, correlation))
        if len(s.outbox) > 1:
            return
        waiting = erlang.process_info(erlang.self(), "message_queue_len")
        if type(waiting) is tuple and waiting[1] > 0:
            erlang.send(erlang.self(), "$commit_outbox")
        else:
            cls._send_outbox(s)

    @staticmethod
    def _send_outbox(s: RaftState) -> None:
        items, s.outbox = s.outbox, []
        if items:
            ra.pipeline_commands(s.member, items)

    @classmethod
    def _sweep(cls, s: RaftState) -> None:
        """Answer "commit_timeout" to every pending entry past its deadline, and re-arm the
        one timer for the earliest left. Deadlines grow in insertion order (one constant
        timeout), so the scan stops at the first entry still in time."""
        s.sweep = None
        now = erlang.monotonic_time("millisecond")
        for correlation, pending in list(s.pending.items()):
            if pending.deadline > now:
                s.sweep = erlang.send_after(pending.deadline - now, erlang.self(),
                                            "$commit_sweep")
                return
            cls._answer(s, correlation, ("error", "commit_timeout"))

    # -- reads ------------------------------------------------------------------------------

    def _audit(self, s: RaftState, q: dict[str, Any]) -> Any:
        fun = lambda st: audit_log.select(st["entries"], q)  # noqa: E731
        if q.get("consistent"):
            answer = ra.consistent_query(s.member, fun, COMMIT_TIMEOUT)
            return answer[1] if answer[0] == "ok" else ("error", answer[0])
        answer = ra.local_query(s.member, fun, COMMIT_TIMEOUT)
        return answer[1][1] if answer[0] == "ok" else ("error", answer[0])

    def _status(self, s: RaftState) -> dict[str, Any]:
        overview = ra.member_overview(s.member, 2000)
        size = ra.local_query(s.member, lambda st: len(st["entries"]), 2000)
        leader = overview.get("leader") if isinstance(overview, dict) else None
        return {
            "node_id": s.node_id,
            "node": erlang.node(),
            "mode": "raft",
            "role": "leader" if isinstance(overview, dict) and overview["role"] == "leader"
            else "follower",
            "leader_pid": leader if leader is not None else "undefined",
            "execution_count": s.execution_count,
            "audit_log_size": size[1][1] if size[0] == "ok" else 0,
            "term": overview.get("term") if isinstance(overview, dict) else None,
            "commit_index": overview.get("commit_index") if isinstance(overview, dict)
            else None,
        }
