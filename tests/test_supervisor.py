"""supervisor: OTP's supervisor behaviour, checked against what OTP's supervisor does.

Workers report to the test process: ("started", name, pid) from init and
("terminated", name, reason) from terminate (only a trapping worker runs terminate on a
shutdown). Those messages arrive in the order the events happened, because the supervisor
starts and stops children one at a time and waits for each.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors import Node, erlang, gen_server
from actors.erlang import Pid
from supervision import supervisor
from tests.helpers import down_of, exit_from, no_message, recv, wait_until

Opts = dict[str, Any]

# -- a worker that tells the test what happens to it --------------------------------------------


def spin_until(event: threading.Event, limit: float = 30.0) -> None:
    """Busy Python code that ignores exit signals until `event` is set (bounded)."""
    deadline = time.monotonic() + limit
    while not event.is_set() and time.monotonic() < deadline:
        event.wait(0.01)


class Worker(gen_server.GenServer):
    """opts: trap (trap exits), init (return this from init instead), release (an Event),
    stuck_terminate (spin in terminate until release is set)."""

    @staticmethod
    def start_link(report_to: Pid, name: Any, opts: Opts | None = None) -> Any:
        return gen_server.start_link(Worker, (report_to, name, opts or {}))

    def init(self, args: Any) -> Any:
        report_to, name, opts = args
        if "init" in opts:
            return opts["init"]
        if opts.get("trap"):
            erlang.process_flag("trap_exit", True)
        erlang.send(report_to, ("started", name, erlang.self()))
        return ("ok", (report_to, name, opts))

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "ping":
            return ("reply", "pong", state)
        return ("reply", ("unknown", request), state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        if type(msg) is tuple and msg[0] == "stop":
            return ("stop", msg[1], state)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        report_to, name, opts = state
        if msg == "block":
            erlang.send(report_to, ("blocking", name, erlang.self()))
            spin_until(opts["release"])
        return ("noreply", state)

    def terminate(self, reason: Any, state: Any) -> Any:
        report_to, name, opts = state
        erlang.send(report_to, ("terminated", name, reason))
        if opts.get("stuck_terminate"):
            spin_until(opts["release"])
        return "ok"


def start_worker(report_to: Pid, name: Any, opts: Opts | None = None) -> Any:
    """A module-level start function, for the (module, "start_worker", args) form."""
    return Worker.start_link(report_to, name, opts)


def raising_start() -> Any:
    raise RuntimeError("start function blew up")


def spec(name: Any, report_to: Pid, opts: Opts | None = None, **fields: Any) -> dict[str, Any]:
    """A map child spec for a Worker with id `name`."""
    return {"id": name, "start": (Worker, "start_link", [report_to, name, opts or {}]),
            "modules": [Worker], **fields}


class Sup(supervisor.Supervisor):
    """A callback module whose init returns its argument as is."""

    def init(self, args: Any) -> Any:
        return args


def sup_init(strategy: str, specs: list[Any], intensity: int = 1,
             period: int = 5) -> Any:
    return ("ok", ({"strategy": strategy, "intensity": intensity, "period": period}, specs))


def start_sup(strategy: str, specs: list[Any], intensity: int = 1, period: int = 5) -> Pid:
    result = supervisor.start_link(Sup, sup_init(strategy, specs, intensity, period))
    assert type(result) is tuple and result[0] == "ok", result
    assert type(result[1]) is Pid
    return result[1]


# -- waiting for reports ------------------------------------------------------------------------


def is_event(m: Any) -> bool:
    return type(m) is tuple and len(m) == 3 and m[0] in ("started", "terminated")


def is_start(m: Any) -> bool:
    return is_event(m) and m[0] == "started"


def started(name: Any) -> Pid:
    """Wait for ("started", name, pid) and return the pid."""
    return recv(lambda m: is_event(m) and m[0] == "started" and m[1] == name)[2]


def terminated(name: Any) -> Any:
    """Wait for ("terminated", name, reason) and return the reason."""
    return recv(lambda m: is_event(m) and m[0] == "terminated" and m[1] == name)[2]


def events(n: int) -> list[tuple[str, Any, Any]]:
    """The next `n` started/terminated reports, in arrival order (pids left out for starts)."""
    out = []
    for _ in range(n):
        kind, name, extra = recv(is_event)
        out.append((kind, name, extra if kind == "terminated" else None))
    return out


def children(sup: Any) -> dict[Any, Any]:
    """which_children as {id: pid}."""
    return {cid: pid for cid, pid, _type, _mods in supervisor.which_children(sup)}


def kill_and_wait(pid: Pid) -> None:
    """Kill a process and wait until it is dead."""
    ref = erlang.monitor("process", pid)
    erlang.exit(pid, "kill")
    assert recv(down_of(ref))[4] == "killed"


def within(node: Node, seconds: float, fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run `fn()` from another thread (its own shell process) and fail if it has not
    returned after `seconds`, instead of hanging the test. Returns (result, elapsed)."""
    box: dict[str, Any] = {}

    def run() -> None:
        with node.bound():
            t0 = time.monotonic()
            try:
                box["result"] = fn()
            except BaseException as exc:
                box["error"] = exc
            box["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["result"], box["elapsed"]


@pytest.fixture
def me(node: Node) -> Pid:
    return erlang.self()


@pytest.fixture
def trapping(node: Node) -> Iterator[None]:
    """The test process traps exits: a linked supervisor may die without killing the test."""
    erlang.process_flag("trap_exit", True)
    yield


@pytest.fixture
def release(node: Node) -> Iterator[threading.Event]:
    """Set at teardown, whatever happened, so that no stuck worker keeps spinning."""
    event = threading.Event()
    try:
        yield event
    finally:
        event.set()


# -- start_link and init --------------------------------------------------------------------------


def test_start_link_without_name_returns_ok_pid(me: Pid) -> None:
    result = supervisor.start_link(Sup, sup_init("one_for_one", [spec("a", me)]))
    assert type(result) is tuple and len(result) == 2 and result[0] == "ok"
    sup = result[1]
    assert type(sup) is Pid and erlang.is_process_alive(sup)
    assert sup in erlang.process_info(me, "links")[1]
    started("a")


def test_start_link_with_local_name_registers_it(me: Pid, trapping: None) -> None:
    result = supervisor.start_link(("local", "my_sup"), Sup, sup_init("one_for_one", []))
    assert type(result) is tuple and result[0] == "ok" and type(result[1]) is Pid
    assert erlang.whereis("my_sup") == result[1]
    assert supervisor.which_children("my_sup") == []
    assert supervisor.start_child("my_sup", spec("a", me))[0] == "ok"
    assert list(children("my_sup")) == ["a"]
    again = supervisor.start_link(("local", "my_sup"), Sup, sup_init("one_for_one", []))
    assert again == ("error", ("already_started", result[1]))


def test_init_ignore_returns_ignore(me: Pid) -> None:
    before = set(erlang.processes())
    assert supervisor.start_link(Sup, "ignore") == "ignore"
    wait_until(lambda: set(erlang.processes()) <= before)


def test_init_bad_return_is_an_error(trapping: None) -> None:
    result = supervisor.start_link(Sup, ("ok", "not flags and specs"))
    assert result[0] == "error"
    assert result[1][0] == "bad_return"
    assert result[1][1][1:] == ("init", ("ok", "not flags and specs"))


def test_children_start_in_order_and_stop_in_reverse_order(me: Pid) -> None:
    names = ["a", "b", "c", "d"]
    sup = start_sup("one_for_one", [spec(n, me, {"trap": True}) for n in names])
    assert [name for _, name, _ in events(4)] == names
    pids = children(sup)
    assert gen_server.stop(sup) == "ok"
    assert events(4) == [("terminated", n, "shutdown") for n in reversed(names)]
    assert not erlang.is_process_alive(sup)
    assert not any(erlang.is_process_alive(p) for p in pids.values())


def test_child_failing_to_start_in_init_stops_the_started_ones(me: Pid, trapping: None) -> None:
    specs = [spec("a", me, {"trap": True}), spec("b", me, {"trap": True}),
             spec("bad", me, {"init": ("stop", "boom")}), spec("c", me)]
    result = supervisor.start_link(Sup, sup_init("one_for_one", specs))
    assert result == ("error", ("shutdown", ("failed_to_start_child", "bad", "boom")))
    assert events(4) == [("started", "a", None), ("started", "b", None),
                         ("terminated", "b", "shutdown"), ("terminated", "a", "shutdown")]
    no_message(is_event)  # c was never started


def test_invalid_child_spec_in_init_is_a_start_spec_error(me: Pid, trapping: None) -> None:
    specs = [spec("a", me), spec("b", me, restart="sometimes")]
    result = supervisor.start_link(Sup, sup_init("one_for_one", specs))
    assert result == ("error", ("start_spec", ("invalid_restart_type", "sometimes")))
    no_message(is_event)  # nothing is started when a spec is invalid


def test_duplicate_child_ids_in_init_are_a_start_spec_error(me: Pid, trapping: None) -> None:
    result = supervisor.start_link(Sup, sup_init("one_for_one", [spec("a", me), spec("a", me)]))
    assert result == ("error", ("start_spec", ("duplicate_child_name", "a")))


@pytest.mark.parametrize(("flags", "reason"), [
    ({"strategy": "one_for_some"}, ("invalid_strategy", "one_for_some")),
    ({"strategy": "one_for_one", "intensity": -1}, ("invalid_intensity", -1)),
    ({"strategy": "one_for_one", "intensity": "many"}, ("invalid_intensity", "many")),
    ({"strategy": "one_for_one", "period": 0}, ("invalid_period", 0)),
    (("all_for_none", 1, 5), ("invalid_strategy", "all_for_none")),
    (("one_for_one", 1, -5), ("invalid_period", -5)),
    ("one_for_one", ("invalid_type", "one_for_one")),
])
def test_invalid_flags_are_a_supervisor_data_error(trapping: None, flags: Any,
                                                   reason: Any) -> None:
    assert supervisor.start_link(Sup, ("ok", (flags, []))) == \
        ("error", ("supervisor_data", reason))


def test_simple_one_for_one_needs_exactly_one_spec(me: Pid, trapping: None) -> None:
    specs = [spec("a", me), spec("b", me)]
    result = supervisor.start_link(Sup, sup_init("simple_one_for_one", specs))
    assert result == ("error", ("bad_start_spec", specs))


def test_flag_defaults_are_one_for_one_intensity_1(me: Pid, trapping: None) -> None:
    result = supervisor.start_link(Sup, ("ok", ({}, [spec("a", me)])))
    assert result[0] == "ok"
    sup = result[1]
    mref = erlang.monitor("process", sup)
    kill_and_wait(started("a"))
    started("a")  # one restart is allowed
    kill_and_wait(children(sup)["a"])
    assert recv(down_of(mref))[4] == "shutdown"  # the second is one too many


# -- restart strategies -------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_crashed_child(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec(n, me) for n in "abc"], intensity=3)
    events(3)
    before = children(sup)
    kill_and_wait(before["b"])
    new_b = started("b")
    no_message(is_event)
    after = children(sup)
    assert after["b"] == new_b and new_b != before["b"]
    assert erlang.is_process_alive(new_b)
    assert after["a"] == before["a"] and after["c"] == before["c"]


def test_one_for_all_restarts_all_children(me: Pid) -> None:
    sup = start_sup("one_for_all", [spec(n, me, {"trap": True}) for n in "abc"], intensity=3)
    events(3)
    before = children(sup)
    kill_and_wait(before["b"])
    # the others are stopped in reverse start order, then all start again in order
    assert events(5) == [("terminated", "c", "shutdown"), ("terminated", "a", "shutdown"),
                         ("started", "a", None), ("started", "b", None),
                         ("started", "c", None)]
    after = children(sup)
    for name in "abc":
        assert after[name] != before[name]
        assert not erlang.is_process_alive(before[name])
        assert erlang.is_process_alive(after[name])


def test_one_for_all_drops_temporary_siblings(me: Pid) -> None:
    specs = [spec("a", me), spec("tmp", me, {"trap": True}, restart="temporary"), spec("c", me)]
    sup = start_sup("one_for_all", specs, intensity=3)
    events(3)
    kill_and_wait(children(sup)["a"])
    assert events(3) == [("terminated", "tmp", "shutdown"), ("started", "a", None),
                         ("started", "c", None)]
    assert sorted(children(sup)) == ["a", "c"]


def test_rest_for_one_restarts_the_crashed_child_and_those_after_it(me: Pid) -> None:
    sup = start_sup("rest_for_one", [spec(n, me, {"trap": True}) for n in "abcd"], intensity=3)
    events(4)
    before = children(sup)
    kill_and_wait(before["b"])
    assert events(5) == [("terminated", "d", "shutdown"), ("terminated", "c", "shutdown"),
                         ("started", "b", None), ("started", "c", None),
                         ("started", "d", None)]
    no_message(is_event)
    after = children(sup)
    assert after["a"] == before["a"]
    for name in "bcd":
        assert after[name] != before[name] and erlang.is_process_alive(after[name])


def test_rest_for_one_last_child_restarts_alone(me: Pid) -> None:
    sup = start_sup("rest_for_one", [spec(n, me, {"trap": True}) for n in "abc"], intensity=3)
    events(3)
    before = children(sup)
    kill_and_wait(before["c"])
    assert events(1) == [("started", "c", None)]
    no_message(is_event)
    after = children(sup)
    assert (after["a"], after["b"]) == (before["a"], before["b"])


def test_dynamically_added_children_come_after_the_others(me: Pid) -> None:
    sup = start_sup("rest_for_one", [spec("a", me)], intensity=5)
    started("a")
    assert supervisor.start_child(sup, spec("b", me))[0] == "ok"
    started("b")
    kill_and_wait(children(sup)["a"])  # b comes after a: both restart
    assert [name for _, name, _ in events(2)] == ["a", "b"]
    kill_and_wait(children(sup)["b"])  # a comes before b: it keeps running
    assert events(1) == [("started", "b", None)]
    no_message(is_event)


# -- restart types ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "done")])
def test_transient_child_is_not_restarted_after_a_quiet_exit(me: Pid, reason: Any) -> None:
    sup = start_sup("one_for_one", [spec("t", me, restart="transient")], intensity=5)
    pid = started("t")
    mref = erlang.monitor("process", pid)
    gen_server.cast(pid, ("stop", reason))
    assert recv(down_of(mref))[4] == reason
    no_message(is_start)
    # the spec is kept, without a process
    assert supervisor.which_children(sup) == [("t", "undefined", "worker", [Worker])]
    assert supervisor.count_children(sup)[:2] == [("specs", 1), ("active", 0)]


def test_transient_child_is_restarted_after_a_crash(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("t", me, restart="transient")], intensity=5)
    pid = started("t")
    mref = erlang.monitor("process", pid)
    gen_server.cast(pid, ("stop", "crashed"))
    assert recv(down_of(mref))[4] == "crashed"
    new = started("t")
    assert new != pid and children(sup) == {"t": new}


@pytest.mark.parametrize("reason", ["normal", "crashed"])
def test_temporary_child_is_never_restarted_and_is_removed(me: Pid, reason: str) -> None:
    specs = [spec("tmp", me, restart="temporary"), spec("p", me)]
    sup = start_sup("one_for_one", specs, intensity=5)
    pid = started("tmp")
    started("p")
    mref = erlang.monitor("process", pid)
    gen_server.cast(pid, ("stop", reason))
    assert recv(down_of(mref))[4] == reason
    no_message(is_start)
    wait_until(lambda: "tmp" not in children(sup))
    assert list(children(sup)) == ["p"]
    assert supervisor.get_childspec(sup, "tmp") == ("error", "not_found")
    assert supervisor.restart_child(sup, "tmp") == ("error", "not_found")


def test_permanent_child_is_restarted_even_after_a_normal_exit(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("p", me)], intensity=5)
    pid = started("p")
    gen_server.cast(pid, ("stop", "normal"))
    new = started("p")
    assert new != pid and children(sup) == {"p": new}


# -- restart intensity ------------------------------------------------------------------------


def test_intensity_restarts_within_period_are_tolerated(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("a", me), spec("b", me)], intensity=3, period=5)
    pid = started("a")
    started("b")
    for _ in range(3):
        kill_and_wait(pid)
        pid = started("a")
    assert erlang.is_process_alive(sup)
    assert children(sup)["a"] == pid
    assert supervisor.which_children(sup)  # still answers calls


def test_more_than_intensity_restarts_shut_the_supervisor_down(me: Pid, trapping: None) -> None:
    specs = [spec("a", me, {"trap": True}), spec("b", me), spec("c", me, {"trap": True})]
    sup = start_sup("one_for_one", specs, intensity=2, period=5)
    events(3)
    mref = erlang.monitor("process", sup)
    for _ in range(2):
        kill_and_wait(children(sup)["b"])
        started("b")
    others = children(sup)
    kill_and_wait(others["b"])
    # the remaining children are stopped in reverse order, b is not restarted
    assert events(2) == [("terminated", "c", "shutdown"), ("terminated", "a", "shutdown")]
    assert recv(down_of(mref))[4] == "shutdown"
    assert recv(exit_from(sup))[2] == "shutdown"
    no_message(is_event)
    assert not any(erlang.is_process_alive(p) for p in others.values())


def test_intensity_zero_gives_up_at_the_first_exit(me: Pid, trapping: None) -> None:
    sup = start_sup("one_for_one", [spec("a", me)], intensity=0)
    mref = erlang.monitor("process", sup)
    kill_and_wait(started("a"))
    assert recv(down_of(mref))[4] == "shutdown"
    no_message(is_event)


def test_restarts_older_than_the_period_do_not_count(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("a", me)], intensity=1, period=1)
    kill_and_wait(started("a"))
    pid = started("a")
    no_message(timeout=1200)  # let the first restart leave the 1 s window
    kill_and_wait(pid)
    pid = started("a")
    assert erlang.is_process_alive(sup)
    assert children(sup) == {"a": pid}


# -- supervision trees: escalation --------------------------------------------------------------


def sub_spec(name: str, init: Any, **fields: Any) -> dict[str, Any]:
    return {"id": name, "start": (supervisor.start_link, [Sup, init]),
            "type": "supervisor", "modules": [Sup], **fields}


def test_child_supervisor_over_its_intensity_is_restarted_by_its_parent(me: Pid) -> None:
    sub = sub_spec("sub", sup_init("one_for_one", [spec("x", me), spec("y", me)], intensity=1))
    top = start_sup("one_for_one", [spec("w", me), sub], intensity=5)
    assert [name for _, name, _ in events(3)] == ["w", "x", "y"]
    before = children(top)
    sub_ref = erlang.monitor("process", before["sub"])
    kill_and_wait(children(before["sub"])["x"])
    started("x")
    kill_and_wait(children(before["sub"])["x"])  # the second restart is one too many
    assert recv(down_of(sub_ref))[4] == "shutdown"
    assert [name for _, name, _ in events(2)] == ["x", "y"]  # from the new sub
    after = children(top)
    assert after["w"] == before["w"]
    assert after["sub"] != before["sub"] and erlang.is_process_alive(after["sub"])
    assert sorted(children(after["sub"])) == ["x", "y"]


def test_parent_gives_up_when_its_own_intensity_is_exceeded(me: Pid, trapping: None) -> None:
    sub = sub_spec("sub", sup_init("one_for_one", [spec("x", me)], intensity=0))
    top = start_sup("one_for_one", [spec("w", me, {"trap": True}), sub], intensity=0)
    events(2)
    top_children = children(top)
    sub_pid = top_children["sub"]
    x = children(sub_pid)["x"]
    top_ref = erlang.monitor("process", top)
    sub_ref = erlang.monitor("process", sub_pid)
    kill_and_wait(x)
    assert recv(down_of(sub_ref))[4] == "shutdown"
    assert terminated("w") == "shutdown"
    assert recv(down_of(top_ref))[4] == "shutdown"
    assert not erlang.is_process_alive(top_children["w"])
    no_message(is_event)


# -- shutdown ---------------------------------------------------------------------------------


def test_shutdown_reaches_a_trapping_child_as_terminate_shutdown(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("a", me, {"trap": True}, shutdown=2000)])
    pid = started("a")
    mref = erlang.monitor("process", pid)
    assert supervisor.terminate_child(sup, "a") == "ok"
    assert terminated("a") == "shutdown"
    assert recv(down_of(mref))[4] == "shutdown"
    assert children(sup) == {"a": "undefined"}


def test_shutdown_kills_a_non_trapping_child_with_reason_shutdown(node: Node, me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("a", me)])
    pid = started("a")
    mref = erlang.monitor("process", pid)
    result, _ = within(node, 2.0, lambda: supervisor.terminate_child(sup, "a"))
    assert result == "ok"  # at once, not after the 5000 ms default shutdown time
    assert recv(down_of(mref))[4] == "shutdown"
    no_message(is_event)  # a non-trapping gen_server does not run terminate


def test_child_stuck_in_terminate_is_killed_after_its_shutdown_time(
        node: Node, me: Pid, release: threading.Event) -> None:
    opts = {"trap": True, "stuck_terminate": True, "release": release}
    sup = start_sup("one_for_one", [spec("a", me, opts, shutdown=100)])
    pid = started("a")
    mref = erlang.monitor("process", pid)
    result, elapsed = within(node, 3.0, lambda: supervisor.terminate_child(sup, "a"))
    assert result == "ok"
    assert elapsed >= 0.09  # it was given its 100 ms
    assert terminated("a") == "shutdown"  # it was asked politely first
    assert recv(down_of(mref))[4] == "killed"
    assert not erlang.is_process_alive(pid)
    assert not release.is_set()  # the kill, not the release, ended it
    assert supervisor.which_children(sup) == [("a", "undefined", "worker", [Worker])]


def test_child_stuck_in_handle_info_is_killed_when_the_supervisor_stops(
        node: Node, me: Pid, release: threading.Event) -> None:
    opts = {"trap": True, "release": release}
    specs = [spec("a", me, {"trap": True}), spec("stuck", me, opts, shutdown=100)]
    sup = start_sup("one_for_one", specs)
    events(2)
    stuck = children(sup)["stuck"]
    mref = erlang.monitor("process", stuck)
    erlang.send(stuck, "block")
    recv(lambda m: type(m) is tuple and m[:2] == ("blocking", "stuck"))
    assert within(node, 3.0, lambda: gen_server.stop(sup))[0] == "ok"
    assert recv(down_of(mref))[4] == "killed"
    # the stuck child never ran terminate; the other one was then stopped normally
    assert events(1) == [("terminated", "a", "shutdown")]
    assert not erlang.is_process_alive(sup) and not erlang.is_process_alive(stuck)


def test_brutal_kill_kills_at_once_without_terminate(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("a", me, {"trap": True}, shutdown="brutal_kill")])
    pid = started("a")
    mref = erlang.monitor("process", pid)
    assert supervisor.terminate_child(sup, "a") == "ok"
    assert recv(down_of(mref))[4] == "killed"
    no_message(is_event)  # a trapping child would have run terminate on a shutdown signal


def test_brutal_kill_kills_even_a_stuck_child_at_once(
        node: Node, me: Pid, release: threading.Event) -> None:
    opts = {"trap": True, "release": release}
    sup = start_sup("one_for_one", [spec("a", me, opts, shutdown="brutal_kill")])
    pid = started("a")
    mref = erlang.monitor("process", pid)
    erlang.send(pid, "block")
    recv(lambda m: type(m) is tuple and m[:2] == ("blocking", "a"))
    assert within(node, 1.0, lambda: supervisor.terminate_child(sup, "a"))[0] == "ok"
    assert recv(down_of(mref))[4] == "killed"
    assert not erlang.is_process_alive(pid)


# -- the child API ------------------------------------------------------------------------------


def test_start_child_return_values(me: Pid) -> None:
    sup = start_sup("one_for_one", [])
    result = supervisor.start_child(sup, spec("a", me))
    pid = started("a")
    assert result == ("ok", pid)
    assert supervisor.start_child(sup, spec("a", me)) == ("error", ("already_started", pid))
    assert supervisor.terminate_child(sup, "a") == "ok"
    assert supervisor.start_child(sup, spec("a", me)) == ("error", "already_present")
    no_message(is_event)


@pytest.mark.parametrize(("bad", "reason"), [
    ({"start": (start_worker, [])}, "missing_id"),
    ({"id": "x"}, "missing_start"),
    ({"id": "x", "start": (start_worker, []), "restart": "always"},
     ("invalid_restart_type", "always")),
    ({"id": "x", "start": (start_worker, []), "shutdown": -1}, ("invalid_shutdown", -1)),
    ({"id": "x", "start": (start_worker, []), "type": "manager"},
     ("invalid_child_type", "manager")),
    ({"id": "x", "start": "start_worker"}, ("invalid_mfa", "start_worker")),
])
def test_start_child_with_an_invalid_spec_is_an_error(me: Pid, bad: Any, reason: Any) -> None:
    sup = start_sup("one_for_one", [])
    assert supervisor.start_child(sup, bad) == ("error", reason)
    assert supervisor.which_children(sup) == []
    assert erlang.is_process_alive(sup)


def error_carries(result: Any, reason: Any) -> bool:
    """OTP's start_child answers {error, Error}, Error holding the reason (and the spec)."""
    if type(result) is not tuple or len(result) != 2 or result[0] != "error":
        return False
    err = result[1]
    return err == reason or (type(err) is tuple and len(err) >= 1 and err[0] == reason)


def test_start_child_whose_start_fails_is_an_error_and_is_forgotten(me: Pid) -> None:
    sup = start_sup("one_for_one", [])
    result = supervisor.start_child(sup, spec("a", me, {"init": ("stop", "boom")}))
    assert error_carries(result, "boom"), result
    assert supervisor.which_children(sup) == []  # the spec is discarded
    result = supervisor.start_child(sup, {"id": "r", "start": (raising_start, [])})
    assert result[0] == "error", result
    assert erlang.is_process_alive(sup)
    assert supervisor.which_children(sup) == []
    result = supervisor.start_child(sup, {"id": "n", "start": (lambda: 42, [])})
    assert error_carries(result, 42), result
    # the id is free again
    assert supervisor.start_child(sup, spec("a", me)) == ("ok", started("a"))


def test_start_child_that_ignores(me: Pid) -> None:
    sup = start_sup("one_for_one", [])
    assert supervisor.start_child(sup, spec("p", me, {"init": "ignore"})) == ("ok", "undefined")
    assert supervisor.which_children(sup) == [("p", "undefined", "worker", [Worker])]
    temp = spec("t", me, {"init": "ignore"}, restart="temporary")
    assert supervisor.start_child(sup, temp) == ("ok", "undefined")
    assert list(children(sup)) == ["p"]  # a temporary child that ignores is not kept


def test_temporary_child_that_ignores_in_init_is_not_kept(me: Pid) -> None:
    specs = [spec("t", me, {"init": "ignore"}, restart="temporary"),
             spec("p", me, {"init": "ignore"})]
    sup = start_sup("one_for_one", specs)
    assert supervisor.which_children(sup) == [("p", "undefined", "worker", [Worker])]


def test_terminate_restart_and_delete_child(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("a", me, {"trap": True})])
    pid = started("a")
    assert supervisor.restart_child(sup, "a") == ("error", "running")
    assert supervisor.delete_child(sup, "a") == ("error", "running")
    assert supervisor.terminate_child(sup, "a") == "ok"
    assert terminated("a") == "shutdown"
    assert not erlang.is_process_alive(pid)
    assert supervisor.terminate_child(sup, "a") == "ok"  # already stopped: still ok
    result = supervisor.restart_child(sup, "a")
    new = started("a")
    assert result == ("ok", new) and new != pid
    # OTP (child_adm): a static child is named by its id only; its pid names no child
    assert supervisor.terminate_child(sup, new) == ("error", "not_found")
    assert erlang.is_process_alive(new)
    assert supervisor.terminate_child(sup, "a") == "ok"
    assert terminated("a") == "shutdown"
    assert supervisor.delete_child(sup, "a") == "ok"
    assert supervisor.which_children(sup) == []
    assert supervisor.terminate_child(sup, "a") == ("error", "not_found")
    assert supervisor.restart_child(sup, "a") == ("error", "not_found")
    assert supervisor.delete_child(sup, "a") == ("error", "not_found")
    assert supervisor.get_childspec(sup, "a") == ("error", "not_found")


def test_terminate_child_of_a_temporary_child_deletes_its_spec(me: Pid) -> None:
    sup = start_sup("one_for_one", [spec("t", me, restart="temporary")])
    started("t")
    assert supervisor.terminate_child(sup, "t") == "ok"
    assert supervisor.which_children(sup) == []
    assert supervisor.restart_child(sup, "t") == ("error", "not_found")


def test_which_children_shape(me: Pid) -> None:
    specs = [spec("a", me), spec("b", me, {"init": "ignore"}),
             sub_spec("sub", sup_init("one_for_one", []))]
    sup = start_sup("one_for_one", specs)
    a = started("a")
    rows = supervisor.which_children(sup)
    assert isinstance(rows, list) and all(type(r) is tuple and len(r) == 4 for r in rows)
    by_id = {r[0]: r for r in rows}
    assert set(by_id) == {"a", "b", "sub"}
    assert by_id["a"] == ("a", a, "worker", [Worker])
    assert by_id["b"] == ("b", "undefined", "worker", [Worker])
    sub = by_id["sub"][1]
    assert type(sub) is Pid and erlang.is_process_alive(sub)
    assert by_id["sub"] == ("sub", sub, "supervisor", [Sup])


def test_count_children(me: Pid) -> None:
    specs = [spec("a", me), spec("b", me), sub_spec("sub", sup_init("one_for_one", []))]
    sup = start_sup("one_for_one", specs)
    events(2)
    assert supervisor.count_children(sup) == [
        ("specs", 3), ("active", 3), ("supervisors", 1), ("workers", 2)]
    assert supervisor.terminate_child(sup, "b") == "ok"
    assert supervisor.terminate_child(sup, "sub") == "ok"
    assert supervisor.count_children(sup) == [
        ("specs", 3), ("active", 1), ("supervisors", 1), ("workers", 2)]


def test_get_childspec_fills_in_otp_defaults(me: Pid) -> None:
    start = (Worker, "start_link", [me, "a", {}])
    specs = [{"id": "a", "start": start},
             {"id": "sub", "start": (supervisor.start_link, [Sup, sup_init("one_for_one", [])]),
              "type": "supervisor"}]
    sup = start_sup("one_for_one", specs)
    pid = started("a")
    ok, got = supervisor.get_childspec(sup, "a")
    assert ok == "ok" and isinstance(got, dict)
    assert {k: got[k] for k in ("id", "start", "restart", "shutdown", "type", "modules")} == {
        "id": "a", "start": start, "restart": "permanent", "shutdown": 5000,
        "type": "worker", "modules": [Worker]}
    # OTP: a static child is found by its id only
    assert supervisor.get_childspec(sup, pid) == ("error", "not_found")
    ok, sub = supervisor.get_childspec(sup, "sub")
    assert ok == "ok"
    assert (sub["type"], sub["shutdown"], sub["restart"]) == ("supervisor", "infinity",
                                                              "permanent")
    assert supervisor.get_childspec(sup, "nope") == ("error", "not_found")


GOOD = {"id": "x", "start": (start_worker, [])}


@pytest.mark.parametrize(("specs", "expected"), [
    ([], "ok"),
    ([GOOD, {**GOOD, "id": "y"}], "ok"),
    ([("x", (Worker, "start_link", []), "transient", "brutal_kill", "worker", "dynamic")],
     "ok"),
    ([{"start": (start_worker, [])}], ("error", "missing_id")),
    ([{"id": "x"}], ("error", "missing_start")),
    ([{**GOOD, "restart": "often"}], ("error", ("invalid_restart_type", "often"))),
    ([{**GOOD, "shutdown": "later"}], ("error", ("invalid_shutdown", "later"))),
    ([{**GOOD, "shutdown": -1}], ("error", ("invalid_shutdown", -1))),
    ([{**GOOD, "type": "boss"}], ("error", ("invalid_child_type", "boss"))),
    ([{**GOOD, "start": (Worker, "no_such_function", [])}],
     ("error", ("invalid_mfa", (Worker, "no_such_function", [])))),
    ([{**GOOD, "start": (start_worker, "not a list")}],
     ("error", ("invalid_mfa", (start_worker, "not a list")))),
    ([GOOD, GOOD], ("error", ("duplicate_child_name", "x"))),
    ([("x", (start_worker, []), "never", 5000, "worker", [])],
     ("error", ("invalid_restart_type", "never"))),
])
def test_check_childspecs(node: Node, specs: list[Any], expected: Any) -> None:
    assert supervisor.check_childspecs(specs) == expected


def test_tuple_forms_of_flags_and_child_specs(me: Pid) -> None:
    start = (start_worker, [me, "a", {"trap": True}])
    child = ("a", start, "transient", 300, "worker", [Worker])
    result = supervisor.start_link(Sup, ("ok", (("one_for_all", 2, 10), [child])))
    assert result[0] == "ok"
    sup = result[1]
    pid = started("a")
    ok, got = supervisor.get_childspec(sup, "a")
    assert ok == "ok"
    assert (got["id"], got["start"], got["restart"], got["shutdown"], got["type"],
            got["modules"]) == child
    assert supervisor.which_children(sup) == [("a", pid, "worker", [Worker])]
    assert supervisor.terminate_child(sup, "a") == "ok"
    assert terminated("a") == "shutdown"


def test_start_forms_module_function_args_and_callable_args(me: Pid) -> None:
    this_module = sys.modules[__name__]
    specs = [{"id": "class", "start": (Worker, "start_link", [me, "class"])},
             {"id": "module", "start": (this_module, "start_worker", [me, "module"])},
             {"id": "callable", "start": (start_worker, [me, "callable", {}])},
             {"id": "lambda", "start": (lambda who: start_worker(me, who), ["lambda"])}]
    sup = start_sup("one_for_one", specs)
    pids = {name: started(name) for name in ("class", "module", "callable", "lambda")}
    assert children(sup) == pids


# -- simple_one_for_one ---------------------------------------------------------------------------


def simple_sup(me: Pid, **fields: Any) -> Pid:
    """A simple_one_for_one supervisor whose template starts Worker(me, *extra_args)."""
    template = {"id": "template", "start": (start_worker, [me]), "modules": [Worker], **fields}
    return start_sup("simple_one_for_one", [template], intensity=5)


def test_simple_one_for_one_starts_nothing_and_appends_extra_args(me: Pid) -> None:
    sup = simple_sup(me)
    no_message(is_event)
    assert supervisor.which_children(sup) == []
    result = supervisor.start_child(sup, ["x", {"trap": True}])
    x = started("x")  # start_worker(me) + ["x", ...]: the name comes from the extra args
    assert result == ("ok", x)
    result = supervisor.start_child(sup, ["y"])
    y = started("y")
    assert result == ("ok", y)
    rows = supervisor.which_children(sup)
    assert sorted(rows, key=lambda r: r[1]) == sorted(
        [("undefined", x, "worker", [Worker]), ("undefined", y, "worker", [Worker])],
        key=lambda r: r[1])
    assert supervisor.count_children(sup) == [
        ("specs", 1), ("active", 2), ("supervisors", 0), ("workers", 2)]
    assert supervisor.get_childspec(sup, x)[0] == "ok"
    assert supervisor.get_childspec(sup, x)[1]["id"] == "template"


def test_simple_one_for_one_terminate_child(me: Pid) -> None:
    sup = simple_sup(me)
    assert supervisor.start_child(sup, ["x", {"trap": True}])[0] == "ok"
    x = started("x")
    assert supervisor.start_child(sup, ["y"])[0] == "ok"
    y = started("y")
    assert supervisor.terminate_child(sup, "template") == ("error", "simple_one_for_one")
    assert supervisor.terminate_child(sup, x) == "ok"
    assert terminated("x") == "shutdown"
    assert not erlang.is_process_alive(x)
    assert supervisor.which_children(sup) == [("undefined", y, "worker", [Worker])]
    assert supervisor.terminate_child(sup, erlang.self()) == ("error", "not_found")
    assert supervisor.restart_child(sup, "template") == ("error", "simple_one_for_one")
    assert supervisor.delete_child(sup, "template") == ("error", "simple_one_for_one")


def test_simple_one_for_one_restarts_a_crashed_child_with_its_args(me: Pid) -> None:
    sup = simple_sup(me)
    supervisor.start_child(sup, ["x", {"trap": True}])
    x = started("x")
    supervisor.start_child(sup, ["y"])
    y = started("y")
    kill_and_wait(x)
    new_x = started("x")  # same extra args: same name, and trapping again
    assert new_x != x
    assert {r[1] for r in supervisor.which_children(sup)} == {new_x, y}
    assert supervisor.terminate_child(sup, new_x) == "ok"
    assert terminated("x") == "shutdown"


def test_simple_one_for_one_transient_children_are_not_restarted_on_normal_exit(me: Pid) -> None:
    sup = simple_sup(me, restart="transient")
    supervisor.start_child(sup, ["x"])
    x = started("x")
    mref = erlang.monitor("process", x)
    gen_server.cast(x, ("stop", "normal"))
    recv(down_of(mref))
    no_message(is_start)
    wait_until(lambda: supervisor.which_children(sup) == [])


def test_simple_one_for_one_stop_stops_every_child(me: Pid) -> None:
    sup = simple_sup(me)
    pids = []
    for name in ("x", "y", "z"):
        supervisor.start_child(sup, [name, {"trap": True}])
        pids.append(started(name))
    assert gen_server.stop(sup) == "ok"
    assert sorted(name for _, name, _ in events(3)) == ["x", "y", "z"]
    assert not any(erlang.is_process_alive(p) for p in pids)


def test_simple_one_for_one_start_failure_is_returned(me: Pid) -> None:
    sup = simple_sup(me)
    result = supervisor.start_child(sup, ["bad", {"init": ("stop", "boom")}])
    assert error_carries(result, "boom"), result
    assert supervisor.which_children(sup) == []
    assert supervisor.start_child(sup, ["ignored", {"init": "ignore"}]) == ("ok", "undefined")
    assert supervisor.which_children(sup) == []


# -- reports ------------------------------------------------------------------------------------


def test_reports_go_to_the_supervisor_logger(me: Pid, trapping: None,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="supervision.supervisor")
    sup = start_sup("one_for_one", [spec("a", me)], intensity=1)
    mref = erlang.monitor("process", sup)
    kill_and_wait(started("a"))
    started("a")
    kill_and_wait(children(sup)["a"])
    assert recv(down_of(mref))[4] == "shutdown"
    ours = [r for r in caplog.records if r.name == "supervision.supervisor"]
    texts = [r.getMessage() for r in ours]
    terminated_reports = [t for t in texts if "child_terminated" in t]
    assert len(terminated_reports) == 2 and all("killed" in t for t in terminated_reports)
    assert any("reached_max_restart_intensity" in t for t in texts)
    assert all(r.levelno >= logging.ERROR for r in ours
               if "child_terminated" in r.getMessage())


def test_quiet_exits_of_transient_children_are_not_reported(
        me: Pid, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="supervision.supervisor")
    sup = start_sup("one_for_one", [spec("t", me, restart="transient")])
    pid = started("t")
    mref = erlang.monitor("process", pid)
    gen_server.cast(pid, ("stop", "normal"))
    recv(down_of(mref))
    wait_until(lambda: children(sup) == {"t": "undefined"})
    assert not [r for r in caplog.records
                if r.name == "supervision.supervisor" and "child_terminated" in r.getMessage()]



# -- bad input gets a clear error, and the supervisor lives on ---------------------------------


def test_simple_one_for_one_extra_args_must_be_a_list(me: Pid) -> None:
    sup = start_sup("simple_one_for_one", [spec("t", me)])
    assert supervisor.start_child(sup, 42) == ("error", ("badarg", 42))
    assert supervisor.which_children(sup) == []
    assert erlang.is_process_alive(sup)


def test_an_unhashable_child_id_is_refused(me: Pid) -> None:
    sup = start_sup("one_for_one", [])
    assert supervisor.start_child(sup, spec(["a", "list"], me)) == \
        ("error", ("invalid_child_id", ["a", "list"]))
    assert supervisor.terminate_child(sup, ["a", "list"]) == ("error", "not_found")
    assert supervisor.which_child(sup, ["a", "list"]) == ("error", "not_found")
    assert erlang.is_process_alive(sup)


def test_check_childspecs_refuses_an_unknown_auto_shutdown(me: Pid) -> None:
    assert supervisor.check_childspecs([spec("a", me)], "sometimes") == \
        ("error", ("badarg", "sometimes"))


def test_terminate_child_with_a_pid_of_another_node_is_not_found(me: Pid) -> None:
    sup = start_sup("simple_one_for_one", [spec("t", me)])
    stranger = Pid("elsewhere@host", 7, 0)
    assert supervisor.terminate_child(sup, stranger) == ("error", "not_found")
    assert erlang.is_process_alive(sup)
