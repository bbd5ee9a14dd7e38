"""Port of the seed's "Production: ra Cluster Setup" (`init_cluster/0`), corrected.

The seed (docs/poc-vs-production.md) builds a `Servers` list, a `Config` map and calls
`ra:start_cluster([node1@host1, node2@host2, node3@host3], Config)`. That call does not
exist in ra. ra 2.x starts a cluster with

    ra:start_cluster(System, ClusterName, Machine, ServerIds)

(`actors.ra.start_cluster(system, cluster_name, machine, server_ids)` here), where a
server id is `{Name, Node}` and the machine is `{module, Mod, Config}`: the seed's
`{module, erlmcp_consensus_machine}` lacks the config element. (The 2-tuple
`{module, Mod}` is ra 0.x's machine spec, of the same era as its `{State, Effects}`
apply return.) The seed's `Config` map is a `ra_server_config()`: it is what ra's
`start_cluster/5` builds for each member itself, with `id` the member's server id and a
fresh `uid` per member; so the port keeps the map's cluster-wide fields and hands them to
`start_cluster/4`. Clause by clause below, the Erlang is beside the Python.

This module also holds the demos' plumbing, shared by the other ra ports:
`local_nodes()` starts in-process distributed nodes, each with its ra system in a
temporary directory, and cleans everything up; `wait_for`, `current_leader`,
`wait_caught_up` and `local_state` are bounded waits and reads.

    python -m demos.erlang_ports.ra_cluster_setup
"""

from __future__ import annotations

import itertools
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from actors import Node, net_kernel, ra, ra_machine, rpc

__all__ = ["CLUSTER_NAME", "SERVER_NAME", "SYSTEM", "LocalNodes", "SetupResult", "config",
           "current_leader", "init_cluster", "local_nodes", "local_state", "main", "servers",
           "wait_caught_up", "wait_for"]

SYSTEM = "default"  # the ra system every node runs (ra:start/0 starts `default` too)
CLUSTER_NAME = "erlmcp_consensus"
SERVER_NAME = "erlmcp_consensus"  # the seed's {erlmcp_consensus, Node}: each member's name

ServerId = tuple[str, str]
T = TypeVar("T")
_runs = itertools.count(1)


# ------------------------------------------------------------------ the port


def servers(nodes: list[str], name: str = SERVER_NAME) -> list[tuple[str, ServerId]]:
    """The seed's `Servers`: (label, server id) for each node."""
    # %% Define cluster with 3 nodes
    # Servers = [
    #     {node1, {erlmcp_consensus, 'node1@host1'}},
    #     {node2, {erlmcp_consensus, 'node2@host2'}},
    #     {node3, {erlmcp_consensus, 'node3@host3'}}
    # ],
    # Only the second element of each pair is something ra knows: a server id
    # {Name, Node}. The labels node1..node3 are the seed's; ra has no use for them.
    return [(f"node{i}", (name, node)) for i, node in enumerate(nodes, 1)]


def config(servers_: list[tuple[str, ServerId]], machine: type[ra_machine.Machine],
           machine_config: Any = None) -> dict[str, Any]:
    """The seed's `Config` map, with the values ra 2.x requires.

    It describes the first member (`id`); `start_cluster/4` builds one like it for every
    member, each with its own id and a fresh uid, so only `cluster_name`, `machine` and
    `initial_members` are passed on.
    """
    first = servers_[0][1]
    # Config = #{
    return {
        # id => node1,
        # A member's id is its server id {Name, Node}, not the label node1.
        "id": first,
        # uid => <<"erlmcp_consensus">>,
        # uid names the member's data (log, snapshots) and must be unique per member;
        # ra.start_server makes "<cluster>__<name>_<random hex>" for each one.
        "uid": None,
        # cluster_name => erlmcp_consensus,
        "cluster_name": CLUSTER_NAME,
        # log_init_args => #{uid => <<"erlmcp_consensus">>},
        "log_init_args": {"uid": None},  # the member's uid again: filled in by ra
        # initial_members => Servers,
        # A list of server ids, not the seed's {Label, ServerId} pairs.
        "initial_members": [sid for _label, sid in servers_],
        # machine => {module, erlmcp_consensus_machine}
        # ra 2.x: {module, Mod, Config}; Config is what Mod:init/1 receives. Given the
        # seed's {module, Mod}, every member fails in init and start_cluster answers
        # ("error", "cluster_not_formed").
        "machine": ("module", machine, machine_config),
    }
    # },


def init_cluster(nodes: list[str], machine: type[ra_machine.Machine],
                 machine_config: Any = None, cluster_name: str = CLUSTER_NAME,
                 name: str = SERVER_NAME, timeout: int = 10000) -> Any:
    """Start a member `(name, node)` on each node and wait for a leader.

    ("ok", started, not_started) | ("error", "cluster_not_formed"), as ra's.
    """
    servers_ = servers(nodes, name)
    config_ = {**config(servers_, machine, machine_config), "cluster_name": cluster_name}
    # %% Start cluster - automatic leader election
    # ra:start_cluster([node1@host1, node2@host2, node3@host3], Config).
    # There is no ra:start_cluster(Nodes, Config). ra 2.x takes the system, the cluster
    # name, the machine and the server ids (start_cluster/4), and elects a leader
    # (it triggers an election on a member, then waits until one is known).
    return ra.start_cluster(SYSTEM, config_["cluster_name"], config_["machine"],
                            config_["initial_members"], timeout)


# ------------------------------------------------------------------ in-process nodes


@dataclass
class LocalNodes:
    """`shell`: the node the demo's thread is bound to (a client, hosting no member);
    `nodes`: the member nodes, each running ra system SYSTEM in `data_dir/<node>`."""

    shell: Node
    nodes: list[Node]
    data_dir: str

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]


@contextmanager
def local_nodes(prefix: str, count: int = 3) -> Iterator[LocalNodes]:
    """`count` distributed nodes in this process, connected, each with its ra system.

    The calling thread is bound to an extra client node meanwhile. On exit the ra systems
    are stopped, the nodes stopped and the temporary directory removed. Node names carry
    the OS pid and a run number, so runs never meet each other's nodes.
    """
    cookie = secrets.token_hex(8)
    tag = f"{os.getpid()}_{next(_runs)}"
    tmp = tempfile.TemporaryDirectory(prefix="erlang_ports_ra_")
    shell = net_kernel.start_node(f"{prefix}_client_{tag}@127.0.0.1", cookie=cookie)
    nodes: list[Node] = []
    try:
        for i in range(1, count + 1):
            nodes.append(net_kernel.start_node(f"{prefix}{i}_{tag}@127.0.0.1", cookie=cookie))
        with shell.bound():
            for node in nodes:
                if net_kernel.connect_node(node.name) is not True:
                    raise RuntimeError(f"cannot connect to {node.name}")
                data_dir = os.path.join(tmp.name, node.name.split("@")[0])
                started = rpc.call(node.name, "ra", "start", [data_dir], 10000)
                if started != "ok":
                    raise RuntimeError(f"ra did not start on {node.name}: {started!r}")
            yield LocalNodes(shell, nodes, tmp.name)
    finally:
        with shell.bound():
            for node in nodes:
                rpc.call(node.name, "ra", "stop", [], 15000)
        for node in nodes:
            node.stop()
        shell.stop()
        tmp.cleanup()


# ------------------------------------------------------------------ bounded waits and reads


def wait_for(what: str, fun: Callable[[], T | None], timeout_ms: int = 5000,
             step_ms: int = 10) -> T:
    """Poll `fun` until it returns something truthy (returned); TimeoutError after
    `timeout_ms` (ra offers no event for these conditions, so they are polled)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        got = fun()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout_ms} ms (last: {got!r})")
        time.sleep(step_ms / 1000)


def _overview(sid: ServerId) -> dict[str, Any] | None:
    got = ra.member_overview(sid, 1000)
    return got if type(got) is dict else None


def current_leader(ids: list[ServerId]) -> ServerId | None:
    """The member that says it leads, in the highest term any answering member is in;
    None while there is none (an election is on, or the leader is stopped)."""
    views = [v for v in (_overview(s) for s in ids) if v is not None]
    if not views:
        return None
    term = max(v["term"] for v in views)
    leaders = [tuple(v["id"]) for v in views if v["role"] == "leader" and v["term"] == term]
    return leaders[0] if len(leaders) == 1 else None  # type: ignore[return-value]


def wait_caught_up(ids: list[ServerId], timeout_ms: int = 5000) -> int:
    """Wait until the leader has nothing in flight (its last index is committed) and each
    member in `ids` has applied that index; return it. Every member then holds the same
    state, and it stays so until the next command."""

    def check() -> int | None:
        views = [_overview(s) for s in ids]
        if any(v is None for v in views):
            return None
        leaders = [v for v in views if v["role"] == "leader"]  # type: ignore[index]
        if len(leaders) != 1 or leaders[0]["last_index"] != leaders[0]["commit_index"]:
            return None
        commit = leaders[0]["commit_index"]
        done = all(v["last_applied"] == commit for v in views)  # type: ignore[index]
        return commit if done else None

    return wait_for(f"{ids} applying the leader's commit index", check, timeout_ms)


def _identity(state: Any) -> Any:
    return state


def local_state(sid: ServerId) -> Any:
    """This member's machine state as applied so far (ra.local_query)."""
    answer = ra.local_query(sid, _identity, 3000)
    if answer[0] != "ok":
        raise RuntimeError(f"local_query {sid}: {answer!r}")
    return answer[1][1]


# ------------------------------------------------------------------ the demonstration


@dataclass
class SetupResult:
    servers: list[tuple[str, ServerId]]
    config: dict[str, Any]
    seed_call: str  # what the seed's ra:start_cluster(Nodes, Config) does here
    seed_machine: str  # what the seed's {module, Mod} does here
    started: Any  # init_cluster's result
    leader: ServerId | None
    roles: dict[ServerId, str] = field(default_factory=dict)


def main() -> SetupResult:
    # The machine is the deterministic one of ra_machine_apply (step 3 of the migration);
    # imported here so that the two modules do not import each other at load time.
    from .ra_machine_apply import ErlmcpConsensusMachine

    with local_nodes("setup") as cluster:
        nodes = cluster.names
        servers_ = servers(nodes)
        config_ = config(servers_, ErlmcpConsensusMachine)
        print("Servers =", servers_)
        print("Config  =", {k: v for k, v in config_.items() if k != "machine"})
        print("machine =", ("module", ErlmcpConsensusMachine.__name__, None))

        try:  # the seed's call, as written
            ra.start_cluster(nodes, config_)  # type: ignore[call-arg]
            seed_call = "accepted"
        except TypeError as exc:
            seed_call = f"TypeError: {exc}"
        print(f"ra:start_cluster(Nodes, Config)      -> {seed_call}")
        try:  # the seed's machine spec, as written
            ra_machine.resolve(("module", ErlmcpConsensusMachine))
            seed_machine = "accepted"
        except ValueError as exc:
            seed_machine = f"ValueError: {exc}"
        print(f"machine {{module, Mod}}                -> {seed_machine}")

        started = init_cluster(nodes, ErlmcpConsensusMachine)
        print(f"ra:start_cluster(default, {CLUSTER_NAME}, Machine, ServerIds) -> {started}")
        ids = [sid for _label, sid in servers_]
        leader = wait_for("a leader", lambda: current_leader(ids))
        roles = {sid: str((_overview(sid) or {}).get("role")) for sid in ids}
        for sid, role in roles.items():
            print(f"    {sid[1]:<32} {role}")
        print(f"leader: {leader}; ra.members: {ra.members(ids[0])}")
    print("nodes stopped, data directory removed")
    return SetupResult(servers_, config_, seed_call, seed_machine, started, leader, roles)


if __name__ == "__main__":
    # Run the importable module's main, not a second copy of it named __main__.
    import importlib

    importlib.import_module("demos.erlang_ports.ra_cluster_setup").main()
