"""`net_kernel`: make a node distributed, connect it, watch other nodes come and go.

`start("n1@127.0.0.1")` turns this OS process's local node into node n1, as `erl -name
n1@127.0.0.1`, with the cookie from $ERLPY_COOKIE or ~/.erlpy.cookie (or pass `cookie=`;
whoever holds it can run any code on the node, as in Erlang): plain threads then talk to it,
and other nodes reach it by name through the host's port mapper (`transport.epmd`), which
the first node on a host starts. `start_node` makes an extra, isolated node in the same OS
process (tests). Times are milliseconds.
"""

from __future__ import annotations

from typing import Any, Literal

from . import _context, _cookie, gen_server
from ._dist import DistConfig
from ._global_server import SERVER, GlobalNameServer
from ._terms import Error, Pid
from .node import Node, existing_default_node, set_default_node

__all__ = [
    "block_nodes", "connect_node", "default_cookie", "disconnect_node", "get_net_ticktime",
    "heal", "monitor_nodes", "partition", "start", "start_node", "stop", "unblock_nodes",
]

NET_KERNEL = "net_kernel"


def default_cookie() -> str:
    """$ERLPY_COOKIE, else ~/.erlpy.cookie (made with a random cookie, mode 0400, if
    missing), as Erlang's ~/.erlang.cookie. A cookie file that another user owns, or that
    group or others can read or write, is refused (`CookieError`, a ValueError)."""
    return _cookie.default_cookie()


def start_node(name: str, cookie: str | None = None, **options: Any) -> Node:
    """A new distributed node in this OS process (not the default one). `options` are
    `DistConfig` fields: listen, advertise, net_ticktime, setup_time, max_frame, epmd,
    epmd_port, seeds, curve."""
    if type(name) is not str or name.count("@") != 1:
        raise Error(("badarg", name))
    cookie = cookie or default_cookie()
    config = DistConfig(cookie=cookie, **options)
    _cookie.check_strength(cookie, name)
    node = Node(name)
    try:
        node.start_distribution(config)
    except BaseException:
        node.stop()  # a failed start leaves no threads, sockets or ZeroMQ context behind
        raise
    with node.bound():
        gen_server.start(("local", SERVER), GlobalNameServer(), None)
        gen_server.start(("local", NET_KERNEL), gen_server.GenServer(), None)
    return node


def start(name: str, cookie: str | None = None, **options: Any,
          ) -> tuple[Literal["ok"], Pid] | tuple[Literal["error"], tuple[str, str]]:
    """net_kernel:start: this OS process's local node becomes `name`. Returns
    ("ok", net_kernel_pid), or ("error", reason) if it is distributed already.

    Unlike Erlang, which renames the running node, this starts a new node and stops the
    old default one ("nonode@nohost"): call it before spawning anything you want to keep."""
    current = existing_default_node()
    if current is not None and current.dist is not None:
        return ("error", ("already_started", current.name))
    node = start_node(name, cookie, **options)
    set_default_node(node)
    if current is not None:
        current.stop()
    kernel = node.whereis(NET_KERNEL)
    assert kernel is not None, "start_node registers net_kernel"
    return ("ok", kernel.pid)


def stop() -> str:
    """Stop the default node's distribution (and the node with it)."""
    current = existing_default_node()
    if current is None or current.dist is None:
        return "not_allowed"
    current.stop()
    set_default_node(None)
    return "ok"


def _dist_node() -> Node:
    return _context.current_node()


def connect_node(name: str) -> bool | str:
    """True once connected to `name` (and, through it, to its cluster); False if it cannot
    be reached; "ignored" if this node is not distributed."""
    node = _dist_node()
    if node.dist is None:
        return "ignored"
    return node.dist.connect_wait(name)


def disconnect_node(name: str) -> bool:
    node = _dist_node()
    return node.dist is not None and node.dist.disconnect(name)


def monitor_nodes(flag: bool) -> str:
    """The caller gets ("nodeup", node) and ("nodedown", node) for every node that
    connects or goes. Each True adds one subscription; False removes one."""
    proc = _context.self_process()
    proc.node.remote.monitor_nodes(proc.pid, flag)
    return "ok"


def get_net_ticktime() -> int:
    """Milliseconds of silence after which a peer is taken for down."""
    node = _dist_node()
    return node.dist.config.net_ticktime if node.dist is not None else 0


def block_nodes(names: list[str]) -> str:
    """Partition injection on this node: drop every frame to and from `names` (heartbeats
    too, so each side sees the other go down after net_ticktime). Undo with `unblock_nodes`."""
    node = _dist_node()
    if node.dist is None:
        raise Error("not_distributed")
    node.dist.block(list(names))
    return "ok"


def unblock_nodes(names: list[str] | None = None) -> str:
    node = _dist_node()
    if node.dist is not None:
        node.dist.unblock(None if names is None else list(names))
    return "ok"


def partition(side_a: list[str], side_b: list[str], timeout: int = 5000) -> str:
    """Cut every link between the nodes of `side_a` and those of `side_b`, both ways, by
    dropping their frames at the transport (as ra's inet_tcp_proxy). Run it from a node
    connected to all of them (a test's controller); that node may be on a side itself:
    then the far side's nodes are told to cut the others, and the controller cuts them
    itself, last. Each side then sees the other go down after net_ticktime. Undo with
    `heal`."""
    return _on_sides(side_a, side_b, block_nodes, timeout, me_last=True)


def heal(side_a: list[str], side_b: list[str], timeout: int = 5000) -> str:
    """Undo `partition` and reconnect the two sides (the mesh does the rest)."""
    _on_sides(side_a, side_b, unblock_nodes, timeout, me_last=False)
    from . import rpc

    for node in side_a:
        for other in side_b:
            rpc.call(node, connect_node, [other], timeout)
    return "ok"


def _on_sides(side_a: list[str], side_b: list[str], fun: Any, timeout: int,
              me_last: bool) -> str:
    """fun(other side) on every node. A node never acts on the controller itself (its
    rpc answer would be cut); the controller, when on a side, acts on the whole other
    side: last when cutting, first when healing, so it reaches every node meanwhile."""
    from . import rpc

    me = _dist_node().name
    order = sorted([(n, side_b) for n in side_a] + [(n, side_a) for n in side_b],
                   key=lambda item: (item[0] == me) == me_last)
    for node, others in order:
        if node == me:
            result = fun(list(others))
        else:
            result = rpc.call(node, fun, [[o for o in others if o != me]], timeout)
        if result != "ok":
            raise Error(("partition_failed", node, result))
    return "ok"
