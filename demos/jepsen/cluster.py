"""The system under test: five node OS processes, and the database each workload runs on them.

`Nodes` owns the node processes (a `demos.lab.Lab`: private port mapper, random
cookie, data under one temporary directory): start, SIGKILL, SIGSTOP/SIGCONT, and restart
under the same name on the same data. A `Db` is what a workload runs on those nodes, as
Jepsen's "db": set it up, restart a node's part of it after a crash, name its leader, and
read every member's final state.

    RegisterDb  an ra cluster of `kv.KvMachine`, one member per node
    AuditDb     the erlmcp consensus service in Raft mode, one per node
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from actors import erlang, net_kernel, peer, ra, rpc
from actors.consensus import raft_mode
from demos.lab import BOOT_MS, ROOT, Lab, call_on
from demos.lab import node as lab_node

from . import kv
from .netns import NetnsNetwork

log = logging.getLogger("demos.jepsen")

SYSTEM = "default"
SETUP_MS = 30_000
SETTLE_S = 30.0  # how long the final reads wait for the members to reach one index


class Nodes:
    """`size` peer nodes j1..jN of this (controller) node. `alive` excludes killed nodes."""

    def __init__(self, lab: Lab, size: int) -> None:
        self.lab = lab
        self.names = [f"j{i + 1}" for i in range(size)]
        self.all: list[str] = []
        self.killed: set[str] = set()
        self.paused: set[str] = set()

    def start(self) -> list[str]:
        self.all = self.lab.start_peers(self.names)
        return self.all

    def alive(self) -> list[str]:
        return [n for n in self.all if n not in self.killed]

    def data_dir(self, node: str) -> str:
        return str(Path(self.lab.tmp) / node.split("@")[0])

    def kill(self, node: str) -> None:
        """SIGKILL: no goodbye, no flush; the OS keeps what was written."""
        os.kill(self.lab.os_pids[node], signal.SIGKILL)
        self.killed.add(node)
        self.paused.discard(node)

    def pause(self, node: str) -> None:
        os.kill(self.lab.os_pids[node], signal.SIGSTOP)
        self.paused.add(node)

    def resume(self, node: str) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.lab.os_pids[node], signal.SIGCONT)
        self.paused.discard(node)

    def restart(self, node: str) -> None:
        """A new OS process for a killed node, under its old name (its data stays on disk)."""
        self.lab.stop_peers([node])
        self.lab.start_peers([node.split("@")[0]])
        self.killed.discard(node)


class NetnsLab(Lab):
    """A Lab whose nodes live in network namespaces (`netns.NetnsNetwork`): this controller
    node listens on the namespaces' bridge, with no port mapper (the nodes are told every
    address)."""

    def __init__(self, net: NetnsNetwork, peer_log_level: str = "CRITICAL") -> None:
        super().__init__(peer_log_level)
        self.net = net

    def open(self) -> None:
        self.net.create()
        cookie = secrets.token_hex(16)
        os.environ["ERLPY_COOKIE"] = cookie
        self.tmp = tempfile.mkdtemp(prefix="erlpy-jepsen-")
        host = self.net.controller_host()
        self.node = f"jepsen-{secrets.token_hex(3)}@{host}"
        result = net_kernel.start(self.node, cookie=cookie, listen=f"tcp://{host}:0",
                                  epmd=False)
        if result[0] != "ok":
            raise RuntimeError(f"net_kernel.start: {result!r}")

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.net.delete()


class NetnsNodes(Nodes):
    """`Nodes` started (and restarted) inside the namespaces of a `NetnsLab`."""

    def __init__(self, lab: NetnsLab, size: int) -> None:
        super().__init__(lab, size)
        self.net = lab.net
        self.names = [self.net.short_name(i) for i in range(size)]

    def start(self) -> list[str]:
        self.all = [self._start(i) for i in range(len(self.names))]
        return self.all

    def _start(self, i: int) -> str:
        result = self.net.start_node(i, args=["--log-level", self.lab.peer_log_level],
                                     env={"PYTHONPATH": ROOT}, wait_boot=BOOT_MS)
        if result[0] != "ok":
            raise RuntimeError(f"node {i} did not start in its namespace: {result!r}")
        node = result[2]
        self.lab.peers[node] = result[1]
        self.lab.os_pids[node] = peer.os_pid(result[1])
        call_on(node, "loaded", timeout=10_000)
        return str(node)

    def restart(self, node: str) -> None:
        self.lab.stop_peers([node])
        self._start(self.all.index(node))
        self.killed.discard(node)


class Db(Protocol):
    def setup(self, nodes: Nodes) -> None: ...
    def restart(self, node: str) -> None: ...
    def leader(self) -> str | None: ...
    def members(self) -> dict[str, Any]: ...
    def wait_whole(self, within_s: float) -> bool: ...
    def final_states(self) -> dict[str, Any]: ...


class RegisterDb:
    """An ra cluster of KvMachine, one member per node; `ids` maps node -> its member."""

    machine = ("module", kv.KvMachine, None)

    def __init__(self) -> None:
        self.nodes: Nodes | None = None
        self.ids: dict[str, tuple[str, str]] = {}
        self.generation = 0

    def setup(self, nodes: Nodes) -> None:
        self.nodes = nodes
        for node in nodes.all:
            _expect_ok(rpc.call(node, ra.start, [nodes.data_dir(node)], SETUP_MS), node)
        self.ids = {node: (kv.CLUSTER, node) for node in nodes.all}
        result = ra.start_cluster(SYSTEM, kv.CLUSTER, self.machine, list(self.ids.values()),
                                  SETUP_MS)
        if result[0] != "ok" or result[2]:
            raise RuntimeError(f"ra.start_cluster: {result!r}")

    def restart(self, node: str) -> None:
        assert self.nodes is not None
        _expect_ok(rpc.call(node, ra.start, [self.nodes.data_dir(node)], SETUP_MS), node)
        _expect_ok(ra.restart_server(SYSTEM, self.ids[node]), node)

    def members(self) -> dict[str, Any]:
        return dict(self.ids)

    def leader(self) -> str | None:
        return _leader_of(list(self.ids.values()), self.nodes)

    def replace(self, node: str) -> str:
        """Membership change under load: remove `node`'s member, then add a new member (new
        name, empty log) on the same node and start it. Returns what was done."""
        old = self.ids[node]
        others = [sid for n, sid in self.ids.items() if n != node]
        removed = ra.remove_member(others, old, 10_000)
        note = ""
        if removed[0] != "ok":  # e.g. leadership lost: the change may have committed anyway
            config = _leader_config(others)
            if config is None or old in config:
                return f"remove {old[0]} on {node}: {removed!r}"
            note = f" (the remove answered {removed!r}, and took effect)"
        ra.stop_server(SYSTEM, old)
        self.generation += 1
        new = (f"{kv.CLUSTER}_{self.generation}", node)
        added = ra.add_member(others, new, 10_000)
        if added[0] != "ok":
            config = _leader_config(others)
            if config is None or new not in config:
                del self.ids[node]
                return f"removed {old[0]}{note}; add {new[0]}: {added!r} (node left out)"
            note += f" (the add answered {added!r}, and took effect)"
        started = ra.start_server(SYSTEM, kv.CLUSTER, new, self.machine,
                                  [*others, new])
        self.ids[node] = new
        return f"replaced {old[0]} by {new[0]} on {node} ({started}){note}"

    def wait_whole(self, within_s: float) -> bool:
        return _wait_whole(list(self.ids.values()), within_s)

    def final_states(self) -> dict[str, Any]:
        return _settled_states({node: (sid, kv.whole) for node, sid in self.ids.items()})


class AuditDb:
    """The consensus service in Raft mode on every node (`demos.lab.node.start_service`)."""

    def __init__(self) -> None:
        self.nodes: Nodes | None = None

    def setup(self, nodes: Nodes) -> None:
        self.nodes = nodes
        me = erlang.self()
        for node in nodes.all:
            erlang.spawn(lambda node=node: erlang.send(me, ("svc", node, self._start(node))))
        for _ in nodes.all:
            msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "svc", SETUP_MS + 5000)
            if msg is erlang.TIMEOUT or msg[2][0] != "ok":
                raise RuntimeError(f"the service did not start: {msg!r}")
        if not self.wait_whole(30.0):
            raise RuntimeError("the service's cluster did not form")

    def _start(self, node: str) -> Any:
        assert self.nodes is not None
        return call_on(node, "start_service", "raft", self.nodes.all,
                       self.nodes.data_dir(node), timeout=SETUP_MS)

    def restart(self, node: str) -> None:
        result = self._start(node)
        if result[0] != "ok":
            raise RuntimeError(f"the service did not restart on {node}: {result!r}")

    def members(self) -> dict[str, Any]:
        assert self.nodes is not None
        return {node: (raft_mode.MEMBER_NAME, node) for node in self.nodes.all}

    def leader(self) -> str | None:
        return _leader_of(list(self.members().values()), self.nodes)

    def wait_whole(self, within_s: float) -> bool:
        return _wait_whole(list(self.members().values()), within_s)

    def final_states(self) -> dict[str, Any]:
        """node -> the request ids of its member's audit log, oldest first."""
        return _settled_states({node: (sid, lab_node.audit_request_ids)
                                for node, sid in self.members().items()})


def _expect_ok(result: Any, node: str) -> None:
    if result != "ok" and result != ("error", "already_started"):
        raise RuntimeError(f"{node}: {result!r}")


def _leader_of(ids: list[Any], nodes: Nodes | None) -> str | None:
    """The leader's node as a live, unpaused member sees it (short timeouts: never blocks
    long on a paused node)."""
    skip = (nodes.killed | nodes.paused) if nodes else set()
    for sid in ids:
        if sid[1] in skip:
            continue
        answer = ra.members(sid, 300)
        if answer[0] == "ok" and answer[2] is not None:
            return answer[2][1]
    return None


def _leader_config(ids: list[Any], within_s: float = 10.0) -> list[Any] | None:
    """The members of the current leader's configuration (a membership change whose call
    failed may have taken effect all the same: the leader's log says), asked through
    `ids`; None if no leader answers within `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for sid in ids:
            seen = ra.members(sid, 1000)
            leader = seen[2] if seen[0] == "ok" else None
            if leader is not None:
                answer = ra.members(leader, 1000)
                if answer[0] == "ok" and answer[2] == leader:
                    return list(answer[1])
        erlang.receive(lambda _m: False, 100)
    return None


def _settled_states(queries: dict[str, tuple[Any, Any]],
                    within_s: float = SETTLE_S) -> dict[str, Any]:
    """node -> its member's state, `ra.local_query(member, fun)` for each node's (member,
    fun), all read at one applied index. A cluster that looks whole may still be applying
    a command that was acknowledged late (a client gave up on it during a fault), so
    members read at different indexes may differ for no fault of theirs: the members are
    read again, every 100 ms for at most `within_s`, until they report the same index.
    Then, or at the deadline, the last reading (an unreadable member: ("unreadable", why))."""
    deadline = time.monotonic() + within_s
    while True:
        states, indexes = {}, set()
        for node, (member, fun) in queries.items():
            answer = ra.local_query(member, fun, 5000)
            if answer[0] == "ok":
                (index, _term), states[node] = answer[1]
                indexes.add(index)
            else:
                states[node] = ("unreadable", answer)
                indexes.add(None)
        if len(indexes) <= 1 or time.monotonic() >= deadline:
            return states
        erlang.receive(lambda _m: False, 100)


_SHOWN = ("role", "term", "leader", "commit_index", "last_applied", "last_index",
          "snapshot_index", "members")  # what _wait_whole logs of a member's overview


def _wait_whole(ids: list[Any], within_s: float) -> bool:
    """Every member follows one leader and has applied the same index (bounded). If they
    do not, the last view of each is logged (role, term, leader, indexes, members)."""
    deadline = time.monotonic() + within_s
    views: list[Any] = []
    while time.monotonic() < deadline:
        views = [ra.member_overview(sid, 1000) for sid in ids]
        if all(type(v) is dict for v in views):
            leaders = {v["leader"] for v in views}
            applied = {v["last_applied"] for v in views}
            if len(leaders) == 1 and None not in leaders and len(applied) == 1:
                return True
        erlang.receive(lambda _m: False, 50)
    for sid, view in zip(ids, views, strict=False):  # (no view if no round ran)
        shown = {k: view[k] for k in _SHOWN if k in view} if type(view) is dict else view
        log.warning("not whole after %.0f s: %s %r", within_s, sid, shown)
    return False

