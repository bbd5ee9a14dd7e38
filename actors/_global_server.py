"""The global name server: one per distributed node, each holding a replica of the table.

Rules of this module:
- Every node's server holds the whole table `name -> (pid, method)` and mirrors it into
  its node (`Node.set_global`), so `whereis_name` and sends to ("global", name) are local.
- Changes go through a per-name lock held on every node (`global_._with_lock`), so two
  nodes racing for one name cannot both win: a lock is granted to one holder at a time,
  and a refused client releases what it got and retries after a random pause.
- A server monitors every registered pid and every lock holder: a name is freed when its
  process dies or its node goes down (DOWN noconnection), and so is a lock.
- When two nodes meet (nodeup), each sends the other the names of its own processes. A
  clash is resolved by one node only, the smaller of the two pids' nodes, with the
  method the name was registered with; it then tells every node the outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from . import _context, erlang, gen_server
from ._terms import Pid, Ref

SERVER = "global_name_server"

log = logging.getLogger("actors.global")


class GlobalNameServer(gen_server.GenServer):
    """State: {"names": {name: (pid, method, mref)}, "locks": {name: (lock_id, mref)}}."""

    def init(self, args: Any) -> Any:
        from . import net_kernel

        net_kernel.monitor_nodes(True)
        return ("ok", {"names": {}, "locks": {}})

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        names, locks = state["names"], state["locks"]
        match request:
            case ("lock", name, lock_id, holder):
                held = locks.get(name)
                if held is not None and held[0] != lock_id:
                    return ("reply", ("busy",), state)
                if held is None:
                    locks[name] = (lock_id, erlang.monitor("process", holder))
                current = names.get(name)
                return ("reply", ("granted", current[0] if current else None), state)
            case ("register", name, pid, method):
                self._set(state, name, pid, method)
                return ("reply", "ok", state)
            case ("unregister", name):
                self._set(state, name, None, None)
                return ("reply", "ok", state)
        return ("reply", ("error", "bad_request"), state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        match msg:
            case ("unlock", name, lock_id):
                held = state["locks"].get(name)
                if held is not None and held[0] == lock_id:
                    erlang.demonitor(held[1], ["flush"])
                    del state["locks"][name]
            case ("sync", list(entries)):
                for name, pid, method in entries:
                    self._merge(state, name, pid, method)
            case ("resolved", name, pid, method):
                self._set(state, name, pid, method)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        match msg:
            case ("DOWN", Ref() as ref, "process", _, _):
                self._forget_ref(state, ref)
            case ("nodeup", node):
                mine = [(name, pid, method) for name, (pid, method, _) in state["names"].items()
                        if pid.node == erlang.node()]
                gen_server.cast((SERVER, node), ("sync", mine))
            case ("nodedown", _):
                pass
        return ("noreply", state)

    # -- the table ------------------------------------------------------------------------

    def _set(self, state: Any, name: Any, pid: Pid | None, method: Any) -> None:
        names = state["names"]
        old = names.pop(name, None)
        if old is not None:
            erlang.demonitor(old[2], ["flush"])
        if pid is not None:
            names[name] = (pid, method, erlang.monitor("process", pid))
        _context.current_node().set_global(name, pid)

    def _forget_ref(self, state: Any, ref: Ref) -> None:
        for name, (_, _, mref) in list(state["names"].items()):
            if mref == ref:
                del state["names"][name]
                _context.current_node().set_global(name, None)
        for name, (_, mref) in list(state["locks"].items()):
            if mref == ref:
                del state["locks"][name]

    def _merge(self, state: Any, name: Any, pid: Pid, method: Any) -> None:
        current = state["names"].get(name)
        if current is None:
            self._set(state, name, pid, method)
            return
        mine = current[0]
        if mine == pid or erlang.node() != min(mine.node, pid.node):
            return  # the same, or another node resolves this clash
        winner = _resolve(current[1], name, mine, pid)
        if winner not in (mine, pid):
            winner = None
        self._set(state, name, winner, current[1])
        for node in erlang.nodes():
            gen_server.cast((SERVER, node), ("resolved", name, winner, current[1]))


def _resolve(method: Any, name: Any, pid1: Pid, pid2: Pid) -> Any:
    from . import global_

    fun = getattr(global_, method) if type(method) is str else method
    try:
        return fun(name, pid1, pid2)
    except Exception as exc:
        log.error("global: the resolve function for %r failed: %r", name, exc)
        return "none"
