"""A local cluster for `erlmcp serve`: node OS processes, a private port mapper, data.

Rules of this module:
- `LocalCluster.start()` makes this OS process a distributed node (the front end) with a
  private port mapper on an ephemeral port (ERLPY_EPMD_PORT, inherited by the peers) and
  a random cookie, starts `size` peers with `actors.peer` (which halt when this process
  dies: their stdin closes), starts the service on each (`start_service`, by rpc), and
  waits until every node names the same leader.
- Data: Raft mode's logs live under `data_dir`, default a fresh directory under the
  user's data directory ($XDG_DATA_HOME/erlmcp, else ~/.local/share/erlmcp, else the temp
  directory). A default directory is removed by `stop()`; a given one is kept, and since
  the nodes' names are fixed (erlmcp1..N), a later `serve` with it restarts from its logs.
- `stop()` undoes everything and never raises. The peers' output never reaches our stdout
  (it may be the MCP stdio channel).
- `tools` is "module:attr" naming a `Tools` registry (or a function returning one); every
  node imports it, so its module must be importable there (PYTHONPATH is passed on).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors import Pid, erlang, net_kernel, peer, rpc
from actors.consensus import app, client
from actors.consensus.tools import Tools
from transport import epmd

from .frontend import leader_node

__all__ = ["DEFAULT_TOOLS", "LocalCluster", "load_tools", "start_service"]

DEFAULT_TOOLS = "actors.consensus.tools:default_tools"
BOOT_MS = 30000
LEADER_S = 20.0  # how long start() waits for the nodes to agree on a leader
_HERE = "actors.consensus.mcp.cluster"


def load_tools(spec: str) -> Tools:
    """The registry named by "module:attr" (a Tools, or a function returning one)."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"--tools wants module:attr, not {spec!r}")
    found = getattr(importlib.import_module(module), attr)
    tools = found() if callable(found) and not isinstance(found, Tools) else found
    if not isinstance(tools, Tools):
        raise TypeError(f"{spec} is not a Tools registry (nor a function returning one)")
    return tools


def start_service(mode: str, nodes: list[str], data_dir: str | None, tools: str,
                  options: dict[str, Any]) -> Any:
    """(on a peer, by rpc) Start erlmcp here with the named tools."""
    registry = load_tools(tools)
    if mode == "raft":
        return app.start("raft", registry, nodes=nodes, data_dir=data_dir, **options)
    return app.start("poc", registry, **options)


def user_data_dir() -> Path:
    """Where `serve` keeps Raft data by default (see the module doc)."""
    for base in (os.environ.get("XDG_DATA_HOME"), str(Path.home() / ".local" / "share")):
        if base:
            path = Path(base) / "erlmcp"
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(path, os.W_OK):
                return path
    return Path(tempfile.gettempdir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    mode: str = "raft"
    size: int = 3
    tools: str = DEFAULT_TOOLS
    data_dir: str | None = None
    log_level: str = "ERROR"
    service_options: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    os_pids: dict[str, int] = field(default_factory=dict)
    cookie: str = ""
    _peers: dict[str, Pid] = field(default_factory=dict)
    _port: int = 0
    _own_dir: bool = False
    _started_node: bool = False

    def start(self) -> list[str]:
        """Start the peers and the service on them: the nodes' names."""
        if self.mode not in app.MODES:
            raise ValueError(f"mode is one of {app.MODES}, not {self.mode!r}")
        if not 1 <= self.size <= 15:
            raise ValueError(f"nodes: 1..15, not {self.size}")
        load_tools(self.tools)  # a bad --tools fails here, before any node starts
        if self.data_dir is None:
            self.data_dir = tempfile.mkdtemp(prefix="run-", dir=user_data_dir())
            self._own_dir = True
        self._port = _free_port()
        os.environ[epmd.PORT_ENV] = str(self._port)
        self.cookie = secrets.token_hex(16)
        result = net_kernel.start(f"erlmcp-front-{secrets.token_hex(3)}@127.0.0.1",
                                  cookie=self.cookie)
        if result[0] != "ok":
            raise RuntimeError(f"net_kernel.start: {result!r}")
        self._started_node = True
        self.nodes = self._start_peers([f"erlmcp{i}" for i in range(1, self.size + 1)])
        self._start_services()
        if self._wait_leader(LEADER_S) is None:
            raise RuntimeError(f"no leader agreed by {self.nodes} within {LEADER_S} s")
        return self.nodes

    def _wait_leader(self, within_s: float) -> str | None:
        """The leader's node once every node's server names the same one (bounded)."""
        deadline = time.monotonic() + within_s
        while True:
            leaders = {leader_node(client.get_status((client.SERVER_NAME, n), 1000))
                       for n in self.nodes}
            if len(leaders) == 1 and None not in leaders:
                return leaders.pop()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def _start_peers(self, names: list[str]) -> list[str]:
        path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
        results: dict[str, Any] = {}

        def boot(name: str) -> None:
            results[name] = peer.start(name, args=["--log-level", self.log_level],
                                       env={"PYTHONPATH": path}, wait_boot=BOOT_MS)

        threads = [threading.Thread(target=boot, args=(n,), daemon=True) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BOOT_MS / 1000 + 15)
        for name in names:
            result = results.get(name)
            if result is not None and result[0] == "ok":
                self._peers[result[2]] = result[1]
                self.os_pids[result[2]] = peer.os_pid(result[1])
        failed = [n for n in names if results.get(n, ("error",))[0] != "ok"]
        if failed:
            raise RuntimeError(f"nodes did not start: {failed} ({results!r})")
        return [results[n][2] for n in names]

    def _start_services(self) -> None:
        answers: dict[str, Any] = {}

        def start(node: str) -> None:
            data = str(Path(self.data_dir or ".") / node.split("@")[0])
            answers[node] = rpc.call(node, _HERE, "start_service",
                                      [self.mode, self.nodes, data, self.tools,
                                       self.service_options], 30000)

        threads = [threading.Thread(target=start, args=(n,), daemon=True) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        bad = {n: a for n, a in answers.items() if type(a) is not tuple or a[0] != "ok"}
        if bad or len(answers) != len(self.nodes):
            raise RuntimeError(f"the service did not start: {bad or answers!r}")

    def kill(self, node: str) -> None:
        """SIGKILL the node's OS process (tests)."""
        peer.kill(self._peers[node])

    def stop(self) -> None:
        """Stop the peers, this node, the port mapper; remove a default data dir."""
        for node, pid in list(self._peers.items()):
            with contextlib.suppress(BaseException):
                peer.stop(pid)
            with contextlib.suppress(OSError):
                os.kill(self.os_pids[node], 9)
            self._peers.pop(node, None)
        if self._started_node:
            with contextlib.suppress(BaseException):
                net_kernel.stop()
            self._started_node = False
        if self._port:
            with contextlib.suppress(BaseException):
                epmd.stop(self._port)
            self._port = 0
        if self._own_dir and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._own_dir = False


def join(node: str, cookie: str) -> list[str]:
    """Make this OS process a node of `node`'s cluster: the nodes that run the service."""
    result = net_kernel.start(f"erlmcp-front-{secrets.token_hex(3)}@127.0.0.1", cookie=cookie)
    if result[0] != "ok":
        raise RuntimeError(f"net_kernel.start: {result!r}")
    if not net_kernel.connect_node(node):
        raise RuntimeError(f"cannot reach {node} (cookie? ERLPY_EPMD_PORT?)")
    others = rpc.call(node, "actors.erlang", "nodes", [], 5000)
    candidates = [node] + [n for n in (others if type(others) is list else [])
                           if n != node and n != erlang.node()]
    return [n for n in candidates
            if type(rpc.call(n, "actors.erlang", "whereis", ["erlmcp_consensus"], 5000)) is Pid]
