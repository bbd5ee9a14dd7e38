"""Port of the seed's "POC: Leader Election" (`init/1` with global:register_name), and the
init the real POC (erlmcp_consensus_poc) has instead.

What is wrong with the seed's init (`SeedInit`, kept as written):
- It never monitors the leader, so a follower never learns that the leader died: it
  follows a dead pid for ever (the DOWN clause of `poc_down` needs a monitor to fire).
- `global:whereis_name` may answer `undefined` (the holder died or unregistered between
  the two calls): the follower then has no leader and nothing makes it look again.
- `NodeId` is bound and never used (a compiler warning), and the leader's state has no
  `leader_pid`, so a status cannot say who leads.
- It registers inside init/1: the starter waits on a cluster-wide lock (two round trips to
  every node). The real POC's init sends itself `attempt_leadership` and returns at once.

`FixedInit` is the real POC's: init sends `attempt_leadership`; the handler registers,
or looks the leader up, monitors it, and retries in 100 ms on `undefined`.

    python -m demos.erlang_ports.poc_init
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors import Node, Pid, erlang, gen_server, global_

LEADER_NAME = "erlmcp_consensus_leader"  # -define(LEADER_NAME, erlmcp_consensus_leader).


class SeedInit(gen_server.GenServer):
    # init([NodeId]) ->
    def init(self, args: list[Any]) -> Any:
        [_node_id] = args  # (unused in the seed: a compiler warning)
        #     case global:register_name(?LEADER_NAME, self()) of
        match global_.register_name(LEADER_NAME, erlang.self()):
            #     yes ->
            #         %% I'm the leader
            #         {ok, #state{role = leader}};
            case "yes":
                return ("ok", {"role": "leader", "leader_pid": "undefined"})
            #     no ->
            #         %% Someone else is leader
            #         LeaderPid = global:whereis_name(?LEADER_NAME),
            #         {ok, #state{role = follower, leader_pid = LeaderPid}}
            case "no":
                leader_pid = global_.whereis_name(LEADER_NAME)  # may be "undefined"
                return ("ok", {"role": "follower", "leader_pid": leader_pid})
        # end.
        return ("stop", "unreachable")

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", state, state)  # (not in the seed: the demonstration reads the state)


class FixedInit(gen_server.GenServer):
    """The real POC: elect after init, monitor the leader, retry on undefined."""

    def init(self, args: list[Any]) -> Any:
        [node_id] = args
        erlang.send(erlang.self(), "attempt_leadership")  # self() ! attempt_leadership
        return ("ok", {"node_id": node_id, "role": "follower", "leader_pid": "undefined",
                       "leader_monitor": None})

    def handle_info(self, msg: Any, state: Any) -> Any:
        match msg:
            case "attempt_leadership" if state["leader_pid"] == "undefined":
                if global_.register_name(LEADER_NAME, erlang.self()) == "yes":
                    state.update(role="leader", leader_pid=erlang.self())
                    return ("noreply", state)
                leader = global_.whereis_name(LEADER_NAME)
                if type(leader) is not Pid:  # undefined: a registration in flight; retry
                    erlang.send_after(100, erlang.self(), "attempt_leadership")
                    return ("noreply", state)
                state.update(role="follower", leader_pid=leader,
                             leader_monitor=erlang.monitor("process", leader))
            case ("DOWN", ref, "process", _, _) if ref == state["leader_monitor"]:
                state.update(leader_pid="undefined", leader_monitor=None)
                erlang.send(erlang.self(), "attempt_leadership")
        return ("noreply", state)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", state, state)


def _wait(cond: Callable[[], bool], timeout_ms: int = 3000) -> None:
    deadline = time.monotonic() + timeout_ms / 1000.0
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout_ms} ms")
        erlang.receive(lambda _m: False, 5)


def _roles(pids: list[Pid]) -> list[tuple[str, Any]]:
    return [(s["role"], s["leader_pid"]) for s in (gen_server.call(p, "state") for p in pids)]


def _three(module: type[gen_server.GenServer]) -> list[Pid]:
    return [gen_server.start(module, [f"node{i}"])[1] for i in (1, 2, 3)]


def demo() -> None:
    print("1. the seed's init: three servers; the first to register leads")
    seed = _three(SeedInit)
    print(f"   roles: {_roles(seed)}")
    assert [r for r, _ in _roles(seed)] == ["leader", "follower", "follower"]
    gen_server.stop(seed[0])
    _wait(lambda: global_.whereis_name(LEADER_NAME) == "undefined")
    print(f"2. the leader stopped; the seed's followers never hear of it: {_roles(seed[1:])}")
    assert all(leader == seed[0] for _, leader in _roles(seed[1:]))
    assert not erlang.is_process_alive(seed[0])
    for pid in seed[1:]:
        gen_server.stop(pid)

    print("3. the real POC's init: elect after init, monitor the leader")
    fixed = _three(FixedInit)
    _wait(lambda: sorted(r for r, _ in _roles(fixed)) == ["follower", "follower", "leader"])
    leader = next(p for p, (r, _) in zip(fixed, _roles(fixed), strict=True) if r == "leader")
    gen_server.stop(leader)
    rest = [p for p in fixed if p != leader]
    _wait(lambda: sorted(r for r, _ in _roles(rest)) == ["follower", "leader"]
          and len({pid for _, pid in _roles(rest)}) == 1)
    print(f"4. the leader stopped; the followers saw its DOWN and elected one: {_roles(rest)}")
    for pid in rest:
        gen_server.stop(pid)


def main() -> int:
    node = Node("poc_init@localhost")
    try:
        with node.bound():
            demo()
    finally:
        node.stop()
    print("poc_init: done")
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.CRITICAL)  # crash reports would interleave the story
    raise SystemExit(main())
