"""`global_`: names that hold across the cluster, as OTP's `global` (trailing underscore
because `global` is a Python keyword).

On a distributed node (see `net_kernel`), every node runs a `global_name_server` with a
replica of the table, and changes take a cluster-wide lock on the name (see
`_global_server`). On a node that is not distributed, the cluster is that node alone.
Return shapes are OTP's: "yes" | "no", "ok", pid | "undefined".
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from . import _context, _gen, erlang, gen_server, timer
from ._global_server import SERVER
from ._terms import Error, Exit, Pid

__all__ = [
    "notify_all_name", "random_exit_name", "random_notify_name", "re_register_name",
    "register_name", "registered_names", "send", "unregister_name", "whereis_name",
]

log = logging.getLogger("actors.global")

Resolve = Callable[[Any, Pid, Pid], Any]
_LOCK_ATTEMPTS = 200


def register_name(name: Any, pid: Pid, resolve: Resolve | None = None) -> str:
    """"yes" if `name` now refers to `pid` on every node; "no" if the name is taken.

    `resolve(name, pid1, pid2)` picks the survivor if a healed partition finds the name
    on both sides (default `random_exit_name`)."""
    if type(pid) is not Pid:
        raise Error("badarg")
    node = _context.current_node()
    if node.dist is None:
        return "yes" if node.register_global(name, pid) else "no"

    def register(holders: list[Pid]) -> tuple[str, Any]:
        if holders or (pid.node == node.name and node.lookup(pid) is None):
            return "no", None
        return "yes", ("register", name, pid, _method(resolve))

    return _with_lock(name, register)


def re_register_name(name: Any, pid: Pid, resolve: Resolve | None = None) -> str:
    """Register `name` for `pid` whether or not it is taken. Returns "yes"."""
    if type(pid) is not Pid:
        raise Error("badarg")
    node = _context.current_node()
    if node.dist is None:
        node.unregister_global(name)
        node.register_global(name, pid)
        return "yes"

    return _with_lock(name, lambda _: ("yes", ("register", name, pid, _method(resolve))))


def unregister_name(name: Any) -> str:
    node = _context.current_node()
    if node.dist is None:
        node.unregister_global(name)
        return "ok"
    return _with_lock(name, lambda _: ("ok", ("unregister", name)))


def whereis_name(name: Any) -> Pid | str:
    """The pid registered under `name` anywhere in the cluster, or "undefined"."""
    found = _context.current_node().locate(("global", name))
    if found is None:
        return "undefined"
    if type(found) is Pid:
        return found
    return found.pid if found.alive else "undefined"  # type: ignore[union-attr]


def registered_names() -> list[Any]:
    return _context.current_node().global_names()


def send(name: Any, msg: Any) -> Pid:
    """Send to the process registered as `name`; exit ("badarg", (name, msg)) if none."""
    pid = whereis_name(name)
    if type(pid) is not Pid:
        raise Exit(("badarg", (name, msg)))
    erlang.send(pid, msg)
    return pid


# -- the resolve methods OTP offers -----------------------------------------------------------

def random_exit_name(name: Any, pid1: Pid, pid2: Pid) -> Pid:
    """Keep one of the two at random; kill the other."""
    keep, lose = random.sample([pid1, pid2], 2)
    log.info("global: name conflict for %r: terminating %r", name, lose)
    erlang.exit(lose, "kill")
    return keep


def random_notify_name(name: Any, pid1: Pid, pid2: Pid) -> Pid:
    """Keep one at random; the other gets ("global_name_conflict", name)."""
    keep, lose = random.sample([pid1, pid2], 2)
    erlang.send(lose, ("global_name_conflict", name))
    return keep


def notify_all_name(name: Any, pid1: Pid, pid2: Pid) -> str:
    """Unregister the name; both get ("global_name_conflict", name, other_pid)."""
    erlang.send(pid1, ("global_name_conflict", name, pid2))
    erlang.send(pid2, ("global_name_conflict", name, pid1))
    return "none"


# -- the cluster-wide lock --------------------------------------------------------------------

def _method(resolve: Resolve | None) -> Any:
    """What the table stores: our own methods by name (no pickled function on the wire)."""
    if resolve is None:
        return "random_exit_name"
    if resolve in (random_exit_name, random_notify_name, notify_all_name):
        return resolve.__name__
    return resolve


def _servers() -> list[tuple[str, str]]:
    node = _context.current_node()
    return [(SERVER, n) for n in [node.name, *node.nodes()]]


def _ask(servers: list[tuple[str, str]], request: Any) -> list[Any]:
    """Call every server at once; a server that is gone answers None. The remote ones are
    asked first; this node's own server is called while their answers travel, with no
    timeout as OTP calls its own global_name_server (so an idle server's handler runs on
    this thread, and no thread is woken for it)."""
    here = _context.current_node().name
    pending = {i: _gen.collected_request(server, request)
               for i, server in enumerate(servers) if server[1] != here}
    answers: list[Any] = [None] * len(servers)
    for i, server in enumerate(servers):
        if server[1] == here:
            try:
                answers[i] = gen_server.call(server, request, "infinity")
            except Exit:
                answers[i] = None
    for i, req in pending.items():
        answer = gen_server.receive_response(req, 5000)
        answers[i] = answer[1] if type(answer) is tuple and answer[0] == "reply" else None
    return answers


def _with_lock(name: Any, decide: Callable[[list[Pid]], tuple[str, Any]]) -> str:
    """Take `name`'s lock on every node (one round trip), let `decide(current holders)` give
    (result, change), then apply the change and release the lock on every node in one
    message each (a second round trip). As OTP's global, every node has the change before
    we return: any node's whereis_name agrees with our answer."""
    lock_id = erlang.make_ref()
    me = erlang.self()
    for attempt in range(_LOCK_ATTEMPTS):
        servers = _servers()
        answers = _ask(servers, ("lock", name, lock_id, me))
        if all(a is None or a[0] == "granted" for a in answers):
            holders = [a[1] for a in answers if a is not None and a[1] is not None]
            result, change = decide(holders)
            asked = tuple(server[1] for server in servers)
            _ask(servers, ("apply_unlock", change, name, lock_id, asked))
            return result
        for server in servers:
            gen_server.cast(server, ("unlock", name, lock_id))
        timer.sleep(random.randint(0, min(2 + 2 * attempt, 50)))
    raise Exit(("global_lock_failed", name))
