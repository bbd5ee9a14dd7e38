"""Port of the seed's "Migration Path": its five steps, one function each, run in order on
three in-process nodes.

1. Start with the POC: `erlmcp_consensus_poc:run_demo()`. Our POC is the consensus
   service in POC mode (`actors.consensus.app.start("poc")`, a port of
   erlmcp_consensus_poc); the step starts it on the three nodes, waits for the
   global-name election, runs a tool through a follower and shows where the audit trail
   lives (the leader's node only). Then it stops the POC, which step 4 replaces.
2. Add the ra dependency: rebar.config's `{ra, "2.6.3"}`. ra is in this package
   (`actors.ra`), so the step only checks that it is there and packaged.
3. Implement the state machine: the seed's (which runs the tool inside `apply/3`, reads
   the clock and returns a reply effect ra does not have) and the deterministic fix,
   from `ra_machine_apply`.
4. Start the cluster and replace `execute_tool/3` with `ra:process_command`: the seed's
   `ra:start_cluster(Config)` is `ra:start_cluster(System, ClusterName, Machine,
   ServerIds)` in ra 2.x (`ra_cluster_setup.init_cluster`); `execute_tool` is
   `ra_execute_tool.execute_tool`.
5. Deploy: 3 members, automatic election, automatic failover (the leader's member is
   stopped with `ra.stop_server`; the others elect a new leader and keep every committed
   entry), a durable log (the stopped member restarts from disk and catches up).

    python -m demos.erlang_ports.migration_steps
"""

from __future__ import annotations

import configparser
import importlib.metadata
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors import ra, rpc
from actors.consensus import client
from actors.consensus.client import SERVER_NAME as POC_SERVER

from .ra_cluster_setup import (
    SERVER_NAME,
    SYSTEM,
    LocalNodes,
    current_leader,
    init_cluster,
    local_nodes,
    local_state,
    wait_caught_up,
    wait_for,
)
from .ra_execute_tool import execute_tool
from .ra_machine_apply import (
    ErlmcpConsensusMachine,
    ReplicaComparison,
    SeedConsensusMachine,
    compare_replicas,
)

__all__ = ["DependencyStep", "DeployStep", "MigrationResult", "PocStep", "StartStep", "main",
           "step1_start_with_poc", "step2_add_dependency", "step3_implement_state_machine",
           "step4_start_cluster", "step5_deploy"]

ServerId = tuple[str, str]
APP = "actors.consensus.app"


def _short(node: str) -> str:
    return node.split("@")[0]


# ------------------------------------------------------------------ step 1


@dataclass
class PocStep:
    leader: str  # the node whose server holds the global leader name
    reply: Any  # execute_tool through a follower
    audit_sizes: dict[str, int]  # each node's own audit log
    stopped: bool


def _poc_leader(nodes: list[str]) -> str | None:
    """The leader's node once exactly one server leads and every other follows it."""
    statuses = [client.get_status((POC_SERVER, n), 1000) for n in nodes]
    if not all(type(s) is dict for s in statuses):
        return None
    leaders = [s for s in statuses if s["role"] == "leader"]
    if len(leaders) != 1 or any(s["leader_pid"] != leaders[0]["leader_pid"] for s in statuses):
        return None
    return str(leaders[0]["node"])


def step1_start_with_poc(cluster: LocalNodes) -> PocStep:
    """### Step 1: Start with POC."""
    # %% Validate coordination pattern
    # erlmcp_consensus_poc:run_demo().
    # Our equivalent of run_demo: the POC service on each node, a tool through a follower.
    nodes = cluster.names
    for node in nodes:
        started = rpc.call(node, APP, "start", ["poc"], 10000)
        if started[0] != "ok":
            raise RuntimeError(f"POC on {node}: {started!r}")
    leader = wait_for("the POC's leader", lambda: _poc_leader(nodes))
    follower = next(n for n in nodes if n != leader)
    reply = client.execute_tool((POC_SERVER, follower), "add", {"a": 2, "b": 3})
    sizes = {n: client.get_status((POC_SERVER, n))["audit_log_size"] for n in nodes}
    print(f"  POC leader (global name): {_short(leader)}")
    print(f"  execute_tool via follower {_short(follower)}, add(2, 3) -> {reply}")
    print(f"  audit log size per node: { {_short(n): k for n, k in sizes.items()} } "
          "(the leader's node only: lost with it)")
    stopped = all(rpc.call(node, APP, "stop", [], 15000) == "ok" for node in nodes)
    print(f"  POC stopped on every node: {stopped}")
    return PocStep(leader, reply, sizes, stopped)


# ------------------------------------------------------------------ step 2


@dataclass
class DependencyStep:
    module: str  # where ra is
    api: list[str]  # the ra functions the ports use, all present
    packaged: list[str]  # setup.cfg's [options.packages.find] include
    install_requires: list[str]  # setup.cfg's (or the installed metadata's)


def _setup_cfg() -> configparser.ConfigParser | None:
    path = Path(__file__).resolve().parents[2] / "setup.cfg"
    if not path.exists():
        return None
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser


def step2_add_dependency() -> DependencyStep:
    """### Step 2: Add ra Dependency."""
    # %% rebar.config
    # {deps, [
    #     {ra, "2.6.3"}
    # ]}.
    # ra is part of this package: `from actors import ra` (imported above). setup.cfg packages
    # it with the rest (`packages = find:`, include `actors.*`), and its one third-party
    # need, tenacity (retries across leader changes), is in install_requires.
    api = ["start", "start_cluster", "process_command", "members", "stop_server",
           "restart_server", "local_query", "leader_query"]
    missing = [name for name in api if not callable(getattr(ra, name, None))]
    if missing:
        raise RuntimeError(f"actors.ra lacks {missing}")
    cfg = _setup_cfg()
    if cfg is not None:
        packaged = cfg.get("options.packages.find", "include").split()
        requires = cfg.get("options", "install_requires").split()
    else:  # installed without its sources: ask the distribution's metadata
        packaged = ["actors", "actors.*"]
        requires = [r for r in importlib.metadata.requires("erlpy") or [] if "extra" not in r]
    print(f"  from actors import ra -> {ra.__name__} ({len(api)} functions used here)")
    print(f"  setup.cfg packages include: {packaged}")
    print(f"  setup.cfg install_requires: {requires}")
    return DependencyStep(ra.__name__, api, packaged, requires)


# ------------------------------------------------------------------ step 3


def step3_implement_state_machine() -> tuple[ReplicaComparison, ReplicaComparison]:
    """### Step 3: Implement State Machine."""
    # -module(erlmcp_consensus_machine).
    # -behaviour(ra_machine).
    # -export([init/1, apply/3, state_enter/2]).
    # init(_Config) ->
    #     #{audit_log => [], execution_count => 0}.
    # apply(_Meta, {execute_tool, Tool, Args}, State) ->
    #     Result = execute_tool_local(Tool, Args),
    #     %% Same logic as POC, but replicated
    #     {NewState, [{reply, {ok, Result}}]}.
    # As written this does not compile (NewState is unbound; state_enter/2 is exported and
    # not defined); completed as the "Replicated Log" section's apply it is
    # SeedConsensusMachine, which is wrong, and ErlmcpConsensusMachine is the fix.
    meta = {"index": 3, "term": 1, "system_time": 1_700_000_000_000}
    seed = compare_replicas(SeedConsensusMachine, ("execute_tool", "add", {"a": 2, "b": 3}),
                            meta)
    fixed = compare_replicas(ErlmcpConsensusMachine,
                             ("execute_tool", "add", {"a": 2, "b": 3}, 5), meta)
    print(f"  seed machine, two replicas, one entry: identical={seed.identical}, "
          f"reply={seed.replies[0]!r}")
    print(f"  fixed machine, two replicas, one entry: identical={fixed.identical}, "
          f"reply={fixed.replies[0]!r}")
    return seed, fixed


# ------------------------------------------------------------------ step 4


@dataclass
class StartStep:
    started: Any  # ra.start_cluster's result
    ids: list[ServerId]
    replies: list[Any]  # execute_tool through each member


def step4_start_cluster(cluster: LocalNodes) -> StartStep:
    """### Step 4: Start Cluster."""
    # %% Replace erlmcp_consensus_poc:start_link/1
    # ra:start_cluster(Config).
    # ra 2.x: ra:start_cluster(System, ClusterName, Machine, ServerIds) (see ra_cluster_setup).
    started = init_cluster(cluster.names, ErlmcpConsensusMachine)
    ids = [(SERVER_NAME, node) for node in cluster.names]
    print(f"  ra:start_cluster -> {started[0]}, {len(started[1])} members started")
    # %% Replace execute_tool/3
    # ra:process_command(ClusterId, {execute_tool, Tool, Args}).
    # With the fix: the tool runs on the leader and the command carries its result
    # (ra_execute_tool.execute_tool); any member will do as ClusterId.
    replies = [execute_tool(sid, "subtract", {"a": 10, "b": i}) for i, sid in enumerate(ids)]
    for sid, reply in zip(ids, replies, strict=True):
        print(f"  execute_tool via {_short(sid[1])} -> {reply}")
    return StartStep(started, ids, replies)


# ------------------------------------------------------------------ step 5


@dataclass
class DeployStep:
    old_leader: ServerId
    new_leader: ServerId
    failover_ms: int  # from stopping the leader to a new one known
    committed_before: list[int]  # execution ids committed before the failover
    survivors_have_all: bool  # every survivor holds every one of them
    reply_after: Any  # execute_tool through a survivor, after the failover
    restarted_caught_up: bool  # the stopped member, restarted from disk, holds it all
    logs_identical: bool  # all three audit logs equal at the end
    audit_log_size: int


def _ids_in(sid: ServerId) -> list[int]:
    return sorted(e["execution_id"] for e in local_state(sid)["audit_log"])


def step5_deploy(ids: list[ServerId]) -> DeployStep:
    """### Step 5: Deploy."""
    # %% Production deployment with 3+ nodes
    # %% Automatic leader election
    old_leader = wait_for("a leader", lambda: current_leader(ids))
    print(f"  3 members; elected leader: {_short(old_leader[1])}")
    # %% Durable, replicated log
    wait_caught_up(ids)
    committed = _ids_in(old_leader)
    print(f"  committed execution ids, on every member: "
          f"{all(_ids_in(sid) == committed for sid in ids)} {committed}")
    # %% Automatic failover
    t0 = time.monotonic()
    ra.stop_server(SYSTEM, old_leader)
    survivors = [sid for sid in ids if sid != old_leader]
    new_leader = wait_for("a new leader", lambda: current_leader(survivors), 10000)
    failover_ms = round((time.monotonic() - t0) * 1000)
    print(f"  stopped the leader's member; new leader {_short(new_leader[1])} "
          f"after {failover_ms} ms")
    reply_after = execute_tool(survivors[0], "divide", {"a": 84, "b": 2})
    print(f"  execute_tool via {_short(survivors[0][1])} -> {reply_after}")
    wait_caught_up(survivors)
    survivors_have_all = all(set(committed) <= set(_ids_in(sid)) for sid in survivors)
    print(f"  no committed command lost on the survivors: {survivors_have_all}")
    ra.restart_server(SYSTEM, old_leader)  # from its log on disk
    wait_caught_up(ids)
    final = [_ids_in(sid) for sid in ids]
    restarted_caught_up = set(committed) <= set(_ids_in(old_leader)) and final[0] == final[1]
    logs = [local_state(sid)["audit_log"] for sid in ids]
    identical = all(log == logs[0] for log in logs)
    print(f"  old leader restarted from disk and caught up: {restarted_caught_up}; "
          f"audit logs identical: {identical} ({len(logs[0])} entries)")
    return DeployStep(old_leader, new_leader, failover_ms, committed, survivors_have_all,
                      reply_after, restarted_caught_up, identical, len(logs[0]))


# ------------------------------------------------------------------ all five


@dataclass
class MigrationResult:
    poc: PocStep
    dependency: DependencyStep
    machines: tuple[ReplicaComparison, ReplicaComparison]
    start: StartStep
    deploy: DeployStep


def main() -> MigrationResult:
    with local_nodes("migrate") as cluster:
        print("Step 1: Start with POC")
        poc = step1_start_with_poc(cluster)
        print("Step 2: Add ra Dependency")
        dependency = step2_add_dependency()
        print("Step 3: Implement State Machine")
        machines = step3_implement_state_machine()
        print("Step 4: Start Cluster")
        start = step4_start_cluster(cluster)
        print("Step 5: Deploy")
        deploy = step5_deploy(start.ids)
    ok = (poc.stopped and not machines[0].identical and machines[1].identical
          and deploy.survivors_have_all and deploy.restarted_caught_up and deploy.logs_identical)
    if not ok:
        raise RuntimeError("the migration did not go as shown")
    return MigrationResult(poc, dependency, machines, start, deploy)


if __name__ == "__main__":
    # Run the importable module's main, not a second copy of it named __main__.
    import importlib

    importlib.import_module("demos.erlang_ports.migration_steps").main()
