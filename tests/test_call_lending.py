"""A local call with an infinite timeout runs an idle server on the caller's thread
(`_gen.call`): what OTP promises still holds. The caller stays a waiting process, so
signals reach it at once; the server stays a process of its own, so a kill of either side
leaves the other intact."""

from __future__ import annotations

import time
from typing import Any

import pytest

from actors import Node, erlang, gen_server
from actors._terms import Exit

from .helpers import down_of, recv


class Server(gen_server.GenServer):
    """Answers "ping"; ("call", ref, req, timeout) calls another server; ("spin", s) keeps
    its thread busy in plain Python for s seconds; "whoami" answers erlang.self()."""

    def init(self, args: Any) -> Any:
        return ("ok", 0)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case "ping":
                return ("reply", "pong", state + 1)
            case "whoami":
                return ("reply", erlang.self(), state)
            case ("call", server_ref, inner, timeout):
                return ("reply", gen_server.call(server_ref, inner, timeout), state)
            case ("spin", seconds):
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    pass
                return ("reply", "spun", state)


def start() -> Any:
    return gen_server.start(Server, None)[1]


def test_the_server_runs_as_itself(node: Node) -> None:
    pid = start()
    me = erlang.self()
    assert gen_server.call(pid, "whoami", "infinity") == pid
    assert erlang.self() == me
    assert [gen_server.call(pid, "ping", "infinity") for _ in range(100)] == ["pong"] * 100


def test_a_chain_of_servers_calling_each_other(node: Node) -> None:
    pids = [start() for _ in range(30)]
    request: Any = "ping"
    for pid in pids[1:]:
        request = ("call", pid, request, "infinity")
    assert gen_server.call(pids[0], request, "infinity") == "pong"


def test_a_call_back_to_a_busy_caller_times_out_as_in_otp(node: Node) -> None:
    """A calls B; B calls A back (A is busy in its own call): B's call times out, B
    crashes, and A's call exits with B's reason; nothing hangs."""
    a, b = start(), start()
    erlang.process_flag("trap_exit", True)
    t0 = time.monotonic()
    with pytest.raises(Exit) as caught:
        gen_server.call(a, ("call", b, ("call", a, "ping", 200), "infinity"), "infinity")
    assert time.monotonic() - t0 < 4.0
    assert "timeout" in repr(caught.value.reason)


def test_a_timeout_is_kept_when_the_server_hangs(node: Node) -> None:
    """A call with a timeout leaves the server to a worker: a server that hangs (here for
    3 s in plain Python, as a stuck tool would) cannot hold up the caller's timeout exit."""
    pid = start()
    assert gen_server.call(pid, "ping", "infinity") == "pong"  # a fast server, lent before
    t0 = time.monotonic()
    with pytest.raises(Exit) as caught:
        gen_server.call(pid, ("spin", 3.0), 1000)
    assert caught.value.reason[0] == "timeout"
    assert time.monotonic() - t0 < 2.0


def test_killing_the_caller_mid_call_leaves_the_server_intact(node: Node) -> None:
    server = start()
    parent = erlang.self()

    def caller() -> None:
        erlang.send(parent, ("calling", erlang.self()))
        gen_server.call(server, ("spin", 0.3), "infinity")

    pid = erlang.spawn(caller)
    ref = erlang.monitor("process", pid)
    recv(lambda m: m == ("calling", pid))
    time.sleep(0.05)  # let the call start (not a condition: the kill below must be at once)
    t0 = time.monotonic()
    erlang.exit(pid, "kill")
    assert recv(down_of(ref), 1000)[4] == "killed"
    assert time.monotonic() - t0 < 0.25  # the DOWN does not wait for the server's run
    assert gen_server.call(server, "ping", 2000) == "pong"
    assert erlang.is_process_alive(server)


def test_killing_the_server_mid_call_ends_the_call(node: Node) -> None:
    server = start()
    erlang.spawn(lambda: (time.sleep(0.1), erlang.exit(server, "kill")))
    with pytest.raises(Exit) as caught:
        gen_server.call(server, ("spin", 3.0), "infinity")
    assert caught.value.reason[0] == "killed"
    assert not erlang.is_process_alive(server)


def test_a_lent_run_that_its_caller_cannot_do_goes_to_a_worker(node: Node) -> None:
    """A caller killed between sending its request and waiting never runs the server it
    kept for itself: the run goes to a worker, or the server would hang forever."""
    from actors import _context
    from actors._process import Process
    from actors._terms import Pid, ProcessKilled

    server = start()
    target = node.lookup(server)
    assert target is not None and not target.scheduled
    state = _context._state
    state.lend = target  # as _gen.call does: the run this message schedules is kept...
    try:
        erlang.send(server, "queued while its sender dies")
    finally:
        lent, state.lend, state.lent = state.lent, None, None
    assert lent is not None and target.scheduled  # ...so nobody else will run the server
    dead = Process(node, Pid(node.name, 10**9, node.creation), "thread")
    dead.alive = False
    with pytest.raises(ProcessKilled):
        dead.receive(lambda m: False, "infinity", lent=lent)
    assert gen_server.call(server, "ping", 2000) == "pong"  # a worker ran it
