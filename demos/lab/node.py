"""(on a peer) What the lab runs on its nodes. Peers import this module by reference,
so everything here is a plain module-level function, called by name with rpc
(`world.call_on`) or by an agent (`agent.Agent`: an out-of-band channel that reaches nodes
the controller's own node is cut from).
"""

from __future__ import annotations

import time
from typing import Any

from actors import Pid, erlang, rpc
from actors.consensus import app, audit_log, client
from supervision import supervisor

from .tools import demo_tools

SERVER = client.SERVER_NAME


def loaded() -> str:
    """Called once per node, so that this module is imported before anything is timed."""
    return erlang.node()


# -- the service --------------------------------------------------------------------------

def start_service(mode: str, nodes: list[str], data_dir: str | None) -> Any:
    """Start erlmcp here, with the demo's tools: ("ok", sup) | ("error", reason)."""
    if mode == "raft":
        return app.start("raft", demo_tools(), nodes=nodes, data_dir=data_dir)
    return app.start("poc", demo_tools())


def stop_service() -> Any:
    return app.stop()


def own_log() -> list[dict[str, Any]]:
    """This node's own audit log, oldest first, whatever its server's role. POC: the
    entries this node executed while it led; Raft: its member's applied, replicated state."""
    try:
        found = audit_log.query(audit_log.NAME)
    except erlang.Exit:
        return []  # no log here (the service is restarting)
    return list(reversed(found[1])) if found[0] == "ok" else []


def audit_request_ids(state: dict[str, Any]) -> list[Any]:
    """(a query function for a Raft-mode member) The request ids of its audit entries,
    oldest first."""
    return [e.get("request_id") for e in state["entries"]]


def own_count() -> int:
    try:
        return int(audit_log.size(audit_log.NAME))
    except erlang.Exit:
        return -1  # no log here (the service is restarting)


def tree() -> list[tuple[str, Any, str]]:
    """erlmcp_sup, its children and tool_runner_sup's runners: (indented id, pid, type);
    [] while it cannot be read (a supervisor is restarting)."""
    try:
        rows: list[tuple[str, Any, str]] = [("erlmcp_sup", erlang.whereis("erlmcp_sup"),
                                             "supervisor")]
        # which_children lists the newest first, as OTP's: show them in start order
        for child_id, pid, kind, _ in reversed(supervisor.which_children("erlmcp_sup")):
            rows.append((f"  {child_id}", pid, kind))
            if child_id == "tool_runner_sup" and type(pid) is Pid:
                rows += [(f"    {cid}", cpid, ckind)
                         for cid, cpid, ckind, _ in reversed(supervisor.which_children(pid))]
        return rows
    except erlang.Exit:
        return []


def wait_applied(count: int, within_ms: int, controller: Pid, tag: Any) -> float | None:
    """Tell `controller` we are watching, then poll this node's log until it holds `count`
    entries: the time.monotonic() we first saw them (one clock for every process of the
    host), or None."""
    erlang.send(controller, ("watching", tag, erlang.node()))
    deadline = time.monotonic() + within_ms / 1000.0
    while time.monotonic() < deadline:
        if own_count() >= count:
            return time.monotonic()
        erlang.receive(lambda _m: False, 1)
    return None


# -- cluster views, for the agent ----------------------------------------------------------

def on(node: str, fun: Any, *args: Any) -> Any:
    """fun(*args) on `node`: here, or by rpc from here."""
    if node == erlang.node():
        return fun(*args)
    return rpc.call(node, fun, list(args), 5000)


def converged(nodes: list[str]) -> tuple[str, Any] | None:
    """(leader's node, leader) if exactly one of `nodes` leads and all the others follow it."""
    statuses = [client.get_status((SERVER, n), 2000) for n in nodes]
    if not all(type(s) is dict for s in statuses):
        return None
    leaders = [s for s in statuses if s["role"] == "leader"]
    if len(leaders) != 1 or any(s["leader_pid"] != leaders[0]["leader_pid"] for s in statuses):
        return None
    return leaders[0]["node"], leaders[0]["leader_pid"]


def converged_within(nodes: list[str], within_ms: int) -> tuple[str, Any] | None:
    """Wait (bounded) until `nodes` agree on one leader among them."""
    deadline = time.monotonic() + within_ms / 1000.0
    while True:
        found = converged(nodes)
        if (found is not None and found[0] in nodes) or time.monotonic() >= deadline:
            return found
        erlang.receive(lambda _m: False, 10)


def nodes_gone(names: list[str], within_ms: int) -> bool:
    """Wait (bounded) until none of `names` is in this node's nodes()."""
    deadline = time.monotonic() + within_ms / 1000.0
    while any(n in erlang.nodes() for n in names):
        if time.monotonic() >= deadline:
            return False
        erlang.receive(lambda _m: False, 10)
    return True


def down_reason(ref: Any, within_ms: int) -> Any:
    """The reason of the DOWN for `ref` (a monitor this process holds), or "no_down"."""
    msg = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref), within_ms)
    return "no_down" if msg is erlang.TIMEOUT else msg[4]


def timed_execute(server: Any, tool: str, args: dict[str, Any], request_id: Any,
                  timeout_ms: int) -> tuple[Any, float]:
    """One execute_tool call with the caller's own call timeout: (answer, ms taken)."""
    import actors.gen_server as gen_server

    t0 = time.monotonic()
    try:
        answer = gen_server.call(server, ("execute_tool", tool, args, request_id), timeout_ms)
    except erlang.Exit as exc:
        answer = ("exit", client.call_failure(exc.reason))
    return answer, (time.monotonic() - t0) * 1000.0
