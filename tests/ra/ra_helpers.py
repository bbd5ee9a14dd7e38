"""Helpers for the ra cluster tests on real node OS processes (`tests/ra/test_cluster_*.py`).

Everything a peer runs is module-level here and travels **by reference**: a peer is
`python -m actors.node` started in the test's working directory (the repo root), which `-m`
puts on sys.path, so peers import `tests.ra.ra_helpers` like the test does. Keep this module
light (no pytest import) for that reason.

A `Cluster` is a set of peer nodes, each running its ra system ("default") with its own data
dir `<tmp_path>/<node name>`, and one member `(cluster name, node)` per node. Every wait is
bounded; helpers return what they saw so the tests can assert on it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors import erlang, ra, rpc
from actors.ra_machine import Machine

SYSTEM = "default"
ServerId = tuple[str, str]

# ---------------------------------------------------------------- machines (run on peers)


class LogMachine(Machine):
    """State: the tuple of every command applied, in order. Reply: how many there are.

    The whole history is the state, so "identical states" means identical logs of commands.
    """

    def init(self, config: Any) -> Any:
        return ()

    def apply(self, meta: dict[str, Any], command: Any, state: Any) -> tuple[Any, ...]:
        new = (*state, command)
        return new, len(new)


def log_machine() -> tuple[str, type, Any]:
    return ("module", LogMachine, None)


class EffectsMachine(Machine):
    """A machine whose commands ask for ra's machine effects, and which records ra's own
    commands (down / timeout / nodeup / nodedown) in its state. Immutable state:

        {"seen": (command, ...)   every command applied, in order (ra's own included)
         "n": int}                how many commands were applied

    Commands:
        ("watch", pid)            -> effect ("monitor", "process", pid)
        ("timer", name, ms)       -> effect ("timer", name, ms)
        ("send", pid, msg)        -> effect ("send_msg", pid, msg)
        ("boom", x)               -> raises RuntimeError (state must stay unchanged)
        ("release",)              -> effect ("release_cursor", meta["index"], new state)
        anything else             -> recorded only
    """

    def init(self, config: Any) -> Any:
        return {"seen": (), "n": 0}

    def apply(self, meta: dict[str, Any], command: Any, state: Any) -> tuple[Any, ...]:
        if type(command) is tuple and command and command[0] == "boom":
            raise RuntimeError(f"boom {command[1]!r}")
        new = {"seen": (*state["seen"], command), "n": state["n"] + 1}
        effects: list[Any] = []
        match command:
            case ("watch", pid):
                effects = [("monitor", "process", pid)]
            case ("timer", name, ms):
                effects = [("timer", name, ms)]
            case ("send", pid, msg):
                effects = [("send_msg", pid, msg)]
            case ("release",):
                effects = [("release_cursor", meta["index"], new)]
        return new, ("applied", meta["index"]), effects


def effects_machine() -> tuple[str, type, Any]:
    return ("module", EffectsMachine, None)


# ---------------------------------------------------------------- queries (run on peers)


def identity(state: Any) -> Any:
    return state


def count(state: Any) -> int:
    return len(state)


def count_plus(extra: int, state: Any) -> int:
    """len(state) + extra: each caller of a batch of queries gets its own answer."""
    return len(state) + extra


def failing_query(state: Any) -> Any:
    raise ValueError("this query fails")


def reader(test: Any, entry: Any, fun: Any, tag: Any, timeout_ms: int = 10_000) -> None:
    """(a process) One consistent_query; sends the test ("read", tag, result)."""
    erlang.send(test, ("read", tag, ra.consistent_query(entry, fun, timeout_ms)))


def queued_queries(name: str) -> int:
    """(on a node, by rpc) How many consistent queries wait in the mailbox of registered
    `name` (a look at the node's process table: test code only)."""
    from actors import _context

    proc = _context.current_node().whereis(name)
    if proc is None:
        return -1
    return sum(1 for m in list(proc.mailbox)
               if type(m) is tuple and len(m) == 3 and m[0] == "$gen_call"
               and type(m[2]) is tuple and m[2][:1] == ("$ra_consistent_query",))


def ra_start(data_dir: str, opts: dict[str, Any]) -> Any:
    """(on a peer) ra.start with keyword options (rpc passes positional args only)."""
    return ra.start(data_dir, SYSTEM, **opts)


def files_under(directory: str, suffix: str) -> list[tuple[str, int]]:
    """(anywhere) (path, size) of every file ending in `suffix` under `directory`."""
    found = []
    for root, _dirs, names in os.walk(directory):
        for name in names:
            if name.endswith(suffix):
                path = os.path.join(root, name)
                found.append((path, os.path.getsize(path)))
    return sorted(found)


# ---------------------------------------------------------------- bounded waits


def poll(fun: Callable[[], Any], timeout: float, step: float = 0.02, what: str = "") -> Any:
    """fun() until it returns something truthy (returned); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = fun()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")
        time.sleep(step)


def overview(sid: ServerId, timeout: int = 1000) -> dict[str, Any] | None:
    """member_overview as a dict, or None if the member does not answer."""
    got = ra.member_overview(sid, timeout)
    return got if type(got) is dict else None


def leader_of(ids: Iterable[ServerId], timeout: int = 1000) -> ServerId | None:
    """The one member that says it leads, if every answering member agrees on it."""
    views = [v for v in (overview(s, timeout) for s in ids) if v is not None]
    leaders = {v["id"] for v in views if v["role"] == "leader"}
    if len(leaders) != 1:
        return None
    leader = next(iter(leaders))
    term = next(v["term"] for v in views if v["id"] == leader)
    if any(v["term"] > term for v in views):
        return None
    return tuple(leader)  # type: ignore[return-value]


def wait_leader(ids: Iterable[ServerId], timeout: float = 10.0) -> ServerId:
    ids = list(ids)
    return poll(lambda: leader_of(ids), timeout, what=f"a leader among {ids}")  # type: ignore[no-any-return]


def local_state(sid: ServerId, timeout: int = 3000) -> tuple[tuple[int, int], Any]:
    """((applied index, term), state) of one member, as local_query gives them."""
    got = ra.local_query(sid, identity, timeout)
    assert type(got) is tuple and got[0] == "ok", (sid, got)
    return got[1]  # type: ignore[no-any-return]


def wait_caught_up(ids: Iterable[ServerId], timeout: float = 10.0) -> dict[ServerId, Any]:
    """Wait until every member has applied the leader's commit index (and the leader has
    applied all of it); returns each member's overview at that moment."""
    ids = list(ids)

    def check() -> dict[ServerId, Any] | None:
        views = {s: overview(s) for s in ids}
        if any(v is None for v in views.values()):
            return None
        leaders = [v for v in views.values() if v["role"] == "leader"]  # type: ignore[index]
        if len(leaders) != 1:
            return None
        commit = leaders[0]["commit_index"]
        ok = all(v["last_applied"] == commit and v["commit_index"] == commit  # type: ignore[index]
                 for v in views.values())
        return views if ok else None

    return poll(check, timeout, what=f"{ids} applying the leader's commit index")  # type: ignore[no-any-return]


# ---------------------------------------------------------------- clusters of peer nodes


@dataclass
class Cluster:
    """Peer nodes each running an ra system, and the members of cluster `name` on them."""

    peers: Callable[..., tuple[Any, str]]  # the `peers` fixture
    root: Path  # tmp_path: node data dirs live under it
    name: str  # the cluster name, also every member's server name
    opts: dict[str, Any] = field(default_factory=dict)  # ra.start options on every node
    ctl: dict[str, Any] = field(default_factory=dict)  # node -> peer controller pid
    ids: list[ServerId] = field(default_factory=list)  # the members started so far

    def data_dir(self, node: str) -> str:
        return str(self.root / node.split("@")[0])

    def add_node(self, short_name: str) -> str:
        """Start (or start again, after a kill) peer `short_name` and its ra system."""
        pid, node = self.peers(short_name)
        self.ctl[node] = pid
        result = rpc.call(node, ra_start, [self.data_dir(node), self.opts], 20000)
        assert result == "ok", (node, result)
        return node

    def add_nodes(self, short_names: list[str]) -> list[str]:
        """`add_node` for each name, the peers booting in parallel; their node names."""
        me, ref = erlang.self(), erlang.make_ref()
        for pos, short in enumerate(short_names):
            erlang.spawn(_add_node_for, me, ref, pos, self, short)
        got: dict[int, Any] = {}
        while len(got) < len(short_names):
            msg = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("added", ref), 60_000)
            assert msg is not erlang.TIMEOUT, f"peers not up: {sorted(got)} of {short_names}"
            got[msg[2]] = msg[3]
        failed = [v for v in got.values() if v[0] != "ok"]
        assert not failed, failed
        return [got[pos][1] for pos in range(len(short_names))]

    def sid(self, node: str) -> ServerId:
        return (self.name, node)

    def start(self, nodes: list[str], machine: Any) -> ServerId:
        """ra.start_cluster over one member per node; returns the leader."""
        self.ids = [self.sid(n) for n in nodes]
        result = ra.start_cluster(SYSTEM, self.name, machine, self.ids, 20000)
        assert result[0] == "ok" and sorted(result[1]) == sorted(self.ids), result
        return wait_leader(self.ids)

    def kill(self, node: str) -> None:
        """SIGKILL the node's OS process; return once it is gone."""
        from actors import peer

        peer.kill(self.ctl[node])
        poll(lambda: peer.get_state(self.ctl[node]) == "down", 5, what=f"{node} gone")


def _add_node_for(test: Any, ref: Any, pos: int, cluster: Cluster, short: str) -> None:
    try:
        result: Any = ("ok", cluster.add_node(short))
    except BaseException as exc:  # reported to the test, which fails
        result = ("error", short, repr(exc))
    erlang.send(test, ("added", ref, pos, result))


# ---------------------------------------------------------------- a background client


def writer(test: Any, entry: ServerId, tag: str, timeout_ms: int = 3000) -> None:
    """(a process) process_command((tag, i), ...) for i = 0, 1, ... through `entry` until
    told "stop"; then send the test ("written", tag, [(i, result), ...]). On
    ("progress", ref) it tells the test ("progress", ref, number of "ok" results so far)."""
    results: list[tuple[int, Any]] = []
    oks = 0
    i = 0
    while True:
        msg = erlang.receive(None, 0)
        if msg == "stop":
            erlang.send(test, ("written", tag, results))
            return
        if type(msg) is tuple and msg[0] == "progress":
            erlang.send(test, ("progress", msg[1], oks))
        result = ra.process_command(entry, (tag, i), timeout_ms)
        results.append((i, result))
        if result[0] == "ok":
            oks += 1
        i += 1


def writer_progress(pid: Any) -> int:
    """(the test) How many of the writer's commands were acknowledged so far."""
    ref = erlang.make_ref()
    erlang.send(pid, ("progress", ref))
    msg = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("progress", ref), 10_000)
    assert msg is not erlang.TIMEOUT, "the writer does not answer"
    return msg[2]  # type: ignore[no-any-return]


def stop_writer(pid: Any, tag: str) -> list[tuple[int, Any]]:
    """(the test) Stop the writer; every (i, result) it got, in order."""
    erlang.send(pid, "stop")
    msg = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("written", tag), 15_000)
    assert msg is not erlang.TIMEOUT, "the writer did not report"
    return msg[2]  # type: ignore[no-any-return]


def wait_writer_progress(pid: Any, more_than: int, timeout: float = 10.0) -> int:
    """(the test) Wait until the writer has more than `more_than` acknowledged commands."""
    return poll(lambda: (n := writer_progress(pid)) > more_than and n, timeout,  # type: ignore[no-any-return]
                what=f"the writer getting past {more_than} acknowledged commands")


def in_process_cluster(root: Path, prefix: str, cluster: str, member: str,
                       cookie: str) -> tuple[list[Any], list[ServerId]]:
    """Three distributed nodes in this process, each with its ra system under `root`, and
    a cluster of `LogMachine` with one member each. Returns (nodes, server ids); the
    caller binds a node and stops them all."""
    from actors import net_kernel

    nodes = [net_kernel.start_node(f"{prefix}{i}_{root.name[-6:]}@127.0.0.1", cookie=cookie)
             for i in range(3)]
    with nodes[0].bound():
        for n in nodes:
            assert rpc.call(n.name, "ra", "start", [str(root / n.name)], 10000) == "ok"
        ids = [(member, n.name) for n in nodes]
        assert ra.start_cluster(SYSTEM, cluster, log_machine(), ids)[0] == "ok"
    return nodes, ids


# -- a node's own log, kept for the test (run on that node by rpc) --------------------------

_LOGGED: list[str] = []  # per node process: what `keep_logs` has kept since


class _Keep(logging.Handler):
    """Keeps every warning and error the node logs, for the test to read by rpc."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _LOGGED.append(f"{record.levelname} {record.name}: {record.getMessage()}")
        except Exception:  # a record that cannot be formatted is not what we look for
            pass


def keep_logs() -> str:
    """(on a node, by rpc) Start keeping its warnings and errors: "ok"."""
    root = logging.getLogger()
    if not any(isinstance(handler, _Keep) for handler in root.handlers):
        root.addHandler(_Keep(logging.WARNING))
    return "ok"


def logged(*needles: str) -> list[str]:
    """(on a node, by rpc) The kept log lines that contain every one of `needles`."""
    return [line for line in list(_LOGGED) if all(n in line for n in needles)]
