"""Port of the seed's "POC: Simple Process Death" (the `DOWN` clause that starts a new
election), and the clause the real POC (erlmcp_consensus_poc) has instead.

What is wrong with the seed's clause (`SeedDown`, kept as written):
- It matches every DOWN, not the leader's: `_Ref` and `LeaderPid` are bound to whatever
  died (`LeaderPid` is unused, a compiler warning, named as if it were checked). Any other
  process the server monitors (a worker, a client) starts an election when it dies.
- On the leader itself such a DOWN is worse: it sets `leader_pid = undefined` and sends
  `attempt_leadership`; `global:register_name` answers `no` (the name is its own), and
  `global:whereis_name` its own pid, so the leader becomes a follower of itself (and its
  next forwarded call exits `calling_self`).
- It leaves `leader_monitor` set.
The real POC matches the monitor's reference: `handle_info({'DOWN', MonitorRef, process,
LeaderPid, Reason}, State = #state{leader_monitor = MonitorRef})`, and clears both.

The election (`attempt_leadership`) is the real POC's in both servers; only the DOWN
clause differs.

    python -m demos.erlang_ports.poc_down
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors import Node, Pid, Ref, erlang, gen_server, global_

LEADER_NAME = "erlmcp_consensus_leader"


class _Elects(gen_server.GenServer):
    """The real POC's init and attempt_leadership; calls: "state", ("watch", pid)."""

    def init(self, _args: Any) -> Any:
        erlang.send(erlang.self(), "attempt_leadership")
        return ("ok", {"role": "follower", "leader_pid": "undefined", "leader_monitor": None})

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("watch", pid):  # monitor something else: a worker, say
                erlang.monitor("process", pid)
                return ("reply", "ok", state)
        return ("reply", state, state)

    def attempt_leadership(self, state: Any) -> Any:
        if global_.register_name(LEADER_NAME, erlang.self()) == "yes":
            state.update(role="leader", leader_pid=erlang.self())
            return ("noreply", state)
        leader = global_.whereis_name(LEADER_NAME)
        if type(leader) is not Pid:
            erlang.send_after(100, erlang.self(), "attempt_leadership")
            return ("noreply", state)
        state.update(role="follower", leader_pid=leader,
                     leader_monitor=erlang.monitor("process", leader))
        return ("noreply", state)


class SeedDown(_Elects):
    def handle_info(self, msg: Any, state: Any) -> Any:
        match msg:
            case "attempt_leadership":
                return self.attempt_leadership(state)
            # handle_info({'DOWN', _Ref, process, LeaderPid, _Reason}, State) ->
            case ("DOWN", _ref, "process", _leader_pid, _reason):
                #     %% Leader died, re-elect
                #     self() ! attempt_leadership,
                erlang.send(erlang.self(), "attempt_leadership")
                #     {noreply, State#state{leader_pid = undefined}}.
                return ("noreply", {**state, "leader_pid": "undefined"})
        return ("noreply", state)


class FixedDown(_Elects):
    def handle_info(self, msg: Any, state: Any) -> Any:
        match msg:
            case "attempt_leadership":
                return self.attempt_leadership(state)
            # handle_info({'DOWN', MonitorRef, process, LeaderPid, Reason},
            #             State = #state{leader_monitor = MonitorRef}) ->
            case ("DOWN", Ref() as ref, "process", _, _) if ref == state["leader_monitor"]:
                erlang.send(erlang.self(), "attempt_leadership")
                return ("noreply", {**state, "leader_pid": "undefined",
                                    "leader_monitor": None})
        return ("noreply", state)


def _wait(cond: Callable[[], bool], timeout_ms: int = 3000) -> None:
    deadline = time.monotonic() + timeout_ms / 1000.0
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout_ms} ms")
        erlang.receive(lambda _m: False, 5)


def _state(pid: Pid) -> tuple[str, Any]:
    s = gen_server.call(pid, "state")
    return (s["role"], "itself" if s["leader_pid"] == pid else s["leader_pid"])


def _worker_dies_under(module: type[gen_server.GenServer]) -> tuple[str, Any]:
    """A leader of `module` monitors a worker that has ended; its state after the DOWN."""
    _, leader = gen_server.start(module, None)
    _wait(lambda: _state(leader) == ("leader", "itself"))
    worker = erlang.spawn(lambda: None)
    _wait(lambda: not erlang.is_process_alive(worker))
    # The monitor of a dead process puts its DOWN (noproc) in the leader's mailbox at once,
    # so the DOWN is handled before the next call, and the attempt_leadership it may send
    # before the call after that.
    gen_server.call(leader, ("watch", worker))
    gen_server.call(leader, "state")
    after = _state(leader)
    gen_server.stop(leader)
    return after


def demo() -> None:
    print("1. a leader monitors a worker that has ended")
    seed = _worker_dies_under(SeedDown)
    print(f"   seed : the leader's (role, leader) -> {seed}: it follows itself")
    assert seed == ("follower", "itself")
    fixed = _worker_dies_under(FixedDown)
    print(f"   fixed: the leader's (role, leader) -> {fixed}")
    assert fixed == ("leader", "itself")

    print("2. the leader dies: the follower's DOWN starts an election, in both")
    for module in (SeedDown, FixedDown):
        _, leader = gen_server.start(module, None)
        _wait(lambda leader=leader: _state(leader)[0] == "leader")
        _, follower = gen_server.start(module, None)
        _wait(lambda f=follower, leader=leader: _state(f) == ("follower", leader))
        gen_server.stop(leader)
        _wait(lambda f=follower: _state(f) == ("leader", "itself"))
        print(f"   {module.__name__}: the follower is now {_state(follower)}")
        gen_server.stop(follower)


def main() -> int:
    node = Node("poc_down@localhost")
    try:
        with node.bound():
            demo()
    finally:
        node.stop()
    print("poc_down: done")
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    raise SystemExit(main())
