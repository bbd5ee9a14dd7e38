"""The child modules and helpers of OTP's supervisor_SUITE, in Python.

Each class stands for one Erlang test module (supervisor_1 .. supervisor_4,
supervisor_deadlock, naughty_child) and behaves as it does; the helpers stand for the
suite's start_link/1, get_child_counts/1, terminate/2,4, check_exit/1,2,
check_exit_reason/2 and check_no_exit/1. Every wait is bounded. Times are scaled down
from the Erlang suite's (e.g. 2 s to 0.25 s) to keep the suite fast; the restart
intensities that depend on them are scaled with them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors import Node, erlang, gen_server
from actors.erlang import Pid
from supervision import supervisor
from tests.helpers import exit_from, recv

SUP = "sup_test"
WAIT_MS = 5000


class SuiteSup(supervisor.Supervisor):
    """supervisor_SUITE's own init/1: return the argument, or fail."""

    def init(self, args: Any) -> Any:
        if args == "fail":
            erlang.error("fail")
        return args


def start_link(init_result: Any) -> Any:
    """supervisor_SUITE:start_link/1: a supervisor registered as sup_test."""
    return supervisor.start_link(("local", SUP), SuiteSup, init_result)


def start_link_anon(init_result: Any) -> Any:
    return supervisor.start_link(SuiteSup, init_result)


def counts(sup: Any) -> list[int]:
    """get_child_counts/1: [specs, active, supervisors, workers]."""
    c = dict(supervisor.count_children(sup))
    return [c["specs"], c["active"], c["supervisors"], c["workers"]]


def pids_of(sup: Any) -> list[Any]:
    return [p for _, p, _, _ in supervisor.which_children(sup)]


# -- supervisor_1 ----------------------------------------------------------------------------


class One(gen_server.GenServer):
    """supervisor_1: a trapping worker; "die" stops it with "died", "stop" with "normal"."""

    def init(self, args: Any) -> Any:
        if args != "normal":
            erlang.error("function_clause")
        erlang.process_flag("trap_exit", True)
        return ("ok", {})

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", request, state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        match msg:
            case "die":
                return ("stop", "died", state)
            case "stop":
                return ("stop", "normal", state)
            case ("EXIT", _, "shutdown"):
                return ("stop", "shutdown", state)
            case ("EXIT", _, ("shutdown", term)):
                return ("stop", ("shutdown", term), state)
            case ("sleep", ms):  # busy in Python code, deaf to everything (bounded)
                release = threading.Event()
                release.wait(ms / 1000)
        return ("noreply", state)


def one_start_child(*args: Any) -> Any:
    """supervisor_1:start_child/0,1, run in the supervisor (its process dictionary)."""
    if not args:
        return gen_server.start_link(One, "normal")
    arg = args[0]
    if arg == "ignore":
        if erlang.get("child_ignored") is True:
            return one_start_child()
        erlang.put("child_ignored", True)
        return "ignore"
    if arg == "error":
        if erlang.get("start_child_error") == "undefined":
            erlang.put("start_child_error", "set")
            return one_start_child()
        return gen_server.start_link(One, "error")
    if type(arg) is tuple and arg[0] == "return":
        return arg[1]
    ok, pid = gen_server.start_link(One, "normal")
    return (ok, pid, arg)


ONE = (one_start_child, [])


def one(*args: Any) -> tuple[Any, list[Any]]:
    """The start of supervisor_1:start_child with `args`."""
    return (one_start_child, list(args))


# -- supervisor_2, _3, _4 --------------------------------------------------------------------


class Two(gen_server.GenServer):
    """supervisor_2: traps exits; terminate takes `ms` milliseconds."""

    def init(self, ms: Any) -> Any:
        erlang.process_flag("trap_exit", True)
        return ("ok", ms)

    def terminate(self, reason: Any, ms: Any) -> Any:
        threading.Event().wait(ms / 1000)
        return "ok"


def two_start_child(ms: int) -> Any:
    return gen_server.start_link(Two, ms)


class Three(gen_server.GenServer):
    """supervisor_3: tells the caller (name, self()) from init and returns what it is sent."""

    def init(self, args: Any) -> Any:
        name, caller = args
        erlang.send(caller, (name, erlang.self()))
        msg = erlang.receive(lambda m: type(m) is tuple and len(m) == 2 and m[1] == caller,
                             WAIT_MS * 4)
        return msg[0] if msg is not erlang.TIMEOUT else ("stop", "no_answer")

    def handle_info(self, msg: Any, state: Any) -> Any:
        return ("noreply", state)


def three_start_child(name: Any, caller: Pid) -> Any:
    return gen_server.start_link(Three, (name, caller))


class Four(gen_server.GenServer):
    """supervisor_4: traps exits; with a reason, its terminate exits with that reason."""

    def init(self, args: Any) -> Any:
        erlang.process_flag("trap_exit", True)
        return ("ok", args)

    def handle_info(self, msg: Any, state: Any) -> Any:
        if msg == "stop":
            return ("stop", "normal", state)
        return ("noreply", state)

    def terminate(self, reason: Any, state: Any) -> Any:
        if type(state) is tuple:
            erlang.exit(state[0])
        return "ok"


def four_start_child(*reason: Any) -> Any:
    return gen_server.start_link(Four, (reason[0],) if reason else None)


# -- supervisor_deadlock -----------------------------------------------------------------------

DEADLOCK_DELAY_S = 0.25  # OTP: 2 s, MaxT 10 s; here at most 4 failed starts fit in 1 s


class Deadlock(gen_server.GenServer):
    """supervisor_deadlock: init fails (slowly) while table["fail_start"] is set; the cast
    "restart" crashes it with "error"."""

    def init(self, table: dict[str, bool]) -> Any:
        if not table["fail_start"]:
            return ("ok", table)
        time.sleep(DEADLOCK_DELAY_S)
        return ("stop", "error")

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("stop", "error", state)


def deadlock_start_child(table: dict[str, bool]) -> Any:
    return gen_server.start_link(("local", "supervisor_deadlock"), Deadlock, table)


def deadlock_start_child_noreg(table: dict[str, bool]) -> Any:
    return gen_server.start_link(Deadlock, table)


# -- naughty_child ---------------------------------------------------------------------------


class Naughty(gen_server.GenServer):
    """naughty_child: unlinks from its supervisor in init."""

    def init(self, sup: Pid) -> Any:
        erlang.unlink(sup)
        return ("ok", None)


def naughty_start_link(sup: Pid) -> Any:
    return gen_server.start_link(("local", "naughty_foo"), Naughty, sup)


# -- the suite's checks ------------------------------------------------------------------------


def wait_handled(sup: Any, pid: Pid) -> None:
    """Wait (bounded) until `sup` no longer lists `pid`, or is gone: the supervisor has
    handled the child's EXIT. (In Erlang the DOWN the test gets and the EXIT the supervisor
    gets leave together; here the test could call the supervisor between the two.)"""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        try:
            if pid not in pids_of(sup):
                return
        except erlang.Exit:
            return
        time.sleep(0.002)
    raise AssertionError(f"supervisor {sup!r} still lists {pid!r}")


def terminate(*args: Any) -> None:
    """terminate/2 (pid, reason) and terminate/4 (sup, pid, id, reason) of the suite."""
    if len(args) == 2:
        sup, pid, child_id, reason = None, args[0], None, args[1]
    else:
        sup, pid, child_id, reason = args
    if reason == "supervisor":
        assert supervisor.terminate_child(sup, child_id) == "ok"
        return
    ref = erlang.monitor("process", pid)
    if reason == "normal":
        erlang.send(pid, "stop")
    elif reason == "abnormal":
        erlang.send(pid, "die")
    else:
        erlang.exit(pid, reason)
    expected = {"kill": "killed", "abnormal": "died"}.get(reason, reason)
    down = recv(lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref,
                WAIT_MS)
    assert down[4] == expected, down
    if sup is not None and sup != "dummy":
        wait_handled(sup, pid)


def check_exit(pids: list[Any], timeout: int | None = None) -> str:
    """"ok" once an EXIT from each pid came (in order), "error" if one did not in time."""
    for pid in pids:
        msg = erlang.receive(exit_from(pid), WAIT_MS if timeout is None else timeout)
        if msg is erlang.TIMEOUT:
            assert timeout is not None, f"no EXIT from {pid!r}"
            return "error"
    return "ok"


def check_exit_reason(pid: Any, reason: Any) -> None:
    msg = recv(exit_from(pid), WAIT_MS)
    assert msg[2] == reason, ("bad_exit_reason", msg[2])


def check_no_exit(timeout: int) -> None:
    msg = erlang.receive(lambda m: type(m) is tuple and len(m) == 3 and m[0] == "EXIT",
                         timeout)
    assert msg is erlang.TIMEOUT, ("unexpected_message", msg)


QUIET_MS = 200  # the suite's `error = check_exit([Pid], 1000)`: nothing within this time


@pytest.fixture(autouse=True)
def trap_exits(node: Node) -> Iterator[None]:
    """Each case runs on its own node, in a shell that traps exits (process_flag in the
    Erlang cases); end_per_testcase stops sup_test if it is still there. (A suite module
    uses it by importing it.)"""
    erlang.process_flag("trap_exit", True)
    yield
    pid = erlang.whereis(SUP)
    if erlang.is_pid(pid):
        erlang.unlink(pid)
        erlang.exit(pid, "shutdown")


def spec(child_id: Any, start: Any = None, restart: str = "permanent",
         shutdown: Any = 1000, kind: str = "worker") -> tuple[Any, ...]:
    """An old-style child spec tuple; `start` defaults to ONE."""
    return (child_id, ONE if start is None else start, restart, shutdown, kind, [])
