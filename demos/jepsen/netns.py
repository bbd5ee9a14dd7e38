"""Real network partitions: each node in its own Linux network namespace, all on one bridge.

    net = NetnsNetwork(5)
    net.create()                                        # NetnsUnavailable: not root, no `ip`...
    ctl = net.controller_host()
    net_kernel.start(f"ctl@{ctl}", listen=f"tcp://{ctl}:0", epmd=False)
    ok, peer_pid, node = net.start_node(i)              # n<i+1>@<net.host(i)>, in namespace i
    net.cut([0], [1, 2]); ...; net.heal(); reconnect(net.nodes())
    peer.kill(peer_pid); peer.stop(peer_pid); net.start_node(i)    # a crash, then a restart
    net.delete()

The bridge lives in the root namespace and holds the controller's address, so the controller
(this process) reaches every node whatever the cut. A cut is a blackhole route, in each
namespace of one side, to each node of the other side: packets between the sides are dropped
where they are sent, both ways, with no reset and no error reaching the peer (existing TCP
connections just go silent). Nodes run without the port mapper (it is on 127.0.0.1 of the
root namespace): each dials the controller at boot, knows where the others listen, and
joins the rest of the mesh through the controller. After `heal` nobody redials a peer it
lost: `reconnect` does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import zlib
from typing import Any

from actors import _context, net_kernel, peer, rpc

__all__ = ["NetnsNetwork", "NetnsUnavailable", "reconnect"]

PREFIX = "10.203"  # subnets 10.203.<1..250>.0/24: the bridge is .1, node i is .(i + 2)
PORT = 21000  # node i listens on PORT + i (each in its own namespace)
MAX_SIZE = 200
_IP_TIMEOUT_S = 10.0


class NetnsUnavailable(Exception):
    """Network namespaces cannot be made here; the message says why."""


class NetnsNetwork:
    """`size` network namespaces on one Linux bridge in the root namespace; the controller
    (this process, root namespace) reaches every node through the bridge whatever the cut.

    Names hold `tag` (default: this process's pid), so concurrent runs do not meet. Addresses
    (`host`, `controller_host`) are known once `create` has picked a free subnet."""

    def __init__(self, size: int, tag: str | None = None, *, prefix: str = "n") -> None:
        tag = str(os.getpid()) if tag is None else tag
        if not 1 <= size <= MAX_SIZE:
            raise ValueError(f"size must be 1..{MAX_SIZE}, got {size}")
        if not re.fullmatch(r"[a-z0-9]{1,9}", tag):
            raise ValueError(f"tag must be 1-9 of [a-z0-9] (it goes in link names), got {tag!r}")
        self.size, self.tag, self.prefix = size, tag, prefix
        self.bridge = f"ejb{tag}"
        self._octet: int | None = None
        self._made: list[tuple[str, str]] = []  # ("netns" | "link", name), in creation order
        self._created = False

    # -- names and addresses ------------------------------------------------------------------

    def namespace(self, i: int) -> str:
        return f"erlpy-j{self.tag}-{self._index(i)}"

    def _veth(self, i: int) -> str:
        """Node i's veth end in the root namespace (its other end is eth0 in namespace i)."""
        return f"ej{self.tag}v{i}"

    def _subnet(self) -> str:
        if self._octet is None:
            raise RuntimeError("the network is not created: call create() first")
        return f"{PREFIX}.{self._octet}"

    def controller_host(self) -> str:
        """The bridge's IP, in the root namespace: the controller node listens there."""
        return f"{self._subnet()}.1"

    def host(self, i: int) -> str:
        """Node i's IP (in namespace i)."""
        return f"{self._subnet()}.{self._index(i) + 2}"

    def address(self, i: int) -> str:
        """Where node i listens."""
        return f"tcp://{self.host(i)}:{PORT + i}"

    def short_name(self, i: int) -> str:
        return f"{self.prefix}{self._index(i) + 1}"

    def node(self, i: int) -> str:
        """Node i's name: short_name(i)@host(i)."""
        return f"{self.short_name(i)}@{self.host(i)}"

    def nodes(self) -> list[str]:
        return [self.node(i) for i in range(self.size)]

    def _index(self, i: int) -> int:
        if type(i) is not int or not 0 <= i < self.size:
            raise ValueError(f"no node {i!r} in a network of {self.size}")
        return i

    # -- making and unmaking ------------------------------------------------------------------

    def create(self) -> None:
        """Make the bridge (with the controller's address) and a namespace per node, joined to
        it by a veth pair. Does nothing if created already. Raises NetnsUnavailable (having
        removed whatever it made) if it cannot."""
        if self._created:
            return
        if not sys.platform.startswith("linux"):
            raise NetnsUnavailable(f"network namespaces need Linux, not {sys.platform}")
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (euid 0)")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("iproute2's `ip` is not on PATH")
        try:
            self._make()
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            self.delete()
            raise NetnsUnavailable(f"cannot make the namespaces: {exc}") from None
        self._created = True

    def _make(self) -> None:
        namespaces = [self.namespace(i) for i in range(self.size)]
        links = [self.bridge, *(self._veth(i) for i in range(self.size))]
        present = set(_ip("netns", "list").stdout.split()) | {
            line.split(":")[1].strip().split("@")[0]
            for line in _ip("-o", "link", "show").stdout.splitlines()}
        taken = [name for name in (*namespaces, *links) if name in present]
        if taken:  # so that all we make below, and delete() removes, is ours
            raise RuntimeError(f"{', '.join(taken)} exist(s) already: another run with tag "
                               f"{self.tag!r}, or its leftovers (`ip netns del`, `ip link del`)")
        self._octet = _free_octet(zlib.crc32(self.tag.encode()) % 250)
        root = [f"link add {self.bridge} type bridge",
                f"addr add {self.controller_host()}/24 dev {self.bridge}",
                f"link set {self.bridge} up"]
        self._made.append(("link", self.bridge))
        for i in range(self.size):
            self._made.append(("netns", self.namespace(i)))
            _ip("netns", "add", self.namespace(i))
            self._made.append(("link", self._veth(i)))
            root += [f"link add {self._veth(i)} type veth peer name eth0 netns {self.namespace(i)}",
                     f"link set {self._veth(i)} master {self.bridge} up"]
        _batch({None: root})
        _batch({i: ["link set lo up", f"addr add {self.host(i)}/24 dev eth0", "link set eth0 up"]
                for i in range(self.size)}, self.namespace)

    def delete(self) -> None:
        """Remove everything `create` made, even half-way: SIGKILL any process still in the
        namespaces (else they would keep them alive), then the namespaces, veths and bridge
        (its address and route go with it). Never raises."""
        made, self._made, self._created = self._made, [], False
        for kind, name in made:
            if kind == "netns":
                _kill_all_in(name)
        for kind, name in reversed(made):
            try:
                if kind == "netns":
                    _ip("netns", "del", name, check=False)
                else:
                    _ip("link", "del", name, check=False)  # gone with its namespace: no matter
            except (OSError, subprocess.SubprocessError):
                pass

    # -- the nemesis --------------------------------------------------------------------------

    def cut(self, side_a: list[int], side_b: list[int]) -> None:
        """Drop all traffic between the nodes of `side_a` and those of `side_b`, both ways
        (the controller's links stay). Adds to any cut in place; one `ip` per node touched,
        run in parallel."""
        a, b = {self._index(i) for i in side_a}, {self._index(i) for i in side_b}
        if a & b:
            raise ValueError(f"a node cannot be on both sides: {sorted(a & b)}")
        routes: dict[int, list[str]] = {}
        for mine, theirs in ((a, b), (b, a)):
            for i in mine:
                routes[i] = [f"route replace blackhole {self.host(j)}/32" for j in sorted(theirs)]
        _batch(routes, self.namespace)

    def heal(self) -> None:
        """Undo every cut (remove every blackhole route), in parallel over the namespaces."""
        self._subnet()  # raises if not created
        _batch({i: ["route flush type blackhole"] for i in range(self.size)}, self.namespace)

    # -- starting nodes -----------------------------------------------------------------------

    def peer_options(self, i: int, args: list[str] | None = None) -> dict[str, Any]:
        """`peer.start` options (host, exec_prefix, args) that run node i in namespace i,
        listening on address(i), with no port mapper: it dials the calling (controller) node
        at boot and knows where every other node listens. `args` are added."""
        ctl = _context.current_node()
        if ctl.dist is None:
            raise RuntimeError("the controller must be distributed (net_kernel.start)")
        known = [arg for j in range(self.size) if j != i
                 for arg in ("--address", f"{self.node(j)}={self.address(j)}")]
        return {"host": self.host(i), "exec_prefix": ["ip", "netns", "exec", self.namespace(i)],
                "args": ["--listen", self.address(i), "--no-epmd",
                         "--seed", f"{ctl.name}={ctl.dist.address}", *known, *(args or [])]}

    def start_node(self, i: int, *, args: list[str] | None = None, **options: Any) -> Any:
        """peer.start node(i) in namespace i (again, after a crash: same name and address).
        `options` go to peer.start (env, wait_boot, link, ...). Returns what it returns:
        ("ok", peer_pid, node) or ("error", reason). peer.os_pid(peer_pid) is the node's
        own OS pid (`ip netns exec` execs it), so peer.kill reaches the node."""
        return peer.start(self.short_name(i), **self.peer_options(i, args), **options)


def reconnect(nodes: list[str], timeout: int = 5000) -> list[tuple[str, str]]:
    """Have each of `nodes` connect to every later one (after `heal`: a node does not redial
    a peer it lost), by rpc from the calling node. Returns the pairs still not connected."""
    failed = []
    for k, node in enumerate(nodes):
        for other in nodes[k + 1:]:
            if rpc.call(node, net_kernel.connect_node, [other], timeout) is not True:
                failed.append((node, other))
    return failed


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip args`; with `check`, a failure raises RuntimeError with ip's message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT_S)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


def _batch(commands: dict[Any, list[str]], namespace: Any = None) -> None:
    """`ip -batch` each list of commands, in namespace(key) (the root one for key None), all
    at once. Raises RuntimeError naming every batch that failed."""
    procs = []
    for key, lines in commands.items():
        where = [] if key is None else ["-n", namespace(key)]
        procs.append((where, subprocess.Popen(
            ["ip", *where, "-batch", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True), "\n".join(lines) + "\n"))
    errors = []
    for where, proc, text in procs:
        try:
            _, err = proc.communicate(text, timeout=_IP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"ip {' '.join(where)} -batch: {err.strip() or proc.returncode}")
    if errors:
        raise RuntimeError("; ".join(errors))


def _free_octet(start: int) -> int:
    """The first n in 1..250, from start + 1 round, with no address or route in 10.203.n.*
    in the root namespace (another run's bridge, or anything else)."""
    used = _ip("-4", "-o", "addr", "show").stdout + _ip("-4", "route", "show", "table",
                                                          "all").stdout
    for k in range(250):
        n = (start + k) % 250 + 1
        if not re.search(rf"\b{re.escape(PREFIX)}\.{n}\.", used):
            return n
    raise RuntimeError(f"no free {PREFIX}.n.0/24 subnet")


def _kill_all_in(namespace: str) -> None:
    try:
        out = _ip("netns", "pids", namespace, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
