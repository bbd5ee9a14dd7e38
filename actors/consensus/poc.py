"""ConsensusServer, POC mode: a port of erlmcp's `erlmcp_consensus_poc` gen_server.

Rules of this module (behaviour for behaviour with the POC, except where noted):
- `init` sends itself `attempt_leadership`. On it the server calls
  `global_.register_name(LEADER_NAME, self())`: "yes" makes it the leader; "no" makes it
  look the leader up: "undefined" (a registration in flight) retries after
  ELECTION_RETRY_MS with `send_after`; a pid is monitored and followed.
- A DOWN of the followed leader's monitor starts a new election (attempt_leadership).
- The leader runs each tool through the ToolRunner pool and records an audit entry
  {execution_id, tool, args, result, timestamp, executor, request_id} in its node's
  AuditLog, then replies ("ok", result) (the POC's `{reply, {ok, Result}, ...}`). An
  unknown tool or bad arguments answer ("error", {"reason": "unknown_tool", ...}), as the
  service's protocol says (the POC wrapped it in {ok, ...}); it is recorded too. A run
  that crashed or timed out is recorded too, with its error as the result (the tool may
  have had effects), and answers that error: ("error", ("tool_crashed", r)) or
  ("error", "timeout").
- A request with a request_id already recorded is answered with the recorded reply: the
  tool never runs twice and no second entry is made. The map lives in the leader's
  AuditLog (see `audit_log`): like the log, it is on the leader's node only and is lost
  with it; a new leader knows nothing of the old one's ids.
- A follower with no leader answers ("error", "no_leader"). A follower with one forwards
  the request with gen_server.call(leader, request, forward_timeout), blocking itself
  meanwhile, as the POC does. A timeout answers ("error", "leader_timeout"); an exit that
  says the leader is gone answers ("error", "leader_unavailable"), forgets the leader and
  starts an election.
- `terminate` of the leader unregisters LEADER_NAME (the server traps exits, so a
  supervisor's shutdown runs it).

Deviations from the POC, each a POC bug:
- The POC catches only `{noproc, _}` when forwarding. A leader on another node that goes
  down makes the call exit `{{nodedown, N}, _}`, and a leader that dies during the call
  makes it exit `{Reason, _}`; both crashed the POC follower. Any exit other than a
  timeout means the leader is gone, so all of them answer leader_unavailable.
- The POC's noproc branch sends itself attempt_leadership but keeps the monitor, whose DOWN
  sends a second one. If the first makes the server leader, the second gets "no" from
  register_name (the name is its own) and whereis_name returns its own pid: the POC
  leader demotes itself to a follower of itself, and its next forward exits calling_self.
  Here the monitor is dropped with the leader, and attempt_leadership is ignored while the
  server has a leader (itself or a live one it follows).
- `terminate` unregisters the name only if it is still the server's own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from actors import Exit, Pid, Ref, erlang, gen_server, global_

from . import audit_log
from .client import LEADER_NAME, SERVER_NAME, call_failure
from .tool_runner import SUP_NAME, RunnerPool
from .tools import Tools, default_tools, service_answer

__all__ = ["ELECTION_RETRY_MS", "FORWARD_TIMEOUT", "ConsensusServer", "PocConfig", "PocState",
           "start_link"]

log = logging.getLogger("actors.consensus")

ELECTION_RETRY_MS = 100  # the POC's ?ELECTION_RETRY_MS
FORWARD_TIMEOUT = 5000  # the POC's gen_server:call(LeaderPid, ..., 5000)


@dataclass(frozen=True)
class PocConfig:
    """What a POC server is started with. `node_id` defaults to the node's name."""

    node_id: Any = None
    tools: Tools = field(default_factory=default_tools)
    forward_timeout: int = FORWARD_TIMEOUT
    runner_sup: Any = SUP_NAME
    audit_log: Any = audit_log.NAME


@dataclass
class PocState:
    """The POC's #state{} record, with the runner pool and the log's name."""

    node_id: Any
    pool: RunnerPool
    log: Any
    forward_timeout: int
    role: str = "follower"  # "leader" | "follower"
    leader_pid: Pid | None = None
    leader_monitor: Ref | None = None
    execution_count: int = 0


def start_link(config: PocConfig | None = None) -> Any:
    """The server, registered locally as SERVER_NAME, linked to the caller."""
    return gen_server.start_link(("local", SERVER_NAME), ConsensusServer,
                                 config if config is not None else PocConfig())


class ConsensusServer(gen_server.GenServer):
    def init(self, config: PocConfig) -> Any:
        erlang.process_flag("trap_exit", True)  # a supervisor's shutdown runs terminate
        state = PocState(
            node_id=config.node_id if config.node_id is not None else erlang.node(),
            pool=RunnerPool(config.tools, config.runner_sup),
            log=config.audit_log,
            forward_timeout=config.forward_timeout,
        )
        erlang.send(erlang.self(), "attempt_leadership")
        return ("ok", state)

    # -- calls ------------------------------------------------------------------------------

    def handle_call(self, request: Any, from_: Any, s: PocState) -> Any:
        match request:
            case ("execute_tool", tool, args):
                return self._execute_tool(request, tool, args, None, s)
            case ("execute_tool", tool, args, request_id):
                return self._execute_tool(request, tool, args, request_id, s)
            case ("execute_tool", tool, args, request_id, dict(ctx)):
                return self._execute_tool(request, tool, args, request_id, s, ctx)
            case ("audit", dict(q)):
                if s.role == "leader":
                    answer = audit_log.query(s.log, q.get("node"), q.get("since"),
                                             q.get("limit"), q.get("order", "newest"))
                    return ("reply", answer, s)
                return self._forward(request, s)
            case "get_status":
                return ("reply", self._status(s), s)
        return ("reply", ("error", "unknown_request"), s)

    def _execute_tool(self, request: Any, tool: Any, args: Any, request_id: Any,
                      s: PocState, ctx: dict[str, Any] | None = None) -> Any:
        if s.role == "leader":
            return ("reply", self._execute_here(s, tool, args, request_id, ctx), s)
        return self._forward(request, s)

    @staticmethod
    def _execute_here(s: PocState, tool: Any, args: Any, request_id: Any,
                      ctx: dict[str, Any] | None = None) -> Any:
        """The leader's clause: run once, record, answer."""
        if request_id is not None:
            found = audit_log.lookup(s.log, request_id)
            if found != "error":
                return found[1]  # a retry: the reply we gave, and nothing else
        outcome = service_answer(s.pool.run(tool, args, request_id, ctx))
        if outcome == ("error", "no_runner"):
            return outcome  # nothing ran: nothing to record, a retry may run it
        result = outcome[1] if outcome[0] == "ok" else outcome
        audit_log.append(s.log, audit_log.entry(tool, args, result, request_id), outcome)
        s.execution_count += 1
        return outcome

    def _forward(self, request: Any, s: PocState) -> Any:
        """The follower's clause: ask the leader, blocking this server meanwhile."""
        if s.leader_pid is None:
            return ("reply", ("error", "no_leader"), s)
        try:
            return ("reply", gen_server.call(s.leader_pid, request, s.forward_timeout), s)
        except Exit as exc:
            if call_failure(exc.reason) == "timeout":
                return ("reply", ("error", "leader_timeout"), s)
            # noproc, ("nodedown", node), or the leader died during the call: it is gone
            self._forget_leader(s)
            erlang.send(erlang.self(), "attempt_leadership")
            return ("reply", ("error", "leader_unavailable"), s)

    @staticmethod
    def _status(s: PocState) -> dict[str, Any]:
        return {
            "node_id": s.node_id,
            "node": erlang.node(),
            "mode": "poc",
            "role": s.role,
            "leader_pid": s.leader_pid if s.leader_pid is not None else "undefined",
            "execution_count": s.execution_count,
            "audit_log_size": audit_log.size(s.log),
        }

    # -- elections --------------------------------------------------------------------------

    def handle_info(self, msg: Any, s: PocState) -> Any:
        match msg:
            case "attempt_leadership":
                self._attempt_leadership(s)
            case ("DOWN", Ref() as ref, "process", pid, reason) if ref == s.leader_monitor:
                log.info("[%s] Leader %r died (%r), attempting re-election",
                         s.node_id, pid, reason)
                s.leader_pid = s.leader_monitor = None
                erlang.send(erlang.self(), "attempt_leadership")
        return ("noreply", s)

    @staticmethod
    def _attempt_leadership(s: PocState) -> None:
        if s.leader_pid is not None:
            return  # leader already, or following a live leader: a stale attempt
        me = erlang.self()
        if global_.register_name(LEADER_NAME, me) == "yes":
            log.info("[%s] Elected as LEADER", s.node_id)
            s.role, s.leader_pid = "leader", me
            return
        leader = global_.whereis_name(LEADER_NAME)
        if type(leader) is not Pid:  # "undefined": a registration in flight; retry
            erlang.send_after(ELECTION_RETRY_MS, me, "attempt_leadership")
            return
        s.leader_monitor = erlang.monitor("process", leader)
        s.role, s.leader_pid = "follower", leader
        log.info("[%s] Following leader: %r", s.node_id, leader)

    @staticmethod
    def _forget_leader(s: PocState) -> None:
        if s.leader_monitor is not None:
            erlang.demonitor(s.leader_monitor, ["flush"])
        s.leader_pid = s.leader_monitor = None

    def terminate(self, reason: Any, s: Any) -> Any:
        if isinstance(s, PocState) and s.role == "leader":
            try:
                if global_.whereis_name(LEADER_NAME) == erlang.self():
                    global_.unregister_name(LEADER_NAME)
            except Exit as exc:  # e.g. the cluster's lock could not be had
                log.warning("[%s] could not unregister the leader name: %r",
                            s.node_id, exc.reason)
        return "ok"
