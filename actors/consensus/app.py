"""The consensus service's supervision tree, one per node, as an OTP application.

    ("ok", sup) = app.start("poc")      # here, or on another node:
    rpc.call(node, "actors.consensus.app", "start", ["poc"])

The tree (see it with supervisor.which_children("erlmcp_sup")):

    erlmcp_app (application master, not linked to whoever called start)
      erlmcp_sup (rest_for_one)
        tool_runner_sup  -> erlmcp_tool_runner_sup (one_for_one over runner_1..N)
        audit_log        -> erlmcp_audit_log
        consensus        -> erlmcp_consensus (the mode's server: poc.ConsensusServer)

rest_for_one, in that order: the server depends on the runners and on the log, the log
on neither. A runner supervisor that gives up (its intensity exceeded) is restarted with
everything after it, so no server holds a pool handle or a log name that outlived what
it names; a crashed log takes the server with it (the server's leader state would
describe a log that is gone); a crashed server restarts alone and finds the log of this
node as it was. More than TOP_INTENSITY restarts in TOP_PERIOD s stop erlmcp_sup, and the
application master stops with it (its exit is logged), as OTP's application master does.

Why an application master: `rpc` runs a call in a short-lived process that exits with
the result, and a supervisor linked to it would take that exit for its parent's and
stop. The master is started unlinked (gen_server.start), links to erlmcp_sup, and holds
it until `stop()`, so the tree outlives the rpc that started it.

Modes: "poc" (`poc`) and "raft" (`raft_mode`: the ra system and its member join the tree
before the runners). The client protocol (`client`) is the same in both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from actors import Exit, Pid, erlang, gen_server
from actors.otp_types import (
    CallResult,
    ChildSpec,
    InfoResult,
    InitResult,
    SupFlags,
    SupInitResult,
)
from supervision import supervisor

from . import audit_log, poc, raft_mode, tool_runner
from .tools import Tools, default_tools

__all__ = ["APP_NAME", "MODES", "TOP_SUP", "AppConfig", "start", "stop"]

log = logging.getLogger("actors.consensus")

APP_NAME = "erlmcp_app"
TOP_SUP = "erlmcp_sup"
TOP_INTENSITY, TOP_PERIOD = 3, 5
MODES = ("poc", "raft")
_STOP_WAIT_MS = 15000
POC_POOL_SIZE = 1  # the POC's leader runs one tool at a time, inside its handle_call
RAFT_POOL_SIZE = 4  # Raft mode's server starts runs without waiting: this many at once


@dataclass(frozen=True)
class AppConfig:
    mode: str = "poc"
    tools: Tools = field(default_factory=default_tools)
    node_id: Any = None
    pool_size: int | None = None  # runners: POC_POOL_SIZE or RAFT_POOL_SIZE by default
    runner_intensity: int = 3  # the runner supervisor's: restarts per runner_period s
    runner_period: int = 5
    forward_timeout: int = poc.FORWARD_TIMEOUT
    nodes: tuple[str, ...] = ()  # raft: every node of the cluster
    data_dir: str | None = None  # raft: the ra system's data dir (default: from the node name)
    ra_options: dict[str, Any] = field(default_factory=dict)  # raft: `ra.start`'s options


def start(mode: str = "poc", tools: Tools | None = None, node_id: Any = None,
          **options: Any) -> Any:
    """Start the service on this node: ("ok", erlmcp_sup pid) | ("error", reason).

    `tools` defaults to `default_tools()`; `node_id` to the node's name. `options` are
    AppConfig's other fields (pool_size, runner_intensity, runner_period,
    forward_timeout; for "raft" also nodes, data_dir and ra_options)."""
    if mode not in MODES:
        return ("error", ("bad_mode", mode))
    if mode == "raft":
        options["nodes"] = tuple(options.get("nodes") or (erlang.node(),))
    config = AppConfig(mode, tools if tools is not None else default_tools(), node_id,
                       **options)
    result = gen_server.start(("local", APP_NAME), _AppMaster, config)
    if result[0] != "ok":
        return result
    return ("ok", gen_server.call(result[1], "top_sup"))


def stop() -> Any:
    """Stop the service on this node (the whole tree, in order): "ok" | ("error", "not_started")."""
    try:
        return gen_server.stop(APP_NAME, "normal", _STOP_WAIT_MS)
    except Exit as exc:
        if exc.reason == "noproc":
            return ("error", "not_started")
        raise


def _server_child(config: AppConfig) -> dict[str, Any]:
    """The mode's consensus server, registered as SERVER_NAME. The seam for raft mode."""
    match config.mode:
        case "poc":
            server = poc.PocConfig(node_id=config.node_id, tools=config.tools,
                                   forward_timeout=config.forward_timeout)
            return {"id": "consensus", "start": (poc.start_link, [server]),
                    "modules": [poc.ConsensusServer]}
        case "raft":
            front = raft_mode.RaftConfig(nodes=config.nodes, node_id=config.node_id,
                                         tools=config.tools,
                                         forward_timeout=config.forward_timeout)
            return {"id": "consensus", "start": (raft_mode.start_link, [front]),
                    "modules": [raft_mode.RaftConsensusServer]}
    raise ValueError(f"no consensus server for mode {config.mode!r}")


def _audit_child(config: AppConfig) -> dict[str, Any]:
    """POC: the leader's in-memory log. Raft: a view of the replicated state."""
    if config.mode == "raft":
        return {"id": "audit_log", "start": (raft_mode.start_audit_log, []),
                "modules": [raft_mode.RaftAuditLog]}
    return {"id": "audit_log", "start": (audit_log.start_link, []),
            "modules": [audit_log.AuditLog]}


class ErlmcpSup(supervisor.Supervisor):
    """The top supervisor: rest_for_one over (raft: the ra system,) the runners, the log
    and the server."""

    def init(self, config: AppConfig) -> SupInitResult:
        flags: SupFlags = {"strategy": "rest_for_one", "intensity": TOP_INTENSITY,
                           "period": TOP_PERIOD}
        size = config.pool_size if config.pool_size is not None else \
            RAFT_POOL_SIZE if config.mode == "raft" else POC_POOL_SIZE
        runners = [config.tools, size, config.runner_intensity, config.runner_period]
        children: list[ChildSpec] = [
            {"id": "tool_runner_sup", "start": (tool_runner.start_link, runners),
             "type": "supervisor", "modules": [tool_runner.RunnerSup]},
            _audit_child(config),
            _server_child(config),
        ]
        if config.mode == "raft":
            children.insert(0, {"id": "ra_system", "type": "supervisor",
                                "start": (raft_mode.start_ra_system,
                                          [config.data_dir, dict(config.ra_options)])})
        return ("ok", (flags, children))


class _AppMaster(gen_server.GenServer):
    """Holds erlmcp_sup, linked; stops with it, and stops it on `stop()`. State: its pid
    (None once it exited)."""

    def init(self, config: AppConfig) -> InitResult[Pid]:
        erlang.process_flag("trap_exit", True)
        result = supervisor.start_link(("local", TOP_SUP), ErlmcpSup, config)
        if result[0] != "ok":
            return ("stop", result[1])
        log.info("erlmcp %s started on %s", config.mode, erlang.node())
        return ("ok", result[1])

    def handle_call(self, request: Any, from_: Any, sup: Pid) -> CallResult[Pid]:
        if request == "top_sup":
            return ("reply", sup, sup)
        return ("reply", ("error", "unknown_request"), sup)

    def handle_info(self, msg: Any, sup: Pid) -> InfoResult[Pid | None]:
        match msg:
            case ("EXIT", pid, reason) if pid == sup:
                log.error("erlmcp on %s: %s exited with %r; the application stops",
                          erlang.node(), TOP_SUP, reason)
                return ("stop", reason, None)
        return ("noreply", sup)

    def terminate(self, reason: Any, sup: Pid | None) -> Any:
        if sup is not None:
            ref = erlang.monitor("process", sup)
            erlang.unlink(sup)
            erlang.exit(sup, "shutdown")
            down = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref),
                                  _STOP_WAIT_MS)
            if down is erlang.TIMEOUT:
                erlang.exit(sup, "kill")
        return "ok"
