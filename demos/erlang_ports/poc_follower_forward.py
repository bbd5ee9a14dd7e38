"""Port of the seed's "POC: Manual Forwarding" (the follower's `handle_call` that forwards to
the leader and catches noproc), and the clause the real POC (erlmcp_consensus_poc) has.

What is wrong with the seed's clause (`SeedFollower`, kept as written):
- It does not compile: the head matches `#state{role = follower, leader_pid = Leader}`
  without binding `State`, and the body returns `State`. It must be
  `State = #state{role = follower, leader_pid = Leader}`.
- It catches only `exit:{noproc, _}`. A timeout exits `{timeout, _}`, a leader on a node
  that went down exits `{{nodedown, Node}, _}`, a leader that dies during the call exits
  `{Reason, _}`: each crashes the follower (and fails its caller).
- On noproc it answers `no_leader` and keeps the dead pid: every later call fails the
  same way, and nothing starts an election. The real POC answers `leader_unavailable`,
  forgets the leader and sends itself `attempt_leadership`.
- gen_server:call/2 waits the default 5000 ms, while the client's call waits 10000 (the
  POC says 5000 explicitly). (The demonstration shortens both, see FORWARD_MS.)
- With no leader, `Leader` is `undefined`, and gen_server:call(undefined, ...) exits
  noproc (undefined is looked up as a registered name), so the seed answers no_leader by
  accident; a Python None is no server reference, so the fixed clause checks for it.

`FixedFollower` is the real POC's clause, catching every "the leader is gone" exit.

    python -m demos.erlang_ports.poc_follower_forward
"""

from __future__ import annotations

from typing import Any

from actors import Exit, Node, erlang, gen_server

FORWARD_MS = 300  # the POC's 5000 ms, shortened so that the demonstration is quick


class Leader(gen_server.GenServer):
    """A leader that adds, and hangs on "hang" (without answering) until told to go."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("execute_tool", "add", {"a": a, "b": b}):
                return ("reply", ("ok", a + b), state)
            case ("execute_tool", "hang", _):
                return ("noreply", state)
        return ("reply", ("error", "unknown_request"), state)


class SeedFollower(gen_server.GenServer):
    def init(self, leader: Any) -> Any:
        return ("ok", {"role": "follower", "leader_pid": leader})

    # handle_call({execute_tool, Tool, Args}, _From,
    #             #state{role = follower, leader_pid = Leader}) ->
    #   (wrong: State is unbound; `State = #state{...}` binds it)
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request, state:
            case ("execute_tool", tool, args), {"role": "follower", "leader_pid": leader}:
                #     %% Manually forward to leader
                #     try
                try:
                    #     Result = gen_server:call(Leader, {execute_tool, Tool, Args}),
                    result = gen_server.call(leader, ("execute_tool", tool, args), FORWARD_MS)
                    #     {reply, Result, State}
                    return ("reply", result, state)
                #     catch
                #         exit:{noproc, _} ->
                #             {reply, {error, no_leader}, State}
                #     end.
                except Exit as exc:
                    if type(exc.reason) is tuple and exc.reason[0] == "noproc":
                        return ("reply", ("error", "no_leader"), state)
                    raise  # any other exit crashes the follower
        return ("reply", ("error", "unknown_request"), state)


class FixedFollower(gen_server.GenServer):
    """handle_call({execute_tool, ...}, _From, State = #state{role = follower})."""

    def init(self, leader: Any) -> Any:
        return ("ok", {"role": "follower", "leader_pid": leader, "elections": 0})

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("execute_tool", _, _) if state["leader_pid"] is None:
                return ("reply", ("error", "no_leader"), state)
            case ("execute_tool", _, _):
                try:
                    return ("reply", gen_server.call(state["leader_pid"], request, FORWARD_MS),
                            state)
                except Exit as exc:
                    if type(exc.reason) is tuple and exc.reason[0] == "timeout":
                        return ("reply", ("error", "leader_timeout"), state)
                    # noproc, {nodedown, N}, or the leader died during the call: it is gone
                    erlang.send(erlang.self(), "attempt_leadership")
                    state.update(leader_pid=None)
                    return ("reply", ("error", "leader_unavailable"), state)
            case "state":
                return ("reply", state, state)
        return ("reply", ("error", "unknown_request"), state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        if msg == "attempt_leadership":  # (poc_init shows the election itself)
            state["elections"] += 1
        return ("noreply", state)


def _ask(follower: Any, tool: str, args: dict[str, Any]) -> Any:
    try:
        return gen_server.call(follower, ("execute_tool", tool, args), 10 * FORWARD_MS)
    except Exit as exc:  # the follower died: its reason is its own call's exit
        reason = exc.reason[0]
        return ("exit", reason[0] if type(reason) is tuple else reason)


def demo() -> None:
    _, leader = gen_server.start(Leader, None)
    _, seed = gen_server.start(SeedFollower, leader)
    _, fixed = gen_server.start(FixedFollower, leader)
    print("1. a live leader: both followers forward")
    for name, f in (("seed ", seed), ("fixed", fixed)):
        answer = _ask(f, "add", {"a": 1, "b": 2})
        print(f"   {name}: add(1, 2) -> {answer}")
        assert answer == ("ok", 3)

    print("2. the leader hangs: the call times out")
    answer = _ask(fixed, "hang", {})
    print(f"   fixed: hang -> {answer}")
    assert answer == ("error", "leader_timeout")
    answer = _ask(seed, "hang", {})
    print(f"   seed : hang -> {answer}: {{timeout, _}} is not caught, the follower crashed")
    assert answer == ("exit", "timeout") and not erlang.is_process_alive(seed)

    _, seed = gen_server.start(SeedFollower, leader)
    gen_server.stop(leader)
    print("3. the leader is gone: the call exits noproc")
    for _ in range(2):
        answer = _ask(seed, "add", {"a": 1, "b": 2})
        print(f"   seed : add(1, 2) -> {answer} (still following the dead pid)")
        assert answer == ("error", "no_leader")
    answer = _ask(fixed, "add", {"a": 1, "b": 2})
    status = gen_server.call(fixed, "state")
    print(f"   fixed: add(1, 2) -> {answer}; forgot the leader, "
          f"started {status['elections']} election")
    assert answer == ("error", "leader_unavailable") and status["leader_pid"] is None
    assert _ask(fixed, "add", {"a": 1, "b": 2}) == ("error", "no_leader")


def main() -> int:
    node = Node("poc_forward@localhost")
    try:
        with node.bound():
            demo()
    finally:
        node.stop()
    print("poc_follower_forward: done")
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.CRITICAL)  # crash reports would interleave the story
    raise SystemExit(main())
