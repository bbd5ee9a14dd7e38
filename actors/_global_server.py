"""The global name server: one per distributed node, each holding a replica of the table.

Rules of this module:
- Every node's server holds the whole table `name -> (pid, method)` and mirrors it into
  its node (`Node.set_global`), so `whereis_name` and sends to ("global", name) are local.
- Changes go through a per-name lock held on every node (`global_._with_lock`), so two
  nodes racing for one name cannot both win: a lock is granted to one holder at a time,
  and a refused client releases what it got and retries after a random pause.
- A server monitors every registered pid: a name is freed when its process dies or its
  node goes down (DOWN noconnection). A lock is held for one round trip; if its holder
  dies mid-change it lapses after LOCK_LEASE_MS (monitoring every holder would cost two
  more messages per registration).
- A change is passed on by every node that applies it to the nodes it is connected to that
  the changer did not ask: one that connected while the name's lock was held got this
  node's table from before the change, and would otherwise never learn it. (OTP's global
  keeps this promise by locking its name exchange; a node's server handles its nodeup and
  the change in some order, and either order gets the change to the new node.)
- When two nodes meet (nodeup), each sends the other its whole table. A clash is resolved
  by one node only, the resolver: the smaller of the two pids' nodes, with the method the
  name was registered with; it then tells every node it is connected to the outcome. It
  resolves only while it is connected to the other pid's node, so that what the method
  does to the loser (a kill) reaches it: OTP's global resolves within a name exchange that
  its locks keep to connected nodes. A clash seen earlier (a third node's table, during a
  heal) waits: the other pid's node brings it again in its nodeup exchange. Meanwhile the
  resolver tells its connected nodes its own entry, so a node that held the other pid
  (maybe of a node that is gone for good) does not keep it, or lose the name; it never
  tells the other pid's node, which may connect meanwhile: that node would drop its pid
  unkilled and never bring the clash back. A
  node that sees a clash it does not resolve asks the resolver, which answers everyone
  with its table's entry (resolving first if it had not seen that clash), so a node that
  comes back later still converges.
- A node takes such an answer (an outcome) as it comes, except over a live pid of its
  own that the outcome does not name a loser: no kill or notice went to that pid, and
  dropped from the table it would live on unaware (a POC leader that never steps down).
  The node keeps it and merges the answer's pid as a clash, which the resolver settles.
  A live pid of its own that an outcome of `random_exit_name` names a loser, it kills:
  the resolver's kill is lost if the connection went down after the resolver checked it.
"""

from __future__ import annotations

import logging
from typing import Any

from . import _context, erlang, gen_server
from ._terms import Pid, Ref

SERVER = "global_name_server"
LOCK_LEASE_MS = 5000  # a lock not released within this (its holder died mid-change) lapses

log = logging.getLogger("actors.global")


class GlobalNameServer(gen_server.GenServer):
    """State: {"names": {name: (pid, method, mref)}, "by_ref": {mref: name},
    "locks": {name: (lock_id, taken_ms)}, "losers": {name: pids that lost a clash for it}}."""

    def init(self, args: Any) -> Any:
        me = _context.self_process()  # net_kernel:monitor_nodes(true); net_kernel starts us
        me.node.remote.monitor_nodes(me.pid, True)
        return ("ok", {"names": {}, "locks": {}, "losers": {}, "by_ref": {}})

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        names, locks = state["names"], state["locks"]
        match request:
            case ("lock", name, lock_id, _locker):
                held = locks.get(name)
                now = erlang.monotonic_time("millisecond")
                if held is not None and held[0] != lock_id and now - held[1] < LOCK_LEASE_MS:
                    return ("reply", ("busy",), state)
                locks[name] = (lock_id, now)
                return ("reply", ("granted", _live_holder(names.get(name))), state)
            case ("apply_unlock", change, name, lock_id, tuple(asked)):
                self._apply_unlock(state, change, name, lock_id, asked)
                return ("reply", "ok", state)
        return ("reply", ("error", "bad_request"), state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        match msg:
            case ("unlock", name, lock_id):
                self._apply_unlock(state, None, name, lock_id, ())
            case ("changed", name, old, new, method):
                self._changed_elsewhere(state, name, old, new, method)
            case ("sync", list(entries)):
                for name, pid, method in entries:
                    self._merge(state, name, pid, method)
            case ("resolved", name, pid, method, list(losers)):
                state["losers"].setdefault(name, set()).update(losers)
                self._resolved(state, name, pid, method)
            case ("conflict", name, Pid() as pid1, Pid() as pid2):
                self._conflict(state, name, pid1, pid2)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        match msg:
            case ("DOWN", Ref() as ref, "process", _, _):
                self._forget_ref(state, ref)
            case ("nodeup", node):
                table = [(name, pid, method) for name, (pid, method, _) in state["names"].items()]
                gen_server.cast((SERVER, node), ("sync", table))
            case ("nodedown", _):
                pass
        return ("noreply", state)

    def _apply_unlock(self, state: Any, change: Any, name: Any, lock_id: Any,
                      asked: tuple[str, ...]) -> None:
        """A lock holder's change (or None), then the release of its lock. The change goes
        on to the connected nodes the holder did not ask (see the module's rules)."""
        match change:
            case ("register", name_, pid, method):
                self._change(state, name_, pid, method, asked)
            case ("unregister", name_):
                self._change(state, name_, None, None, asked)
        held = state["locks"].get(name)
        if held is not None and held[0] == lock_id:
            del state["locks"][name]

    def _change(self, state: Any, name: Any, pid: Pid | None, method: Any,
                asked: tuple[str, ...]) -> None:
        current = state["names"].get(name)
        old = current[0] if current is not None else None
        self._take(state, name, pid, method)
        for node in erlang.nodes():
            if node not in asked:
                gen_server.cast((SERVER, node), ("changed", name, old, pid, method))

    def _changed_elsewhere(self, state: Any, name: Any, old: Pid | None, new: Pid | None,
                           method: Any) -> None:
        """A change this node was not asked about: taken if it replaces what we hold; a
        clash if we hold another pid (registered where the changer could not see)."""
        current = state["names"].get(name)
        if current is None or current[0] == old:
            self._take(state, name, new, method)
        elif new is not None:
            self._merge(state, name, new, method)

    def _take(self, state: Any, name: Any, pid: Pid | None, method: Any) -> None:
        """A change made for real (not a clash's outcome): a pid registered anew is no
        longer a loser of an earlier clash."""
        if pid is not None:
            state["losers"].get(name, set()).discard(pid)
        self._set(state, name, pid, method)

    # -- the table ------------------------------------------------------------------------

    def _set(self, state: Any, name: Any, pid: Pid | None, method: Any) -> None:
        names, by_ref = state["names"], state["by_ref"]
        old = names.pop(name, None)
        if old is not None:
            erlang.demonitor(old[2], ["flush"])
            by_ref.pop(old[2], None)
        if pid is not None:
            mref = erlang.monitor("process", pid)
            names[name] = (pid, method, mref)
            by_ref[mref] = name
        _context.current_node().set_global(name, pid)

    def _forget_ref(self, state: Any, ref: Ref) -> None:
        name = state["by_ref"].pop(ref, None)
        current = state["names"].get(name) if name is not None else None
        if current is not None and current[2] == ref:
            del state["names"][name]
            _context.current_node().set_global(name, None)

    def _merge(self, state: Any, name: Any, pid: Pid, method: Any) -> None:
        current = state["names"].get(name)
        losers = state["losers"].setdefault(name, set())
        if pid in losers:
            self._tell_all(state, name, current[0] if current else None, method)
            return  # a clash's loser, still listed by a node that missed the outcome
        if current is None:
            self._set(state, name, pid, method)
            return
        mine = current[0]
        if mine == pid:
            return
        resolver, far = sorted((mine.node, pid.node))
        if erlang.node() != resolver:
            gen_server.cast((SERVER, resolver), ("conflict", name, mine, pid))
            return
        if far != resolver and far not in erlang.nodes():
            # its pid may lose, out of reach of a kill: resolved when that node meets us;
            # meanwhile the others take our entry (a dead node's pid must not linger), but
            # not that node, if it connects meanwhile: it must bring us the clash again
            self._tell_all(state, name, mine, current[1], skip=far)
            return
        winner = _resolve(current[1], name, mine, pid)
        if winner not in (mine, pid):
            winner = None
        losers.update(p for p in (mine, pid) if p != winner)
        self._set(state, name, winner, current[1])
        self._tell_all(state, name, winner, current[1])

    def _resolved(self, state: Any, name: Any, pid: Pid | None, method: Any) -> None:
        """Another node's outcome of a clash, or its entry told again: taken, unless it
        would drop a live pid of this node that the outcome does not name a loser. Such a
        pid was in no clash its resolver settled (no kill or notice went to it), and it
        would live on, sure it holds the name: we keep it, and let it clash for real. A
        live pid of ours that an outcome of random_exit_name names a loser is killed here."""
        current = state["names"].get(name)
        mine = current[0] if current is not None else None
        if (mine is not None and mine != pid and mine.node == erlang.node()
                and erlang.is_process_alive(mine)):
            if mine not in state["losers"][name]:
                if pid is None:
                    self._tell_all(state, name, mine, current[1])  # the name is not free
                else:
                    self._merge(state, name, pid, method)
                return
            if method == "random_exit_name":  # its loser dies; the resolver's kill may
                erlang.exit(mine, "kill")  # have been lost with a connection that went down
        self._set(state, name, pid, method)

    def _conflict(self, state: Any, name: Any, pid1: Pid, pid2: Pid) -> None:
        """Another node saw pid1 and pid2 clash on `name`, and we resolve that clash."""
        current = state["names"].get(name)
        if current is not None and current[0] in (pid1, pid2):
            other = pid2 if current[0] == pid1 else pid1
            self._merge(state, name, other, current[1])
            return
        self._tell_all(state, name, current[0] if current else None,
                       current[1] if current else None)

    def _tell_all(self, state: Any, name: Any, pid: Pid | None, method: Any,
                  skip: str | None = None) -> None:
        losers = sorted(state["losers"].get(name, ()))
        for node in erlang.nodes():
            if node != skip:
                gen_server.cast((SERVER, node), ("resolved", name, pid, method, losers))


def _resolve(method: Any, name: Any, pid1: Pid, pid2: Pid) -> Any:
    from . import global_

    fun = getattr(global_, method) if type(method) is str else method
    try:
        return fun(name, pid1, pid2)
    except Exception as exc:
        log.error("global: the resolve function for %r failed: %r", name, exc)
        return "none"


def _live_holder(entry: tuple[Pid, Any, Ref] | None) -> Pid | None:
    """The pid holding a name, as OTP's global:where/1 sees it: a pid of this node that is
    dead holds nothing, even before its DOWN has been handled and the entry removed."""
    if entry is None:
        return None
    pid = entry[0]
    if pid.node == erlang.node() and not erlang.is_process_alive(pid):
        return None
    return pid
