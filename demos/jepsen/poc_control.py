"""The control experiment: the register workload against POC mode, cut by a partition.

POC mode elects its leader through `global_` and keeps state on the leader only. Here the
register lives in a store process on each node, and the POC's tools `kv_read`, `kv_write`
and `kv_cas` (run by whichever server leads) read and change the store of the leader's
node. Under a partition each side elects its own leader, both acknowledge writes, and
reads on one side miss the other's writes: split-brain, which the checker must find.

The partition: side A is the controller, the POC leader and one follower; side B the
other three, a majority. As in the demo, the controller must be on a side (`global`'s
locks span every node it is connected to), so every client reaches its node through an
`Agent` (a localhost socket no cut touches), as Jepsen's clients reach their nodes
through a control network.
"""

from __future__ import annotations

import random
import time
from typing import Any

from actors import erlang, gen_server, rpc
from actors.consensus import app, client
from actors.consensus.tools import Tools
from demos.lab import Agent, cut, heal
from demos.lab import node as on_peer

from .cluster import Nodes
from .history import History
from .nemesis import Fault
from .workloads import DEFINITE_REFUSALS, OP_TIMEOUT_MS, Keys, Outcome, is_mismatch, register_loop

STORE = "jepsen_kv_store"


# -- on the nodes (imported there by reference) -------------------------------------------

class Store(gen_server.GenServer):
    """This node's register map: ("read", k) | ("write", k, v) | ("cas", k, old, new)."""

    def init(self, _args: Any) -> Any:
        return ("ok", {})

    def handle_call(self, request: Any, from_: Any, state: dict[Any, Any]) -> Any:
        match request:
            case ("read", key):
                return ("reply", state.get(key), state)
            case ("write", key, value):
                state[key] = value
                return ("reply", "ok", state)
            case ("cas", key, old, new):
                if state.get(key) != old:
                    return ("reply", ("fail", state.get(key)), state)
                state[key] = new
                return ("reply", "ok", state)
        return ("reply", ("error", "bad_request"), state)


def kv_tools() -> Tools:
    tools = Tools()

    @tools.tool("kv_read")
    def kv_read(args: dict[str, Any], _rid: Any) -> Any:
        return gen_server.call(STORE, ("read", args["key"]))

    @tools.tool("kv_write")
    def kv_write(args: dict[str, Any], _rid: Any) -> Any:
        return gen_server.call(STORE, ("write", args["key"], args["value"]))

    @tools.tool("kv_cas")
    def kv_cas(args: dict[str, Any], _rid: Any) -> Any:
        return gen_server.call(STORE, ("cas", args["key"], args["old"], args["new"]))

    return tools


def start_poc_kv() -> Any:
    """The store (unlinked: it outlives the rpc) and the POC service with the kv tools."""
    gen_server.start(("local", STORE), Store, None)
    return app.start("poc", kv_tools())


def local_execute(tool: str, args: dict[str, Any]) -> Any:
    """execute_tool on this node's server (the agent runs it here)."""
    try:
        return gen_server.call((client.SERVER_NAME, erlang.node()), ("execute_tool", tool, args),
                               OP_TIMEOUT_MS)
    except erlang.Exit as exc:
        return ("error", client.call_failure(exc.reason))


# -- on the controller ------------------------------------------------------------------

def setup(nodes: Nodes) -> None:
    for node in nodes.all:
        result = rpc.call(node, start_poc_kv, [], 20_000)
        if type(result) is not tuple or result[0] != "ok":
            raise RuntimeError(f"POC service on {node}: {result!r}")
    if on_peer.converged_within(nodes.all, 15_000) is None:
        raise RuntimeError("the POC nodes did not agree on a leader")


def leader(nodes: Nodes) -> str:
    found = on_peer.converged(nodes.all)
    if found is None:
        raise RuntimeError("no POC leader")
    return str(found[0])


def run_control(nodes: Nodes, history: History, opts_seed: int, clients: int,
                time_s: float, say: Any) -> list[Fault]:
    """The clients for `time_s`, with side A cut from side B over its middle third.
    Returns the timeline (one fault)."""
    t0 = time.monotonic()
    deadline = t0 + time_s
    keys = Keys(random.Random(opts_seed))
    agents = [Agent(nodes.all[i % len(nodes.all)]) for i in range(clients)]
    partition = Partition(nodes, leader(nodes))
    me = erlang.self()
    try:
        for i, agent in enumerate(agents):
            erlang.spawn(_client_main, i, agent, history, keys, deadline, opts_seed, clients, me)
        erlang.receive(lambda _m: False, int(time_s / 3 * 1000))
        fault = Fault("partition", time.monotonic() - t0, None, partition.start())
        say(f"cut: {fault.what}")
        erlang.receive(lambda _m: False, int(time_s / 3 * 1000))
        partition.stop()
        fault.end_s = time.monotonic() - t0
        say("healed")
        for _ in agents:
            if erlang.receive(lambda m: m == "client_done",
                              int((deadline - time.monotonic() + 30) * 1000)) is erlang.TIMEOUT:
                raise RuntimeError("a POC client did not stop")
        return [fault]
    finally:
        partition.close()
        for agent in agents:
            agent.close()


def _client_main(index: int, agent: Agent, history: History, keys: Keys, deadline: float,
                 seed: int, count: int, parent: Any) -> None:
    try:
        poc_client(index, agent, history, keys, deadline, seed, count)
    finally:
        erlang.send(parent, "client_done")


def poc_client(index: int, agent: Agent, history: History, keys: Keys, deadline: float,
               seed: int, count: int) -> None:
    """The register workload on POC mode: every operation is a tool run by the leader, asked
    through the client's node (by its agent)."""
    register_loop(index, history, keys, deadline, seed, count,
                  lambda key: _poc_read(agent, key), lambda command: _poc_change(agent, command))


def _poc_read(agent: Agent, key: Any) -> Outcome:
    answer = _agent_call(agent, "kv_read", {"key": key})
    return ("ok", answer[1]) if answer[0] == "ok" else ("fail", repr(answer))


def _poc_change(agent: Agent, command: tuple[Any, ...]) -> Outcome:
    if command[0] == "write":
        answer = _agent_call(agent, "kv_write", {"key": command[1], "value": command[2]})
    else:
        answer = _agent_call(agent, "kv_cas", {"key": command[1], "old": command[2],
                                               "new": command[3]})
    if answer == ("ok", "ok"):
        return ("ok", None)
    if answer[0] == "ok" and is_mismatch(answer[1]):
        return ("fail", answer[1])
    if answer[0] == "error" and answer[1] in DEFINITE_REFUSALS:  # refused up front
        return ("fail", repr(answer[1]))
    return ("info", repr(answer))


def _agent_call(agent: Agent, tool: str, args: dict[str, Any]) -> Any:
    try:
        return agent(local_execute, tool, args)
    except (OSError, RuntimeError) as exc:
        return ("error", ("agent", repr(exc)))


class Partition:
    """The control's one partition: `start` cuts side A (this node, the leader, one
    follower) from side B (the other three); `stop` heals it."""

    def __init__(self, nodes: Nodes, leader: str) -> None:
        followers = [n for n in nodes.all if n != leader]
        self.side_a = [erlang.node(), leader, followers[0]]
        self.side_b = followers[1:]
        self.leader = leader
        self.agent = Agent(self.side_b[0])

    def start(self) -> str:
        cut(self.side_a, self.side_b, self.agent, last=self.leader)
        return f"partition: {_short(self.side_a[1:])} (+ controller) | {_short(self.side_b)}"

    def stop(self) -> None:
        heal(self.side_a, self.side_b, self.agent)

    def close(self) -> None:
        self.agent.close()


def _short(nodes: list[str]) -> str:
    return ",".join(n.split("@")[0] for n in nodes)
