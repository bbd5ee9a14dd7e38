"""The demo's plumbing: its world (`Lab`), a cluster of service nodes per mode (`Cluster`),
and a partition with the demo's own node on one side (`Agent`, `cut`, `heal`).

The Lab makes this OS process a distributed node with a private port mapper (on an
ephemeral port, through ERLPY_EPMD_PORT, which the peers inherit) and a random cookie,
keeps the Raft data under one temporary directory, and undoes all of it in `close()`:
peers stopped (killed if need be), the node stopped, the port mapper stopped, the
directory removed. Peers halt by themselves if this process dies (their stdin closes).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from actors import Pid, erlang, net_kernel, peer, rpc
from actors.consensus import client
from transport import epmd

from . import _demo_node as on_peer

NODE_MODULE = "demos._demo_node"
ROOT = str(Path(__file__).resolve().parent.parent)  # the repository: peers import demos.*
BOOT_MS = 20000


def server(node: str) -> tuple[str, str]:
    return (client.SERVER_NAME, node)


def call_on(node: str, function: str, *args: Any, timeout: int = 5000) -> Any:
    """demos._demo_node.function(*args) on `node`."""
    return rpc.call(node, NODE_MODULE, function, list(args), timeout)


def elapsed_ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1000.0


def wait_for(cond: Any, within_s: float, step_ms: int = 10) -> Any:
    """cond()'s first truthy value within `within_s`, polled every `step_ms`; else None."""
    deadline = time.monotonic() + within_s
    while True:
        value = cond()
        if value or time.monotonic() >= deadline:
            return value or None
        erlang.receive(lambda _m: False, step_ms)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """The demo's world. `open()` then `close()` (always: see run_demo)."""

    def __init__(self, peer_log_level: str = "CRITICAL") -> None:
        self.peer_log_level = peer_log_level
        self.port = 0
        self.tmp = ""
        self.node = ""
        self.peers: dict[str, Pid] = {}  # node -> peer controller
        self.os_pids: dict[str, int] = {}
        self.clusters: dict[str, Cluster] = {}

    def open(self) -> None:
        self.port = _free_port()
        cookie = secrets.token_hex(16)
        os.environ[epmd.PORT_ENV] = str(self.port)
        os.environ["ERLPY_COOKIE"] = cookie
        self.tmp = tempfile.mkdtemp(prefix="erlpy-demo-")
        self.node = f"demo-{secrets.token_hex(3)}@127.0.0.1"
        result = net_kernel.start(self.node, cookie=cookie)
        if result[0] != "ok":
            raise RuntimeError(f"net_kernel.start: {result!r}")

    def cluster(self, mode: str) -> Cluster:
        if mode not in self.clusters:
            self.clusters[mode] = Cluster(self, mode)
        return self.clusters[mode]

    def start_peers(self, names: list[str]) -> list[str]:
        """Start a node per name, in parallel, in new OS processes, each with the demo's
        module loaded (so that nothing timed later pays for the import): their names."""
        me = erlang.self()
        env = {"PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH"))
                                             if p)}
        args = ["--log-level", self.peer_log_level]

        def boot(name: str) -> None:
            result = peer.start(name, args=args, env=env, wait_boot=BOOT_MS)
            if result[0] == "ok":
                call_on(result[2], "loaded", timeout=10000)
            erlang.send(me, ("peer", name, result))

        for name in names:
            erlang.spawn(boot, name)
        started: dict[str, Any] = {}
        for _ in names:
            msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "peer", BOOT_MS + 15000)
            if msg is erlang.TIMEOUT:
                raise RuntimeError("a peer did not start in time")
            started[msg[1]] = msg[2]
            if msg[2][0] == "ok":
                self.peers[msg[2][2]] = msg[2][1]
                self.os_pids[msg[2][2]] = peer.os_pid(msg[2][1])
        failed = {n: r for n, r in started.items() if r[0] != "ok"}
        if failed:
            raise RuntimeError(f"peers did not start: {failed!r}")
        return [started[name][2] for name in names]

    def stop_peers(self, nodes: list[str]) -> None:
        for node in nodes:
            pid = self.peers.pop(node, None)
            if pid is not None:
                try:
                    peer.stop(pid)
                except Exception:
                    pass
            _kill_quietly(self.os_pids.pop(node, None))

    def kill(self, node: str) -> None:
        """SIGKILL the node's OS process: a crash, with no goodbye to anyone."""
        peer.kill(self.peers[node])

    def close(self) -> None:
        """Undo everything `open` and the scenarios did; never raises. Nodes still booting
        when we were interrupted are not in `peers` yet: every child process left is killed
        before the port mapper is stopped, or one of them could start a new one."""
        try:
            self.stop_peers(list(self.peers))
        except BaseException:
            for os_pid in self.os_pids.values():
                _kill_quietly(os_pid)
        for os_pid in _children():
            _kill_quietly(os_pid)
        try:
            net_kernel.stop()
        except BaseException:
            pass
        if self.port:
            try:
                epmd.stop(self.port, force=True)
            except BaseException:
                pass
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _children() -> list[int]:
    """The OS pids of this process's children (Linux: from /proc; elsewhere none)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            found.append(int(stat.parent.name))
    return found


def _kill_quietly(os_pid: int | None) -> None:
    if os_pid is None:
        return
    try:
        os.kill(os_pid, signal.SIGKILL)
    except OSError:
        pass  # gone already


class Cluster:
    """One mode's service nodes. `nodes` run the service (in Raft mode: as the members
    of one cluster); `spare` are started nodes that run nothing yet."""

    def __init__(self, lab: Lab, mode: str) -> None:
        self.lab, self.mode = lab, mode
        self.nodes: list[str] = []
        self.spare: list[str] = []
        self.generation = 0  # Raft: each new cluster gets its own data directory
        self._names = 0
        self.election_ms: float | None = None

    def reserve(self, count: int) -> None:
        """Have at least `count` spare nodes (started together: it is faster)."""
        missing = count - len(self.spare)
        if missing > 0:
            names = [f"{self.mode}{self._names + i + 1}" for i in range(missing)]
            self._names += missing
            self.spare += self.lab.start_peers(names)

    def form(self, size: int) -> float:
        """Run the service on exactly `size` live nodes: POC adds nodes to the running ones;
        Raft starts a new cluster (new members, new data) on them. Returns the ms from
        the start of the services to one leader agreed by all (the election)."""
        if self.mode == "raft" and self.nodes:
            for node in self.nodes:
                call_on(node, "stop_service", timeout=20000)
            self.spare = self.nodes + self.spare
            self.nodes = []
        new = size - len(self.nodes)
        self.reserve(new)
        joining, self.spare = self.spare[:new], self.spare[new:]
        self.generation += 1
        members = self.nodes + joining
        data = Path(self.lab.tmp) / f"{self.mode}-{self.generation}"
        t0 = time.monotonic()
        me = erlang.self()
        for node in joining:
            data_dir = str(data / node.split("@")[0])
            erlang.spawn(lambda node=node, d=data_dir: erlang.send(me, ("svc", node, call_on(
                node, "start_service", self.mode, members, d, timeout=20000))))
        for _ in joining:
            msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "svc", 25000)
            if msg is erlang.TIMEOUT or msg[2][0] != "ok":
                raise RuntimeError(f"the service did not start: {msg!r}")
        self.nodes = members
        if self.wait_leader(self.nodes, 15.0) is None:
            raise RuntimeError(f"{self.mode}: no leader agreed by {self.nodes}")
        election = elapsed_ms(t0)
        if self.election_ms is None:
            self.election_ms = election
        return election

    # -- views --------------------------------------------------------------------------

    def wait_leader(self, nodes: list[str], within_s: float) -> tuple[str, Any] | None:
        """(leader's node, leader) once `nodes` agree on one leader among them."""
        return wait_for(lambda: _leader_among(nodes), within_s, step_ms=5)

    def leader(self) -> str:
        found = self.wait_leader(self.nodes, 10.0)
        if found is None:
            raise RuntimeError(f"{self.mode}: no leader agreed by {self.nodes}")
        return found[0]

    def status(self, node: str) -> Any:
        return client.get_status(server(node))

    def own_log(self, node: str) -> list[dict[str, Any]]:
        found = call_on(node, "own_log")
        return found if type(found) is list else []

    def own_count(self, node: str) -> int:
        found = call_on(node, "own_count")
        return found if type(found) is int else -1

    def tree(self, node: str) -> list[tuple[str, Any, str]]:
        """The service's tree on `node`; [] while it cannot be read (it is restarting)."""
        found = call_on(node, "tree")
        return found if type(found) is list else []

    def retire(self) -> None:
        """Stop every node of this cluster (so that it costs the others no CPU)."""
        self.lab.stop_peers(self.nodes + self.spare)
        self.nodes, self.spare = [], []

    def crash(self, node: str) -> float:
        """SIGKILL `node`; it leaves the cluster's nodes. Returns the time of the kill."""
        t0 = time.monotonic()
        self.lab.kill(node)
        self.nodes.remove(node)
        return t0


def _leader_among(nodes: list[str]) -> tuple[str, Any] | None:
    found = on_peer.converged(nodes)
    return found if found is not None and found[0] in nodes else None


# -- a partition with this node on side A ---------------------------------------------------

class Agent:
    """This node's hand on the far side of a partition: `agent(fun, *args)` runs fun(*args)
    in a process on the agent's node, over a localhost socket that no cut touches."""

    def __init__(self, node: str) -> None:
        erlang.spawn(node, on_peer.agent_serve, erlang.self())
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "agent", 10000)
        if msg is erlang.TIMEOUT:
            raise RuntimeError(f"no agent on {node}")
        self.node = node
        self.sock = socket.create_connection(("127.0.0.1", msg[1]), timeout=30)
        self.file = self.sock.makefile("rwb")

    def __call__(self, fun: Any, *args: Any) -> Any:
        self.file.write(on_peer.seal((fun, args)))
        self.file.flush()
        line = self.file.readline()
        if not line:
            raise RuntimeError("the agent is gone")
        outcome, result = on_peer.unseal(line)
        if outcome != "ok":
            raise RuntimeError(f"agent: {result}")
        return result

    def close(self) -> None:
        for closer in (self.file.close, self.sock.close):
            try:
                closer()
            except OSError:
                pass


def _here_or_rpc(node: str, fun: Any, *args: Any) -> Any:
    return fun(*args) if node == erlang.node() else rpc.call(node, fun, list(args), 5000)


def _block(side_a: list[str], side_b: list[str], agent: Agent) -> None:
    for node in side_a:
        _expect(_here_or_rpc(node, net_kernel.block_nodes, side_b), node)
    for node in side_b:
        _expect(agent(on_peer.on, node, net_kernel.block_nodes, side_a), node)


def _expect(result: Any, node: str) -> None:
    if result != "ok":
        raise RuntimeError(f"partition: {node} answered {result!r}")


def cut(side_a: list[str], side_b: list[str], agent: Agent, last: str) -> None:
    """Cut side A (this node among them) from side B, both ways; A's node `last` (the POC
    leader's) only once side B has seen the rest of A go down, so that global's locks on
    side B never wait on a node of A that B still believes up."""
    first = [n for n in side_a if n != last]
    _block(first, side_b, agent)
    for node in side_b:
        if agent(on_peer.on, node, on_peer.nodes_gone, first, 5000) is not True:
            raise RuntimeError(f"partition: {node} still sees {first}")
    _block([last], side_b, agent)


def heal(side_a: list[str], side_b: list[str], agent: Agent) -> None:
    """Undo `cut` and reconnect every pair across it."""
    for node in side_b:
        _expect(agent(on_peer.on, node, net_kernel.unblock_nodes, side_a), node)
    for node in side_a:
        _expect(_here_or_rpc(node, net_kernel.unblock_nodes, side_b), node)
    for node in side_a:
        for other in side_b:
            _here_or_rpc(node, net_kernel.connect_node, other)
