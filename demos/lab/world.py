"""The lab's world (`Lab`): this OS process as a distributed node, its peers, and the
helpers every product shares for driving them (`call_on`, `wait_for`, `free_port`, ...).

The Lab makes this OS process a distributed node with a private port mapper (on an
ephemeral port, through ERLPY_EPMD_PORT, which the peers inherit) and a random cookie,
keeps the nodes' data under one temporary directory, and undoes all of it in `close()`:
peers stopped (killed if need be), the node stopped, the port mapper stopped, the
directory removed. Peers halt by themselves if this process dies (their stdin closes).
The demo (`demos.story`), the Jepsen harness (`demos.jepsen`), the benchmarks
(`demos.bench`) and the tests use it; nothing here knows any of them.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from actors import Pid, erlang, net_kernel, peer, rpc
from actors.consensus import client
from transport import epmd

NODE_MODULE = "demos.lab.node"
ROOT = str(Path(__file__).resolve().parents[2])  # the repository: peers import demos.*
BOOT_MS = 20000


def peer_pythonpath() -> str:
    """PYTHONPATH for a peer OS process: the repository first, then this process's own."""
    return os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)


def server(node: str) -> tuple[str, str]:
    return (client.SERVER_NAME, node)


def call_on(node: str, function: str, *args: Any, timeout: int = 5000) -> Any:
    """demos.lab.node.function(*args) on `node`."""
    return rpc.call(node, NODE_MODULE, function, list(args), timeout)


def leader_views(nodes: list[str]) -> str:
    """Each node's consensus server status, global leader name and connections, one line
    each: what a failure to agree on a leader says about the cluster."""
    from actors import global_

    lines = []
    for node in nodes:
        try:
            where = rpc.call(node, global_.whereis_name, [client.LEADER_NAME], 2000)
            lines.append(f"  {node}: {client.get_status(server(node))!r}; whereis {where!r}; "
                         f"nodes {rpc.call(node, erlang.nodes, [], 2000)!r}")
        except Exception as exc:  # a failure's message must not fail itself
            lines.append(f"  {node}: {exc!r}")
    return "\n".join(lines)


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral
    range: a port from that range (what binding port 0 gives) can be taken meanwhile as
    the local end of any outgoing connection, and the server that wanted it fails to bind."""
    high = _ephemeral_low()
    low = max(1024, high - 12_000)
    rng = random.SystemRandom()
    for _ in range(200 if high - low >= 1000 else 0):
        port = rng.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # the range below is crowded: take what the kernel gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def accepts(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:`port` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def private_node(name: str, cookie: str) -> Iterator[int]:
    """This process as the distributed node `name`, with a private port mapper on a free
    port (through ERLPY_EPMD_PORT, which peers started inside inherit), so that no other
    node meets it: yields the port. On exit the node and the port mapper stop and
    ERLPY_EPMD_PORT and ERLPY_COOKIE are restored. (The benchmarks' world; `Lab` is the
    long-lived one, with peers and a data directory.)"""
    saved = {k: os.environ.get(k) for k in (epmd.PORT_ENV, "ERLPY_COOKIE")}
    port = free_port()
    os.environ[epmd.PORT_ENV] = str(port)
    try:
        net_kernel.start(name, cookie=cookie)
        yield port
    finally:
        with contextlib.suppress(Exception):
            net_kernel.stop()
        with contextlib.suppress(Exception):
            epmd.stop(port, force=True)
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class Lab:
    """The lab's world. `open()` then `close()` (always: see `demos.story.main`)."""

    def __init__(self, peer_log_level: str = "CRITICAL") -> None:
        self.peer_log_level = peer_log_level
        self.port = 0
        self.tmp = ""
        self.node = ""
        self.peers: dict[str, Pid] = {}  # node -> peer controller
        self.os_pids: dict[str, int] = {}

    def open(self) -> None:
        self.port = free_port()
        cookie = secrets.token_hex(16)
        os.environ[epmd.PORT_ENV] = str(self.port)
        os.environ["ERLPY_COOKIE"] = cookie
        self.tmp = tempfile.mkdtemp(prefix="erlpy-demo-")
        self.node = f"demo-{secrets.token_hex(3)}@127.0.0.1"
        result = net_kernel.start(self.node, cookie=cookie)
        if result[0] != "ok":
            raise RuntimeError(f"net_kernel.start: {result!r}")

    def start_peers(self, names: list[str]) -> list[str]:
        """Start a node per name, in parallel, in new OS processes, each with the lab's
        node module loaded (so that nothing timed later pays for the import): their names."""
        me = erlang.self()
        env = {"PYTHONPATH": peer_pythonpath()}
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
        for os_pid in children_of(os.getpid()):
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


def children_of(pid: int) -> list[int]:
    """The OS pids of `pid`'s children (Linux: from /proc; elsewhere none)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_quietly(os_pid: int | None) -> None:
    if os_pid is None:
        return
    try:
        os.kill(os_pid, signal.SIGKILL)
    except OSError:
        pass  # gone already
