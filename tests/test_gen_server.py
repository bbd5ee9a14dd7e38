"""gen_server, as OTP's gen_server defines it.

Most tests drive a `Probe` server: its behaviour comes from the init argument (a dict) and
from "commands" in the requests, so that a test can make a callback return exactly the
OTP-shaped tuple it is about. Every handle_info, handle_continue and terminate is reported
to the test process (the "owner") as a message, so that tests wait on events, not on time.
"""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

from actors import Exit, Node, Pid, erlang, gen_server, sys
from actors.gen_server import GenServer
from tests.helpers import down_of, exit_from, no_message, recv

Spec = dict[str, Any]


# -- the probe server ---------------------------------------------------------------------


def command(cmd: Any, state: Any) -> Any:
    """What handle_cast, handle_info and handle_continue do with a message or continue term:

    ("return", r) returns r as is; ("append", x) appends x to the state (a list);
    ("apply", f) returns f(state); anything else leaves the state alone.
    """
    if type(cmd) is tuple and len(cmd) == 2:
        if cmd[0] == "return":
            return cmd[1]
        if cmd[0] == "append":
            return ("noreply", [*state, cmd[1]])
        if cmd[0] == "apply":
            return cmd[1](state)
    return ("noreply", state)


class Probe(GenServer):
    """spec: "owner" (pid to report to), "state" (initial state), "init" (a function run
    as init, returning init's result), "trap_exit", "terminate" (a function run in terminate)."""

    def init(self, spec: Spec) -> Any:
        self.owner = spec["owner"]
        self.spec = spec
        if spec.get("trap_exit"):
            erlang.process_flag("trap_exit", True)
        if "init" in spec:
            return spec["init"]()
        return ("ok", spec.get("state", []))

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "get":
            return ("reply", state, state)
        if type(request) is tuple and request[0] == "return":
            return request[1]
        if type(request) is tuple and request[0] == "apply":
            return request[1](from_, state)
        return ("reply", ("echo", request), state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return command(msg, state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        erlang.send(self.owner, ("info", msg))
        return command(msg, state)

    def handle_continue(self, continue_: Any, state: Any) -> Any:
        erlang.send(self.owner, ("continue", continue_))
        return command(continue_, state)

    def terminate(self, reason: Any, state: Any) -> Any:
        erlang.send(self.owner, ("terminate", reason, state))
        if "terminate" in self.spec:
            self.spec["terminate"]()
        return "ok"


def spec(**kw: Any) -> Spec:
    return {"owner": erlang.self(), **kw}


def start_probe(*name: Any, **kw: Any) -> Pid:
    """Start an unlinked probe (a crash of it does not touch the test process)."""
    result = gen_server.start(*name, Probe, spec(**kw))
    assert type(result) is tuple and result[0] == "ok", result
    return result[1]


def tagged(tag: str) -> Callable[[Any], bool]:
    return lambda m: type(m) is tuple and len(m) >= 1 and m[0] == tag


def where(ref: Any, request: Any, timeout: Any) -> tuple[str, str, list[Any]]:
    return ("gen_server", "call", [ref, request, timeout])


def call_exit(ref: Any, request: Any, timeout: Any = 1000) -> Any:
    """The reason of the Exit that gen_server.call raises."""
    with pytest.raises(Exit) as info:
        gen_server.call(ref, request, timeout)
    return info.value.reason


def watch(pid: Pid) -> Any:
    return erlang.monitor("process", pid)


def down_reason(ref: Any) -> Any:
    return recv(down_of(ref))[4]


def report_pid_then(result: Any) -> Callable[[], Any]:
    """An init function that tells the owner its pid, then returns `result`."""
    owner = erlang.self()

    def init() -> Any:
        erlang.send(owner, ("init", erlang.self()))
        return result

    return init


def exit_on_go(reason: Any) -> None:
    """A process body: wait for "go", then exit with `reason`."""
    erlang.receive(lambda m: m == "go", 3000)
    erlang.exit(reason)


def send_by(kind: str) -> Callable[[Pid, Any], None]:
    """Deliver a command as a cast (handle_cast) or a plain message (handle_info)."""
    if kind == "cast":
        return lambda pid, msg: gen_server.cast(pid, msg)  # type: ignore[func-returns-value]
    return lambda pid, msg: erlang.send(pid, msg)  # type: ignore[func-returns-value]


# -- start and start_link -----------------------------------------------------------------


def test_start_returns_ok_pid_and_does_not_link(node: Node) -> None:
    result = gen_server.start(Probe, spec(state=1))
    assert result[0] == "ok" and type(result[1]) is Pid
    pid = result[1]
    assert erlang.is_process_alive(pid)
    assert pid not in erlang.process_info(erlang.self())["links"]
    assert gen_server.call(pid, "get") == 1


def test_start_link_returns_ok_pid_and_links_to_caller(node: Node) -> None:
    result = gen_server.start_link(Probe, spec(state=2))
    assert result[0] == "ok" and type(result[1]) is Pid
    pid = result[1]
    assert pid in erlang.process_info(erlang.self())["links"]
    assert erlang.self() in erlang.process_info(pid)["links"]
    assert gen_server.call(pid, "get") == 2


@pytest.mark.parametrize("starter", ["start", "start_link"])
def test_start_with_local_name_registers_it(node: Node, starter: str) -> None:
    result = getattr(gen_server, starter)(("local", "srv"), Probe, spec(state="named"))
    assert result[0] == "ok"
    assert erlang.whereis("srv") == result[1]
    assert gen_server.call("srv", "get") == "named"


@pytest.mark.parametrize("starter", ["start", "start_link"])
def test_start_with_global_name_registers_it(node: Node, starter: str) -> None:
    result = getattr(gen_server, starter)(("global", "gsrv"), Probe, spec(state="global"))
    assert result[0] == "ok"
    assert gen_server.call(("global", "gsrv"), "get") == "global"
    gen_server.cast(("global", "gsrv"), ("return", ("noreply", "cast")))
    assert gen_server.call(("global", "gsrv"), "get") == "cast"
    assert erlang.whereis("gsrv") == "undefined"  # a global name is not a local one


def test_start_with_options_list(node: Node) -> None:
    result = gen_server.start(("local", "opt"), Probe, spec(state=3), [("timeout", 1000)])
    assert result[0] == "ok" and erlang.whereis("opt") == result[1]


@pytest.mark.parametrize("name", [("local", "taken"), ("global", "taken")])
@pytest.mark.parametrize("starter", ["start", "start_link"])
def test_taken_name_gives_already_started_and_does_not_run_init(
        node: Node, name: Any, starter: str) -> None:
    first = gen_server.start(name, Probe, spec(init=report_pid_then(("ok", "first"))))
    assert first[0] == "ok"
    assert recv(tagged("init"))[1] == first[1]
    second = getattr(gen_server, starter)(name, Probe,
                                          spec(init=report_pid_then(("ok", "second"))))
    assert second == ("error", ("already_started", first[1]))
    no_message(tagged("init"))
    assert gen_server.call(name, "get") == "first"


def test_name_is_free_again_after_the_server_stops(node: Node) -> None:
    pid = start_probe(("local", "again"))
    assert gen_server.stop(pid) == "ok"
    assert erlang.whereis("again") == "undefined"
    pid2 = start_probe(("local", "again"))
    assert pid2 != pid and erlang.whereis("again") == pid2


def test_init_stop_returns_error_and_process_is_dead_on_return(node: Node) -> None:
    result = gen_server.start(("local", "st"), Probe, spec(init=report_pid_then(("stop", "no"))))
    assert result == ("error", "no")
    pid = recv(tagged("init"))[1]
    assert not erlang.is_process_alive(pid)
    assert erlang.whereis("st") == "undefined"
    no_message(tagged("terminate"))  # terminate is not called when init fails


@pytest.mark.parametrize(("init_result", "returned", "exit_reason"), [
    (("stop", "no"), ("error", "no"), "no"),
    (("error", "nope"), ("error", "nope"), "normal"),
    ("ignore", "ignore", "normal"),
])
def test_failed_init_with_start_link_leaves_no_exit_to_trapping_caller(
        node: Node, init_result: Any, returned: Any, exit_reason: Any) -> None:
    # OTP 26: {stop, R} exits with R; {error, R} and ignore exit normally; and proc_lib's
    # sync start unlinks and flushes that EXIT (flush_EXIT), so the caller never sees it.
    erlang.process_flag("trap_exit", True)
    result = gen_server.start_link(Probe, spec(init=report_pid_then(init_result)))
    assert result == returned
    pid = recv(tagged("init"))[1]
    assert not erlang.is_process_alive(pid)
    no_message(exit_from(pid))


def test_init_error_returns_error(node: Node) -> None:
    result = gen_server.start(Probe, spec(init=report_pid_then(("error", "bad_config"))))
    assert result == ("error", "bad_config")
    assert not erlang.is_process_alive(recv(tagged("init"))[1])


def test_init_ignore_returns_ignore(node: Node) -> None:
    result = gen_server.start(("local", "ign"), Probe, spec(init=report_pid_then("ignore")))
    assert result == "ignore"
    assert not erlang.is_process_alive(recv(tagged("init"))[1])
    assert erlang.whereis("ign") == "undefined"


def test_init_raising_returns_error_with_exception_and_stack(node: Node) -> None:
    def init() -> Any:
        raise ValueError("bad init")

    result = gen_server.start(Probe, spec(init=init))
    assert result[0] == "error"
    exc, stack = result[1]
    assert isinstance(exc, ValueError) and str(exc) == "bad init"
    assert isinstance(stack, list) and stack


def test_init_calling_exit_returns_error_with_that_reason(node: Node) -> None:
    def init() -> Any:
        erlang.exit("boom")

    assert gen_server.start(Probe, spec(init=init)) == ("error", "boom")


@pytest.mark.parametrize("bad", [("okay", 1), "ok", ("ok",), ("ok", 1, "soon"), None])
def test_init_bad_return_value(node: Node, bad: Any) -> None:
    result = gen_server.start(Probe, spec(init=report_pid_then(bad)))
    assert result == ("error", ("bad_return_value", bad))
    assert not erlang.is_process_alive(recv(tagged("init"))[1])


def test_start_timeout_returns_error_timeout_and_kills_the_process(node: Node) -> None:
    report = report_pid_then(None)

    def slow_init() -> Any:
        report()
        erlang.receive(lambda m: m == "never", 2000)
        return ("ok", "late")

    erlang.process_flag("trap_exit", True)
    t0 = time.monotonic()
    result = gen_server.start_link(("local", "slow"), Probe, spec(init=slow_init),
                                   [("timeout", 50)])
    assert result == ("error", "timeout")
    assert time.monotonic() - t0 < 1.0
    pid = recv(tagged("init"))[1]
    assert not erlang.is_process_alive(pid)
    assert erlang.whereis("slow") == "undefined"
    no_message(exit_from(pid))  # the starter does not see the killed process's EXIT


# -- init's timeout, hibernate and continue -----------------------------------------------


def test_init_timeout_delivers_timeout_to_handle_info(node: Node) -> None:
    pid = start_probe(init=lambda: ("ok", [], 150))
    no_message(tagged("info"), 60)  # not before its time
    assert recv(tagged("info")) == ("info", "timeout")
    no_message(tagged("info"), 200)  # and only once
    assert erlang.is_process_alive(pid)


def test_init_timeout_is_cancelled_by_a_message(node: Node) -> None:
    pid = start_probe(init=lambda: ("ok", [], 150))
    gen_server.cast(pid, ("append", "x"))
    assert gen_server.call(pid, "get") == ["x"]
    no_message(tagged("info"), 300)


def test_init_hibernate_and_infinity(node: Node) -> None:
    pid = start_probe(init=lambda: ("ok", "h", "hibernate"))
    assert gen_server.call(pid, "get") == "h"
    pid2 = start_probe(init=lambda: ("ok", "i", "infinity"))
    assert gen_server.call(pid2, "get") == "i"
    no_message(tagged("info"), 100)


def test_init_continue_runs_before_any_message(node: Node) -> None:
    def init() -> Any:
        # a message already queued before init returns still comes after the continue
        gen_server.cast(erlang.self(), ("append", "cast"))
        return ("ok", [], ("continue", ("append", "continued")))

    pid = start_probe(init=init)
    assert recv(tagged("continue")) == ("continue", ("append", "continued"))
    assert gen_server.call(pid, "get") == ["continued", "cast"]


# -- handle_call return shapes ------------------------------------------------------------


def test_call_reply_returns_reply_and_sets_state(node: Node) -> None:
    pid = start_probe(state="s0")
    assert gen_server.call(pid, ("return", ("reply", "r1", "s1"))) == "r1"
    assert gen_server.call(pid, "get") == "s1"


def test_call_with_infinity_timeout(node: Node) -> None:
    pid = start_probe(state="s0")
    assert gen_server.call(pid, "get", "infinity") == "s0"


def test_call_reply_with_timeout_delivers_timeout(node: Node) -> None:
    pid = start_probe()
    assert gen_server.call(pid, ("return", ("reply", "r", ["s"], 50))) == "r"
    assert recv(tagged("info")) == ("info", "timeout")
    assert gen_server.call(pid, "get") == ["s"]


def test_call_reply_with_timeout_is_cancelled_by_any_message(node: Node) -> None:
    pid = start_probe()
    assert gen_server.call(pid, ("return", ("reply", "r", [], 150))) == "r"
    gen_server.cast(pid, ("append", 1))
    no_message(tagged("info"), 300)
    assert gen_server.call(pid, "get") == [1]


def test_call_reply_with_hibernate(node: Node) -> None:
    pid = start_probe()
    assert gen_server.call(pid, ("return", ("reply", "r", "hib", "hibernate"))) == "r"
    assert gen_server.call(pid, "get") == "hib"


def test_call_reply_with_continue_runs_continue_before_next_message(node: Node) -> None:
    pid = start_probe()

    def handle(from_: Any, state: Any) -> Any:
        gen_server.cast(erlang.self(), ("append", "cast"))  # queued before the continue runs
        return ("reply", "r", ["call"], ("continue", ("append", "continued")))

    assert gen_server.call(pid, ("apply", handle)) == "r"
    assert recv(tagged("continue")) == ("continue", ("append", "continued"))
    assert gen_server.call(pid, "get") == ["call", "continued", "cast"]


def test_call_noreply_then_reply_from_a_later_callback(node: Node) -> None:
    owner = erlang.self()
    pid = start_probe()

    def park(from_: Any, state: Any) -> Any:
        erlang.send(owner, ("parked",))
        return ("noreply", from_)

    def client() -> None:
        erlang.send(owner, ("client_got", gen_server.call(pid, ("apply", park), 2000)))

    erlang.spawn(client)
    recv(tagged("parked"))
    no_message(tagged("client_got"))  # the reply really is deferred

    def release(from_: Any) -> Any:
        erlang.send(owner, ("reply_returned", gen_server.reply(from_, "later")))
        return ("noreply", [])

    gen_server.cast(pid, ("apply", release))
    assert recv(tagged("client_got")) == ("client_got", "later")
    assert recv(tagged("reply_returned")) == ("reply_returned", "ok")


def test_call_noreply_then_reply_from_another_process(node: Node) -> None:
    pid = start_probe(state="kept")

    def hand_off(from_: Any, state: Any) -> Any:
        erlang.spawn(gen_server.reply, from_, ("from", "helper"))
        return ("noreply", state)

    assert gen_server.call(pid, ("apply", hand_off), 2000) == ("from", "helper")
    assert gen_server.call(pid, "get") == "kept"


def test_call_noreply_with_timeout(node: Node) -> None:
    pid = start_probe()

    def handle(from_: Any, state: Any) -> Any:
        gen_server.reply(from_, "early")
        return ("noreply", ["n"], 50)

    assert gen_server.call(pid, ("apply", handle)) == "early"
    assert recv(tagged("info")) == ("info", "timeout")


def test_call_stop_with_reply(node: Node) -> None:
    pid = start_probe(state="s0")
    ref = watch(pid)
    assert gen_server.call(pid, ("return", ("stop", "bye", "last words", "s1"))) == "last words"
    assert recv(tagged("terminate")) == ("terminate", "bye", "s1")
    assert down_reason(ref) == "bye"


@pytest.mark.parametrize("reason", ["normal", "bye", ("shutdown", "done")])
def test_call_stop_without_reply_exits_the_caller(node: Node, reason: Any) -> None:
    pid = start_probe(state="s0")
    ref = watch(pid)
    request = ("return", ("stop", reason, "s1"))
    assert call_exit(pid, request, 1000) == (reason, where(pid, request, 1000))
    assert recv(tagged("terminate")) == ("terminate", reason, "s1")
    assert down_reason(ref) == reason


def test_call_stop_with_reply_reaches_a_linked_trapping_caller_first(node: Node) -> None:
    erlang.process_flag("trap_exit", True)
    pid = gen_server.start_link(Probe, spec())[1]
    assert gen_server.call(pid, ("return", ("stop", "bye", "reply", []))) == "reply"
    assert recv(exit_from(pid)) == ("EXIT", pid, "bye")


# -- handle_cast and handle_info return shapes --------------------------------------------


@pytest.mark.parametrize("kind", ["cast", "info"])
def test_noreply_sets_state(node: Node, kind: str) -> None:
    pid = start_probe(state="s0")
    send_by(kind)(pid, ("return", ("noreply", "s1")))
    assert gen_server.call(pid, "get") == "s1"


@pytest.mark.parametrize("kind", ["cast", "info"])
def test_noreply_with_timeout_delivers_timeout(node: Node, kind: str) -> None:
    pid = start_probe()
    send_by(kind)(pid, ("return", ("noreply", ["t"], 50)))
    assert recv(lambda m: m == ("info", "timeout")) == ("info", "timeout")
    assert gen_server.call(pid, "get") == ["t"]


@pytest.mark.parametrize("kind", ["cast", "info"])
def test_noreply_timeout_is_cancelled_by_a_message(node: Node, kind: str) -> None:
    pid = start_probe()
    send_by(kind)(pid, ("return", ("noreply", [], 150)))
    erlang.send(pid, "poke")  # any message cancels the timeout
    assert recv(lambda m: m == ("info", "poke")) == ("info", "poke")
    no_message(lambda m: m == ("info", "timeout"), 300)


def test_zero_timeout_fires_when_no_message_is_waiting(node: Node) -> None:
    pid = start_probe()
    gen_server.cast(pid, ("return", ("noreply", [], 0)))
    assert recv(tagged("info")) == ("info", "timeout")
    assert erlang.is_process_alive(pid)


@pytest.mark.parametrize("kind", ["cast", "info"])
def test_noreply_with_hibernate(node: Node, kind: str) -> None:
    pid = start_probe()
    send_by(kind)(pid, ("return", ("noreply", "hib", "hibernate")))
    assert gen_server.call(pid, "get") == "hib"


@pytest.mark.parametrize("kind", ["cast", "info"])
def test_noreply_with_continue(node: Node, kind: str) -> None:
    pid = start_probe()
    send_by(kind)(pid, ("return", ("noreply", ["a"], ("continue", ("append", "b")))))
    assert recv(tagged("continue")) == ("continue", ("append", "b"))
    assert gen_server.call(pid, "get") == ["a", "b"]


@pytest.mark.parametrize("kind", ["cast", "info"])
def test_stop_from_cast_or_info(node: Node, kind: str) -> None:
    pid = start_probe()
    ref = watch(pid)
    send_by(kind)(pid, ("return", ("stop", "done", "final")))
    assert recv(tagged("terminate")) == ("terminate", "done", "final")
    assert down_reason(ref) == "done"


@pytest.mark.parametrize("kind", ["cast", "info"])
def test_stop_normal_from_cast_or_info(node: Node, kind: str) -> None:
    erlang.process_flag("trap_exit", True)
    pid = gen_server.start_link(Probe, spec())[1]
    send_by(kind)(pid, ("return", ("stop", "normal", [])))
    assert recv(tagged("terminate")) == ("terminate", "normal", [])
    assert recv(exit_from(pid)) == ("EXIT", pid, "normal")


# -- handle_continue return shapes --------------------------------------------------------


def test_continue_chain(node: Node) -> None:
    first = ("return", ("noreply", ["a"], ("continue", ("append", "b"))))
    pid = start_probe(init=lambda: ("ok", [], ("continue", first)))
    assert recv(tagged("continue")) == ("continue", first)
    assert recv(tagged("continue")) == ("continue", ("append", "b"))
    assert gen_server.call(pid, "get") == ["a", "b"]


def test_continue_with_timeout(node: Node) -> None:
    start_probe(init=lambda: ("ok", [], ("continue", ("return", ("noreply", [], 50)))))
    assert recv(tagged("info")) == ("info", "timeout")


def test_continue_with_hibernate(node: Node) -> None:
    pid = start_probe(init=lambda: ("ok", [], ("continue", ("return", ("noreply", "h",
                                                                          "hibernate")))))
    assert gen_server.call(pid, "get") == "h"


def start_linked_trapping(init: Callable[[], Any]) -> Pid:
    """start_link a probe from a trapping test process (to see its EXIT without racing)."""
    erlang.process_flag("trap_exit", True)
    result = gen_server.start_link(Probe, spec(init=init))
    assert result[0] == "ok", result
    return result[1]


def test_continue_stop(node: Node) -> None:
    pid = start_linked_trapping(lambda: ("ok", "s", ("continue", ("return",
                                                                   ("stop", "cs", "s2")))))
    assert recv(tagged("terminate")) == ("terminate", "cs", "s2")
    assert recv(exit_from(pid)) == ("EXIT", pid, "cs")


# -- bad return values --------------------------------------------------------------------


@pytest.mark.parametrize("bad", [("bogus",), "ok", ("reply", 1), ("noreply",), None,
                                 ("stop", "r"), ("noreply", [], "soon")])
def test_bad_return_from_handle_call(node: Node, bad: Any) -> None:
    pid = start_probe(state="s")
    ref = watch(pid)
    request = ("return", bad)
    reason = ("bad_return_value", bad)
    assert call_exit(pid, request) == (reason, where(pid, request, 1000))
    assert recv(tagged("terminate")) == ("terminate", reason, "s")
    assert down_reason(ref) == reason


@pytest.mark.parametrize("kind", ["cast", "info"])
@pytest.mark.parametrize("bad", [("bogus",), "noreply", ("reply", 1, []), None,
                                 ("noreply", [], -1)])
def test_bad_return_from_cast_or_info(node: Node, kind: str, bad: Any) -> None:
    pid = start_probe(state="s")
    ref = watch(pid)
    send_by(kind)(pid, ("return", bad))
    reason = ("bad_return_value", bad)
    assert recv(tagged("terminate")) == ("terminate", reason, "s")
    assert down_reason(ref) == reason


def test_bad_return_from_continue(node: Node) -> None:
    pid = start_linked_trapping(lambda: ("ok", "s", ("continue", ("return", "nonsense"))))
    reason = ("bad_return_value", "nonsense")
    assert recv(tagged("terminate")) == ("terminate", reason, "s")
    assert recv(exit_from(pid)) == ("EXIT", pid, reason)


# -- how calls fail -----------------------------------------------------------------------


def test_call_to_dead_pid_is_noproc(node: Node) -> None:
    pid = start_probe()
    gen_server.stop(pid)
    assert call_exit(pid, "hello", 1000) == ("noproc", where(pid, "hello", 1000))


def test_call_to_unregistered_name_is_noproc(node: Node) -> None:
    assert call_exit("nobody", "hello", 1000) == ("noproc", where("nobody", "hello", 1000))
    ref = ("global", "nobody")
    assert call_exit(ref, "hello", 1000) == ("noproc", where(ref, "hello", 1000))


def test_call_timeout(node: Node) -> None:
    pid = start_probe(state="s")

    def slow(from_: Any, state: Any) -> Any:
        time.sleep(0.2)
        return ("reply", "too late", state)

    request = ("apply", slow)
    assert call_exit(pid, request, 50) == ("timeout", where(pid, request, 50))
    assert gen_server.call(pid, "get", 2000) == "s"  # the server lives on


def test_call_timeout_by_name_names_the_server_in_the_reason(node: Node) -> None:
    start_probe(("local", "slowpoke"))

    def slow(from_: Any, state: Any) -> Any:
        time.sleep(0.2)
        return ("reply", "too late", state)

    request = ("apply", slow)
    assert call_exit("slowpoke", request, 50) == ("timeout", where("slowpoke", request, 50))


def test_late_reply_after_timeout_is_dropped(node: Node) -> None:
    owner = erlang.self()
    pid = start_probe()

    def slow(from_: Any, state: Any) -> Any:
        time.sleep(0.2)
        gen_server.reply(from_, "late")
        erlang.send(owner, "replied")
        return ("noreply", state)

    assert call_exit(pid, ("apply", slow), 50)[0] == "timeout"
    recv(lambda m: m == "replied")
    assert erlang.receive(None, 100) is erlang.TIMEOUT


def test_call_when_server_is_killed_during_the_call(node: Node) -> None:
    owner = erlang.self()
    pid = start_probe()

    def block(from_: Any, state: Any) -> Any:
        erlang.send(owner, ("blocked",))
        erlang.receive(lambda m: m == "never", 3000)
        return ("reply", "unblocked", state)

    request = ("apply", block)

    def client() -> None:
        try:
            gen_server.call(pid, request, 2000)
            erlang.send(owner, ("client", "returned"))
        except Exit as e:
            erlang.send(owner, ("client", e.reason))

    erlang.spawn(client)
    recv(tagged("blocked"))
    erlang.exit(pid, "kill")
    assert recv(tagged("client")) == ("client", ("killed", where(pid, request, 2000)))


def test_call_when_server_raises_in_handle_call(node: Node) -> None:
    pid = start_probe(state="s")

    def crash(from_: Any, state: Any) -> Any:
        raise RuntimeError("boom")

    request = ("apply", crash)
    reason, location = call_exit(pid, request)
    assert location == where(pid, request, 1000)
    exc, stack = reason
    assert isinstance(exc, RuntimeError) and str(exc) == "boom"
    assert isinstance(stack, list)
    terminated = recv(tagged("terminate"))
    assert terminated[1] == reason and terminated[2] == "s"


def test_call_when_server_exits_in_handle_call(node: Node) -> None:
    pid = start_probe()

    def bail(from_: Any, state: Any) -> Any:
        erlang.exit("bailed")

    request = ("apply", bail)
    assert call_exit(pid, request) == ("bailed", where(pid, request, 1000))


def test_call_to_self_is_calling_self(node: Node) -> None:
    pid = start_probe()

    def call_me(from_: Any, state: Any) -> Any:
        try:
            gen_server.call(erlang.self(), "x", 1000)
        except Exit as e:
            return ("reply", e.reason, state)
        return ("reply", "no exit", state)

    assert gen_server.call(pid, ("apply", call_me), 2000) == \
        ("calling_self", where(pid, "x", 1000))
    assert erlang.is_process_alive(pid)


def test_call_with_bad_timeout_is_an_error(node: Node) -> None:
    pid = start_probe()
    with pytest.raises(Exit):
        gen_server.call(pid, "get", -1)


# -- cast ---------------------------------------------------------------------------------


def test_cast_returns_ok_and_is_handled(node: Node) -> None:
    pid = start_probe()
    assert gen_server.cast(pid, ("append", "c")) == "ok"
    assert gen_server.call(pid, "get") == ["c"]


def test_cast_returns_ok_even_when_there_is_no_server(node: Node) -> None:
    pid = start_probe()
    gen_server.stop(pid)
    assert gen_server.cast(pid, "hello") == "ok"
    assert gen_server.cast("nobody", "hello") == "ok"
    assert gen_server.cast(("global", "nobody"), "hello") == "ok"


# -- stop ---------------------------------------------------------------------------------


def test_stop_calls_terminate_normal_and_waits_for_the_exit(node: Node) -> None:
    pid = start_probe(state="last")
    ref = watch(pid)
    assert gen_server.stop(pid) == "ok"
    assert not erlang.is_process_alive(pid)
    assert recv(tagged("terminate")) == ("terminate", "normal", "last")
    assert down_reason(ref) == "normal"


def test_stop_by_name_with_custom_reason(node: Node) -> None:
    pid = start_probe(("local", "stopme"), state="st")
    ref = watch(pid)
    assert gen_server.stop("stopme", "going") == "ok"
    assert recv(tagged("terminate")) == ("terminate", "going", "st")
    assert down_reason(ref) == "going"
    assert erlang.whereis("stopme") == "undefined"


def test_stop_of_a_dead_or_missing_server_is_noproc(node: Node) -> None:
    pid = start_probe()
    gen_server.stop(pid)
    with pytest.raises(Exit) as info:
        gen_server.stop(pid)
    assert info.value.reason == "noproc"
    with pytest.raises(Exit) as info:
        gen_server.stop("nobody")
    assert info.value.reason == "noproc"


def test_stop_when_terminate_crashes_exits_with_the_crash_reason(node: Node) -> None:
    def bad_terminate() -> None:
        raise KeyError("gone")

    pid = start_probe(terminate=bad_terminate)
    with pytest.raises(Exit) as info:
        gen_server.stop(pid)
    exc, _stack = info.value.reason
    assert isinstance(exc, KeyError)
    assert not erlang.is_process_alive(pid)


def test_stop_timeout(node: Node) -> None:
    pid = start_probe(terminate=lambda: time.sleep(0.3))
    with pytest.raises(Exit) as info:
        gen_server.stop(pid, "normal", 50)
    assert info.value.reason == "timeout"


# -- exit signals and terminate -----------------------------------------------------------


def test_terminate_called_on_exit_from_parent_when_trapping(node: Node) -> None:
    owner = erlang.self()
    server_spec = spec(trap_exit=True, state="st")

    def parent() -> None:
        erlang.send(owner, ("started", gen_server.start_link(Probe, server_spec)))
        erlang.receive(lambda m: m == "die", 3000)
        erlang.exit("parent_died")

    parent_pid = erlang.spawn(parent)
    pid = recv(tagged("started"))[1][1]
    ref = watch(pid)
    erlang.send(parent_pid, "die")
    assert recv(tagged("terminate")) == ("terminate", "parent_died", "st")
    assert down_reason(ref) == "parent_died"
    no_message(tagged("info"))  # the parent's EXIT does not go to handle_info


def test_shutdown_from_parent_calls_terminate(node: Node) -> None:
    # how a supervisor stops a child: exit(child, shutdown) from the parent
    erlang.process_flag("trap_exit", True)
    pid = gen_server.start_link(Probe, spec(trap_exit=True, state="st"))[1]
    erlang.exit(pid, "shutdown")
    assert recv(tagged("terminate")) == ("terminate", "shutdown", "st")
    assert recv(exit_from(pid)) == ("EXIT", pid, "shutdown")


def test_exit_from_non_parent_goes_to_handle_info_when_trapping(node: Node) -> None:
    pid = start_probe(trap_exit=True)

    def link_crasher(from_: Any, state: Any) -> Any:
        return ("reply", erlang.spawn_link(exit_on_go, "crash"), state)

    worker = gen_server.call(pid, ("apply", link_crasher))
    erlang.send(worker, "go")
    assert recv(tagged("info")) == ("info", ("EXIT", worker, "crash"))
    assert erlang.is_process_alive(pid)
    assert gen_server.call(pid, "get") == []
    no_message(tagged("terminate"))


def test_non_trapping_server_dies_with_linked_process_reason(node: Node) -> None:
    pid = start_probe()
    ref = watch(pid)

    def link_crasher(from_: Any, state: Any) -> Any:
        return ("reply", erlang.spawn_link(exit_on_go, "crash"), state)

    erlang.send(gen_server.call(pid, ("apply", link_crasher)), "go")
    assert down_reason(ref) == "crash"
    no_message(tagged("terminate"))


def test_parent_exit_kills_non_trapping_server_without_terminate(node: Node) -> None:
    owner = erlang.self()

    def parent() -> None:
        erlang.send(owner, ("started", gen_server.start_link(Probe, spec(state="st"))))
        erlang.receive(lambda m: m == "die", 3000)
        erlang.exit("parent_died")

    parent_pid = erlang.spawn(parent)
    pid = recv(tagged("started"))[1][1]
    ref = watch(pid)
    erlang.send(parent_pid, "die")
    assert down_reason(ref) == "parent_died"
    no_message(tagged("terminate"))


def test_kill_does_not_call_terminate(node: Node) -> None:
    pid = start_probe(trap_exit=True)
    ref = watch(pid)
    erlang.exit(pid, "kill")
    assert down_reason(ref) == "killed"
    no_message(tagged("terminate"), 200)


# -- messages -----------------------------------------------------------------------------


def test_messages_from_one_client_arrive_in_order(node: Node) -> None:
    pid = start_probe()
    for i in range(200):
        if i % 2:
            gen_server.cast(pid, ("append", i))
        else:
            erlang.send(pid, ("append", i))
    assert gen_server.call(pid, "get") == list(range(200))


def test_handle_info_gets_plain_messages(node: Node) -> None:
    pid = start_probe(("local", "inbox"))
    erlang.send(pid, {"plain": 1})
    assert recv(tagged("info")) == ("info", {"plain": 1})
    erlang.send("inbox", ("by", "name"))
    assert recv(tagged("info")) == ("info", ("by", "name"))


def test_default_handle_info_ignores_unexpected_messages(node: Node) -> None:
    class Minimal(GenServer):
        pass

    pid = gen_server.start(Minimal, "state")[1]
    erlang.send(pid, "unexpected")
    assert sys.get_state(pid) == "state"  # a round trip: the message has been handled
    assert erlang.is_process_alive(pid)


# -- error reports ------------------------------------------------------------------------


def test_crash_in_callback_logs_error_report(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="actors.gen_server")
    pid = start_probe(("local", "crasher"), state="st")
    ref = watch(pid)

    def crash(state: Any) -> Any:
        raise RuntimeError("kaboom")

    gen_server.cast(pid, ("apply", crash))
    down_reason(ref)
    records = [r for r in caplog.records
               if r.name == "actors.gen_server" and r.levelno >= logging.ERROR]
    assert records, "no error report"
    text = records[0].getMessage()
    assert "kaboom" in text and "crasher" in text


def test_normal_stop_logs_no_error(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="actors.gen_server")
    pid = start_probe()
    gen_server.stop(pid)
    pid = start_probe()
    gen_server.stop(pid, "shutdown")
    pid = start_probe()
    gen_server.stop(pid, ("shutdown", "tidy"))
    assert not [r for r in caplog.records if r.name == "actors.gen_server"]


# -- callback modules of every kind -------------------------------------------------------


def counter_module() -> types.ModuleType:
    """A plain Python module object as the callback module, with only the callbacks that
    OTP requires (init, handle_call, handle_cast)."""
    mod = types.ModuleType("counter")

    def init(n: int) -> Any:
        return ("ok", n)

    def handle_call(request: Any, from_: Any, n: int) -> Any:
        return ("reply", n, n)

    def handle_cast(msg: Any, n: int) -> Any:
        return ("noreply", n + msg[1])

    mod.init = init  # type: ignore[attr-defined]
    mod.handle_call = handle_call  # type: ignore[attr-defined]
    mod.handle_cast = handle_cast  # type: ignore[attr-defined]
    return mod


def test_plain_module_as_callback_module(node: Node) -> None:
    result = gen_server.start(("local", "counter"), counter_module(), 5)
    assert result[0] == "ok"
    gen_server.cast("counter", ("add", 3))
    assert gen_server.call("counter", "get") == 8


def test_plain_module_without_terminate_can_be_stopped(node: Node) -> None:
    # terminate/2 is an optional callback in OTP: without it, stop still ends normally
    pid = gen_server.start(counter_module(), 0)[1]
    assert gen_server.stop(pid) == "ok"
    assert not erlang.is_process_alive(pid)


def test_plain_module_without_handle_info_survives_a_plain_message(node: Node) -> None:
    # handle_info/2 is optional in OTP: an unexpected message is logged, not fatal
    pid = gen_server.start(counter_module(), 1)[1]
    erlang.send(pid, "stray")
    assert gen_server.call(pid, "get") == 1


def test_plain_module_with_terminate(node: Node) -> None:
    owner = erlang.self()
    mod = counter_module()
    mod.terminate = lambda reason, n: erlang.send(owner, ("terminate", reason, n))  # type: ignore[attr-defined]
    pid = gen_server.start(mod, 7)[1]
    assert gen_server.stop(pid, "bye") == "ok"
    assert recv(tagged("terminate")) == ("terminate", "bye", 7)


def test_instance_as_callback_module(node: Node) -> None:
    class Tagged(GenServer):
        def __init__(self, tag: str) -> None:
            self.tag = tag

        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            return ("reply", (self.tag, state), state)

    instance = Tagged("mine")
    pid = gen_server.start(instance, "s")[1]
    assert gen_server.call(pid, "who") == ("mine", "s")


def test_class_as_callback_module_gets_a_fresh_instance(node: Node) -> None:
    class Counter(GenServer):
        def init(self, args: Any) -> Any:
            self.calls = 0
            return ("ok", args)

        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            self.calls += 1
            return ("reply", self.calls, state)

    a = gen_server.start(Counter, None)[1]
    b = gen_server.start(Counter, None)[1]
    assert gen_server.call(a, "x") == 1
    assert gen_server.call(a, "x") == 2
    assert gen_server.call(b, "x") == 1

