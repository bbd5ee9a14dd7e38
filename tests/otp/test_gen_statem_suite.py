"""OTP's lib/stdlib/test/gen_statem_SUITE.erl, ported case by case.

Each test's docstring names the Erlang case; the expected values are the Erlang suite's.
`Machine` is the suite's own callback module (?MODULE): its state functions, its
init/1 clauses and its map_statem wrapper. The start, stop and abnormal groups run once
per callback mode, as the suite's *_handle_event groups do.

Differences of form, not of behaviour:
- The suite "abuses the internal format of From" ({Self, Tag}) to make a machine reply
  to the test process. Here a From is (pid, alias); `reply_tag()` opens an alias for the
  test process, so the same replies arrive as (tag, reply), as they do in Erlang.
- The map_statem wrapper keeps its machine on the callback instance, so the data that
  sys.get_state shows is the machine's own data (Erlang shows [Data | Machine]).
- `throw(Result)` as a way to return from a state function has no Python form; the
  callbacks return the result.
- The ETS table that loop_start_fail's init creates (to show that a failed start has
  cleaned up before it returns) is a registered name here: registering it again fails
  unless the failed process is gone.
- sleeps are shortened (the delays only need to exceed the call timeouts).

Not ported, and why:
- hibernate, auto_hibernate: hibernation (a Python process has no heap to compact;
  "hibernate" actions are accepted and do nothing).
- enter_loop: gen_statem:enter_loop/4-6 and proc_lib internals (we have no enter_loop).
- call_format_status, error_format_status, terminate_crash_format, format_all_status,
  format_log_1, format_log_2, format_log_with_process_label: format_status callbacks and
  logger report formats.
- pop_too_many: the change/push/pop_callback_module actions are not implemented.
- reply_by_alias_with_payload: about OTP's alias message format.
- stop8, stop9, stop10 (on a remote node): covered by tests/otp/test_gen_statem_dist.py's
  cross-node test instead of a peer per case.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors import Error, Exit, Node, _context, erlang, gen_statem, sys, timer
from actors.gen_statem import GenStatem
from tests.helpers import recv
from tests.otp._gen_helpers import (
    DummyVia,
    expect_exit,
    flush,
    reqid_check,
    reqid_receive,
    wfor,
)

MODULE = "gen_statem_SUITE"


def started(result: Any) -> Any:
    """The pid (or (pid, mref)) of an ("ok", ...) start result; fails on anything else."""
    assert type(result) is tuple and result[0] == "ok", result
    return result[1]


def reply_tag() -> Any:
    """A (pid, tag) From that replies reach: the suite's {Self, Tag}."""
    me = _context.self_process()
    tag = erlang.make_ref()
    me.aliases.add(tag)
    return (me.pid, tag), tag


# -- the suite's state machine (?MODULE) ---------------------------------------------------


class Machine(GenStatem):
    def __init__(self) -> None:
        self.mode: Any = "state_functions"
        self.machine: dict[str, Any] | None = None

    def callback_mode(self) -> Any:
        return self.mode

    def init(self, arg: Any) -> Any:
        match arg:
            case "ignore":
                return "ignore"
            case "stop":
                return ("stop", "stopped")
            case ("error", reason):
                return ("error", reason)
            case "stop_shutdown":
                return ("stop", "shutdown")
            case "sleep":
                timer.sleep(1000)
                return ("ok", "idle", "data")
            case ("data", data):
                return ("ok", "idle", data)
            case ("callback_mode", mode, inner):
                self.mode = mode
                return self.init(inner)
            case ("map_statem", machine, modes):
                self.mode = ["handle_event_function", *modes]
                self.machine = machine
                return machine["init"]()
            case ("ets", result):
                erlang.register(MODULE, erlang.self())  # the named ETS table
                return self._ets(result)
            case []:
                return ("ok", "idle", "data")
        raise Error(("function_clause", arg))

    @staticmethod
    def _ets(result: Any) -> Any:
        match result:
            case ("return", value):
                return value
            case ("crash", "error", reason):
                raise Error(reason)
            case ("crash", "exit", reason):
                raise Exit(reason)
            case ("wait", ms, value):
                timer.sleep(ms)
                return value
        raise Error(("function_clause", result))

    def terminate(self, reason: Any, state: Any, data: Any) -> Any:
        if data == "crash_terminate":
            raise Exit(("crash", "terminate"))
        if type(data) is tuple and data[0] == "undef_in_terminate":
            mod, fun = data[1]
            raise Exit(("undef", [(mod, fun, [], [])]))
        if type(reason) is tuple and len(reason) == 2 and reason[1] == "stopped":
            erlang.send(reason[0], (erlang.self(), ("stopped", state)))
        return "ok"

    def code_change(self, old_vsn: Any, state: Any, data: Any, extra: Any) -> Any:
        self.mode = extra
        return ("ok", state, (old_vsn, data, extra))

    # -- state functions --

    def idle(self, etype: Any, content: Any, data: Any) -> Any:
        call = etype[1] if type(etype) is tuple and etype[0] == "call" else None
        match (etype, content):
            case ("cast", ("connect", pid)):
                erlang.send(pid, "accept")
                return ("next_state", "wfor_conf", data, "infinity")
            case (("call", _), "connect"):
                gen_statem.reply(call, "accept")
                return ("next_state", "wfor_conf", data, "infinity")
            case (("call", _), "badreturn"):
                return "badreturn"
            case (("call", _), "badaction"):
                return ("keep_state", data, ["badaction"])
            case (("call", _), ("badtimeout", bad)):
                return ("keep_state", data, bad)
            case (("call", _), ("delayed_answer", ms)):
                timer.sleep(ms)
                gen_statem.reply(("reply", call, "delayed"))
                return ("keep_state", data)
            case (("call", _), ("timeout", ms)):
                abs_time = erlang.monotonic_time("millisecond") + ms
                return ("next_state", "timeout", (call, ms),
                        ("timeout", abs_time, "idle", [("abs", True)]))
            case ("cast", "postpone_event"):
                return ("keep_state_and_data", "postpone")
            case ("cast", "next_event"):
                return ("next_state", "next_events", ["a", "b", "c"],
                        [("next_event", "internal", "a"), ("next_event", "internal", "b"),
                         ("next_event", "internal", "c")])
        result = self.common(etype, content, "idle", data)
        if result is not None:
            return result
        if call is not None:
            return ("keep_state", data, [("reply", call, "eh?")])
        return ("stop", ("unexpected", "idle", etype, content))

    def timeout(self, etype: Any, content: Any, data: Any) -> Any:
        if etype == "timeout" and content == "idle":
            from_, ms = data
            tref = erlang.start_timer(ms, erlang.self(), "ok")
            return ("keep_state", (from_, tref), 0)  # immediate timeout 0
        if etype == "timeout" and content == 0:
            return ("next_state", "timeout2", data,
                    [("timeout", 1, "should_be_cancelled"), "postpone"])
        return "keep_state_and_data"

    def timeout2(self, etype: Any, content: Any, data: Any) -> Any:
        if etype == "timeout" and content == 0:
            return "keep_state_and_data"
        if etype == "timeout":
            return ("stop", content)
        if (etype == "info" and type(content) is tuple and len(content) == 3
                and content[0] == "timeout" and content[1] == data[1]):
            gen_statem.reply([("reply", data[0], content[2])])
            return ("next_state", "idle", "state")
        return ("keep_state_and_data", [])

    def wfor_conf(self, etype: Any, content: Any, data: Any) -> Any:
        if type(etype) is tuple and etype[0] == "call" and content == "confirm":
            return ("next_state", "connected", data, ("reply", etype[1], "yes"))
        if etype == "cast" and type(content) is tuple and content[0] == "ping":
            return ("keep_state_and_data", ["postpone"])
        if etype == "cast" and content == "confirm":
            return ("next_state", "connected", data)
        result = self.common(etype, content, "wfor_conf", data)
        if result is not None:
            return result
        if type(etype) is tuple and etype[0] == "call":
            return ("next_state", "idle", data, [("reply", etype[1], "eh?")])
        return "keep_state_and_data"

    def connected(self, etype: Any, content: Any, data: Any) -> Any:
        call = etype[1] if type(etype) is tuple and etype[0] == "call" else None
        match (etype, content):
            case (("call", _), ("msg", ref)):
                return ("keep_state", data, ("reply", call, ("ack", ref)))
            case ("cast", ("msg", pid, ref)):
                erlang.send(pid, ("ack", ref))
                return ("keep_state", data)
            case (("call", _), "disconnect"):
                return ("next_state", "idle", data, [("reply", call, "yes")])
            case ("cast", "disconnect"):
                return ("next_state", "idle", data)
            case ("cast", ("ping", pid, tag)):
                erlang.send(pid, ("pong", tag))
                return ("keep_state", data)
        result = self.common(etype, content, "connected", data)
        if result is not None:
            return result
        if call is not None:
            return ("keep_state", data, [("reply", call, "eh?")])
        return ("keep_state", data)

    def state0(self, etype: Any, content: Any, data: Any) -> Any:
        if type(etype) is tuple and etype[0] == "call" and content == "stop":
            return ("stop_and_reply", "normal", [("reply", etype[1], "stopped")], data)
        result = self.common(etype, content, "state0", data)
        return result if result is not None else ("keep_state", data)

    def next_events(self, etype: Any, content: Any, data: Any) -> Any:
        if etype == "internal" and data and data[0] == content:
            return ("keep_state", data[1:])
        result = self.common(etype, content, "next_events", data)
        return result if result is not None else ("keep_state", data)

    @staticmethod
    def common(etype: Any, content: Any, state: Any, data: Any) -> Any:
        """handle_common_events/4; None for the suite's `undefined`."""
        call = etype[1] if type(etype) is tuple and etype[0] == "call" else None
        match (etype, content):
            case (("call", _), "get_callback_mode"):
                return ("keep_state_and_data", ("reply", call, "state_functions"))
            case (("call", _), "get"):
                return ("keep_state", data, [("reply", call, ("state", state, data))])
            case ("cast", ("get", pid)):
                erlang.send(pid, ("state", state, data))
                return ("keep_state", data)
            case (("call", _), "stop"):
                return ("stop_and_reply", "normal", [("reply", call, "stopped")], data)
            case ("cast", "stop"):
                return "stop"
            case (("call", _), ("stop", reason)):
                return ("stop_and_reply", reason, ("reply", call, "stopped"), data)
            case ("cast", ("stop", reason)):
                return ("stop", reason)
            case (("call", _), "alive?"):
                return ("keep_state", data, [("reply", call, "yes")])
            case ("cast", ("alive?", pid)):
                erlang.send(pid, "yes")
                return ("keep_state", data)
        return None

    def handle_event(self, etype: Any, content: Any, state: Any, data: Any) -> Any:
        if type(etype) is tuple and etype[0] == "call" and content == "get_callback_mode":
            return ("keep_state_and_data", ("reply", etype[1], "handle_event_function"))
        if self.machine is not None:
            return self.machine[state](etype, content, data)
        return getattr(self, state)(etype, content, data)


# -- the suite's helpers -------------------------------------------------------------------


@pytest.fixture(params=["state_functions", "handle_event_function"])
def mode(request: Any, node: Node) -> str:
    """The group: start/stop/abnormal, or start_handle_event/stop_handle_event/..."""
    erlang.process_flag("trap_exit", False)
    return str(request.param)


def start_arg(mode: str, arg: Any) -> Any:
    return arg if mode == "state_functions" else ("callback_mode", mode, arg)


def stop_it(stm: Any) -> None:
    assert gen_statem.call(stm, "stop") == "stopped"
    check_stopped(stm)


def check_stopped(stm: Any) -> None:
    reason = expect_exit(gen_statem.call, stm, "there_you_are")
    assert reason[1][:2] == ("gen_statem", "call")
    assert reason[1][2][1:] == ["there_you_are", "infinity"]


def check_state(stm: Any, state: str) -> None:
    got = gen_statem.call(stm, "get")
    assert got[:2] == ("state", state), got


def do_func_test(stm: Any) -> None:
    me = erlang.self()
    assert gen_statem.cast(stm, ("alive?", me)) == "ok"
    wfor("yes")
    do_connect(stm)
    gen_statem.cast(stm, ("alive?", me))
    wfor("yes")
    for _ in range(3):
        do_msg(stm)
    gen_statem.cast(stm, ("alive?", me))
    wfor("yes")
    assert gen_statem.cast(stm, "disconnect") == "ok"
    check_state(stm, "idle")
    gen_statem.cast(stm, ("alive?", me))
    p0 = gen_statem.send_request(stm, "alive?")
    assert gen_statem.wait_response(p0, 0) == "timeout"
    wfor("yes")
    assert gen_statem.wait_response(p0, "infinity") == ("reply", "yes")
    flush()
    p1 = gen_statem.send_request(stm, "alive?")
    msg = erlang.receive(None, 1000)
    assert gen_statem.check_response(msg, p0) == "no_reply"
    assert gen_statem.check_response(msg, p1) == ("reply", "yes")


def do_connect(stm: Any) -> None:
    check_state(stm, "idle")
    gen_statem.cast(stm, ("connect", erlang.self()))
    wfor("accept")
    check_state(stm, "wfor_conf")
    tag = erlang.make_ref()
    gen_statem.cast(stm, ("ping", erlang.self(), tag))
    gen_statem.cast(stm, "confirm")
    wfor(("pong", tag))
    check_state(stm, "connected")


def do_msg(stm: Any) -> None:
    check_state(stm, "connected")
    r = erlang.make_ref()
    assert gen_statem.cast(stm, ("msg", erlang.self(), r)) == "ok"
    wfor(("ack", r))


def do_sync_func_test(stm: Any) -> None:
    assert gen_statem.call(stm, "alive?") == "yes"
    check_state(stm, "idle")
    assert gen_statem.call(stm, "connect") == "accept"
    check_state(stm, "wfor_conf")
    tag = erlang.make_ref()
    gen_statem.cast(stm, ("ping", erlang.self(), tag))
    assert gen_statem.call(stm, "confirm") == "yes"
    wfor(("pong", tag))
    check_state(stm, "connected")
    assert gen_statem.call(stm, "alive?") == "yes"
    for _ in range(3):
        r = erlang.make_ref()
        assert gen_statem.call(stm, ("msg", r)) == ("ack", r)
    assert gen_statem.call(stm, "alive?") == "yes"
    assert gen_statem.call(stm, "disconnect") == "yes"
    check_state(stm, "idle")
    assert gen_statem.call(stm, "alive?") == "yes"
    check_state(stm, "idle")
    assert gen_statem.call(stm, ("timeout", 200)) == "ok"
    assert gen_statem.call(stm, "alive?") == "yes"
    check_state(stm, "idle")


def verify_empty_msgq() -> None:
    assert flush() == []


# -- group start ---------------------------------------------------------------------------


def test_start1(mode: str) -> None:
    """start1: anonymous start_link, then start_monitor."""
    pid0 = started(gen_statem.start_link(Machine, start_arg(mode, []), []))
    do_func_test(pid0)
    do_sync_func_test(pid0)
    stop_it(pid0)
    verify_empty_msgq()
    (pid1, mon1) = started(gen_statem.start_monitor(Machine, start_arg(mode, []), []))
    do_func_test(pid1)
    do_sync_func_test(pid1)
    stop_it(pid1)
    down = recv(lambda m: type(m) is tuple and m[:2] == ("DOWN", mon1))
    assert down[2:4] == ("process", pid1)
    verify_empty_msgq()


def test_start2(mode: str) -> None:
    """start2: anonymous, stopped with shutdown."""
    pid0 = started(gen_statem.start(Machine, start_arg(mode, []), []))
    do_func_test(pid0)
    do_sync_func_test(pid0)
    assert gen_statem.call(pid0, ("stop", "shutdown")) == "stopped"
    check_stopped(pid0)
    verify_empty_msgq()


def test_start3(mode: str) -> None:
    """start3: anonymous with a start timeout."""
    pid0 = started(gen_statem.start(Machine, start_arg(mode, []), [("timeout", 500)]))
    do_func_test(pid0)
    do_sync_func_test(pid0)
    stop_it(pid0)
    assert gen_statem.start(Machine, start_arg(mode, "sleep"), [("timeout", 5)]) == \
        ("error", "timeout")
    verify_empty_msgq()


def test_start4(mode: str) -> None:
    """start4: init returns ignore."""
    erlang.process_flag("trap_exit", True)
    assert gen_statem.start(Machine, start_arg(mode, "ignore"), []) == "ignore"
    verify_empty_msgq()


def test_start5a(mode: str) -> None:
    """start5a: init returns {stop, stopped}."""
    erlang.process_flag("trap_exit", True)
    assert gen_statem.start(Machine, start_arg(mode, "stop"), []) == ("error", "stopped")
    verify_empty_msgq()


def test_start5b(mode: str) -> None:
    """start5b: init returns {error, foobar}."""
    erlang.process_flag("trap_exit", True)
    assert gen_statem.start(Machine, start_arg(mode, ("error", "foobar")), []) == \
        ("error", "foobar")
    verify_empty_msgq()


def test_start6(mode: str) -> None:
    """start6: anonymous linked."""
    pid = started(gen_statem.start_link(Machine, start_arg(mode, []), []))
    do_func_test(pid)
    do_sync_func_test(pid)
    stop_it(pid)
    verify_empty_msgq()


def test_start7(mode: str) -> None:
    """start7: global register, linked and monitored."""
    stm = ("global", "my_stm")
    pid = started(gen_statem.start_link(stm, Machine, start_arg(mode, []), []))
    for start in (gen_statem.start_link, gen_statem.start, gen_statem.start_monitor):
        assert start(stm, Machine, start_arg(mode, []), []) == ("error", ("already_started", pid))
    do_func_test(pid)
    do_sync_func_test(pid)
    do_func_test(stm)
    do_sync_func_test(stm)
    stop_it(stm)
    verify_empty_msgq()
    (pid1, mon1) = started(gen_statem.start_monitor(stm, Machine, start_arg(mode, []), []))
    for start in (gen_statem.start_link, gen_statem.start, gen_statem.start_monitor):
        assert start(stm, Machine, start_arg(mode, []), []) == \
            ("error", ("already_started", pid1))
    do_func_test(stm)
    do_sync_func_test(stm)
    stop_it(stm)
    recv(lambda m: type(m) is tuple and m[:2] == ("DOWN", mon1) and m[3] == pid1)
    verify_empty_msgq()


def test_start8(mode: str) -> None:
    """start8: local register."""
    stm = ("local", "my_stm")
    pid = started(gen_statem.start(stm, Machine, start_arg(mode, []), []))
    assert gen_statem.start(stm, Machine, start_arg(mode, []), []) == \
        ("error", ("already_started", pid))
    do_func_test(pid)
    do_sync_func_test(pid)
    do_func_test("my_stm")
    do_sync_func_test("my_stm")
    stop_it(pid)
    verify_empty_msgq()


def test_start9(mode: str) -> None:
    """start9: local register, linked and monitored."""
    stm = ("local", "my_stm")
    pid = started(gen_statem.start_link(stm, Machine, start_arg(mode, []), []))
    assert gen_statem.start(stm, Machine, start_arg(mode, []), []) == \
        ("error", ("already_started", pid))
    do_func_test("my_stm")
    do_sync_func_test("my_stm")
    stop_it(pid)
    verify_empty_msgq()
    (pid1, mon1) = started(gen_statem.start_monitor(stm, Machine, start_arg(mode, []), []))
    assert gen_statem.start_monitor(stm, Machine, start_arg(mode, []), []) == \
        ("error", ("already_started", pid1))
    do_func_test(pid1)
    do_sync_func_test("my_stm")
    stop_it(pid1)
    recv(lambda m: type(m) is tuple and m[:2] == ("DOWN", mon1) and m[3] == pid1)
    verify_empty_msgq()


def test_start10(mode: str) -> None:
    """start10: global register."""
    stm = ("global", "my_stm")
    pid = started(gen_statem.start(stm, Machine, start_arg(mode, []), []))
    assert gen_statem.start(stm, Machine, start_arg(mode, []), []) == \
        ("error", ("already_started", pid))
    assert gen_statem.start_link(stm, Machine, start_arg(mode, []), []) == \
        ("error", ("already_started", pid))
    do_func_test(stm)
    do_sync_func_test(stm)
    stop_it(stm)
    verify_empty_msgq()


def test_start11(mode: str) -> None:
    """start11: stop registered processes, and start again under the same names."""
    pid = started(gen_statem.start_link(("local", "my_stm"), Machine, start_arg(mode, []), []))
    stop_it(pid)
    assert gen_statem.start_link(("local", "my_stm"), Machine, start_arg(mode, []), [])[0] \
        == "ok"
    stop_it("my_stm")
    pid2 = started(gen_statem.start(("global", "my_stm"), Machine, start_arg(mode, []), []))
    stop_it(pid2)
    assert gen_statem.start(("global", "my_stm"), Machine, start_arg(mode, []), [])[0] == "ok"
    stop_it(("global", "my_stm"))
    verify_empty_msgq()


def test_start12(mode: str) -> None:
    """start12: via register, linked."""
    via = ("via", DummyVia(), "my_stm")
    pid = started(gen_statem.start_link(via, Machine, start_arg(mode, []), []))
    assert gen_statem.start_link(via, Machine, start_arg(mode, []), []) == \
        ("error", ("already_started", pid))
    assert gen_statem.start(via, Machine, start_arg(mode, []), []) == \
        ("error", ("already_started", pid))
    do_func_test(via)
    do_sync_func_test(via)
    stop_it(via)
    verify_empty_msgq()


def test_next_events(mode: str) -> None:
    """next_events: the order of several {next_event, T, C}."""
    pid = started(gen_statem.start(Machine, start_arg(mode, []), []))
    assert gen_statem.cast(pid, "next_event") == "ok"
    assert gen_statem.call(pid, "get") == ("state", "next_events", [])
    assert gen_statem.stop(pid) == "ok"
    assert not erlang.is_process_alive(pid)
    assert expect_exit(gen_statem.stop, pid) == "noproc"


# -- group stop ----------------------------------------------------------------------------


def test_stop1(mode: str) -> None:
    """stop1: anonymous, reason normal."""
    pid = started(gen_statem.start(Machine, start_arg(mode, []), []))
    assert gen_statem.stop(pid) == "ok"
    assert not erlang.is_process_alive(pid)
    assert expect_exit(gen_statem.stop, pid) == "noproc"


def test_stop2(mode: str) -> None:
    """stop2: anonymous, other reason."""
    pid = started(gen_statem.start(Machine, start_arg(mode, []), []))
    assert gen_statem.stop(pid, "other_reason", "infinity") == "ok"
    assert not erlang.is_process_alive(pid)


def test_stop3(mode: str) -> None:
    """stop3: anonymous, invalid timeout."""
    pid = started(gen_statem.start(Machine, start_arg(mode, []), []))
    expect_exit(gen_statem.stop, pid, "other_reason", "invalid_timeout")
    assert erlang.is_process_alive(pid)
    assert gen_statem.stop(pid) == "ok"
    assert not erlang.is_process_alive(pid)


def test_stop4(mode: str) -> None:
    """stop4: registered name."""
    pid = started(gen_statem.start(("local", "to_stop"), Machine, start_arg(mode, []), []))
    assert gen_statem.stop("to_stop") == "ok"
    assert not erlang.is_process_alive(pid)
    assert expect_exit(gen_statem.stop, "to_stop") == "noproc"


def test_stop5(mode: str, node: Node) -> None:
    """stop5: registered name and local node."""
    pid = started(gen_statem.start(("local", "to_stop"), Machine, start_arg(mode, []), []))
    assert gen_statem.stop(("to_stop", node.name)) == "ok"
    assert not erlang.is_process_alive(pid)
    assert expect_exit(gen_statem.stop, ("to_stop", node.name)) == "noproc"


def test_stop6(mode: str) -> None:
    """stop6: globally registered name."""
    stm = ("global", "to_stop")
    pid = started(gen_statem.start(stm, Machine, start_arg(mode, []), []))
    assert gen_statem.stop(stm) == "ok"
    assert not erlang.is_process_alive(pid)
    assert expect_exit(gen_statem.stop, stm) == "noproc"


def test_stop7(mode: str) -> None:
    """stop7: 'via' registered name."""
    via = ("via", DummyVia(), "to_stop")
    pid = started(gen_statem.start(via, Machine, start_arg(mode, []), []))
    assert gen_statem.stop(via) == "ok"
    assert not erlang.is_process_alive(pid)
    assert expect_exit(gen_statem.stop, via) == "noproc"


# -- group abnormal ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["plain", "clean_timeout", "dirty_timeout"])
def test_abnormal1(mode: str, shape: str) -> None:
    """abnormal1, abnormal1clean, abnormal1dirty: time-outs in calls; the late reply is
    dropped."""
    def t(ms: int) -> Any:
        return ms if shape == "plain" else (shape, ms)

    name = "abnormal1"
    gen_statem.start(("local", name), Machine, start_arg(mode, []), [])
    assert gen_statem.call(name, ("delayed_answer", 1), t(2000)) == "delayed"
    reason = expect_exit(gen_statem.call, name, ("delayed_answer", 300), t(10))
    assert reason[0] == "timeout"
    assert gen_statem.stop(name) == "ok"  # runs after the delayed answer went out
    verify_empty_msgq()


def test_abnormal2(mode: str) -> None:
    """abnormal2: a bad return value crashes the machine."""
    erlang.process_flag("trap_exit", True)
    pid = started(gen_statem.start_link(Machine, start_arg(mode, []), []))
    reason = expect_exit(gen_statem.call, pid, "badreturn")
    assert reason[0][0] == ("bad_return_from_state_function", "badreturn")
    exit_ = recv(lambda m: type(m) is tuple and m[:2] == ("EXIT", pid), 5000)
    assert exit_[2][0] == ("bad_return_from_state_function", "badreturn")
    verify_empty_msgq()


def test_abnormal3(mode: str) -> None:
    """abnormal3: a bad action crashes the machine."""
    erlang.process_flag("trap_exit", True)
    pid = started(gen_statem.start_link(Machine, start_arg(mode, []), []))
    reason = expect_exit(gen_statem.call, pid, "badaction")
    assert reason[0][0] == ("bad_action_from_state_function", "badaction")
    exit_ = recv(lambda m: type(m) is tuple and m[:2] == ("EXIT", pid), 5000)
    assert exit_[2][0] == ("bad_action_from_state_function", "badaction")
    verify_empty_msgq()


def test_abnormal4(mode: str) -> None:
    """abnormal4: a bad timeout action crashes the machine."""
    erlang.process_flag("trap_exit", True)
    pid = started(gen_statem.start_link(Machine, start_arg(mode, []), []))
    bad = ("badtimeout", 4711, "ouch")
    reason = expect_exit(gen_statem.call, pid, ("badtimeout", bad))
    assert reason[0][0] == ("bad_action_from_state_function", bad)
    exit_ = recv(lambda m: type(m) is tuple and m[:2] == ("EXIT", pid), 5000)
    assert exit_[2][0] == ("bad_action_from_state_function", bad)
    verify_empty_msgq()


# -- single cases --------------------------------------------------------------------------


def test_shutdown(node: Node) -> None:
    """shutdown: stop with {shutdown, reason}; later calls exit noproc."""
    erlang.process_flag("trap_exit", True)
    pid0 = started(gen_statem.start_link(Machine, [], []))
    do_func_test(pid0)
    do_sync_func_test(pid0)
    assert gen_statem.call(pid0, ("stop", ("shutdown", "reason"))) == "stopped"
    recv(lambda m: m == ("EXIT", pid0, ("shutdown", "reason")))
    erlang.process_flag("trap_exit", False)
    assert expect_exit(gen_statem.call, pid0, "hej")[0] == "noproc"
    assert flush(100) == []


@pytest.mark.parametrize("start", ["start", "start_link", "start_monitor"])
def test_loop_start_fail(node: Node, start: str) -> None:
    """loop_start_fail: a failed start has cleaned up before it returns (5 times each)."""
    erlang.process_flag("trap_exit", True)
    fun = getattr(gen_statem, start)
    cases = [
        (("return", ("stop", "failed_to_start")), [], lambda r: r == ("error", "failed_to_start")),
        (("return", "ignore"), [], lambda r: r == "ignore"),
        (("return", 4711), [], lambda r: r == ("error", ("bad_return_from_init", 4711))),
        (("crash", "error", "bailout"), [], lambda r: r == ("error", "bailout")),
        (("crash", "exit", "bailout"), [], lambda r: r == ("error", "bailout")),
        (("wait", 1000, "void"), [("timeout", 200)], lambda r: r == ("error", "timeout")),
    ]
    for arg, opts, valid in cases:
        for _ in range(5):
            result = fun(Machine, ("ets", arg), opts)
            assert valid(result), (arg, result)


def test_stop_and_reply(node: Node) -> None:
    """stop_and_reply: replies go out before the machine exits."""
    erlang.process_flag("trap_exit", True)

    def start(etype: Any, content: Any, data: Any) -> Any:
        assert etype == "cast" and content[0] == "echo"
        return ("next_state", "wait", ("reply", content[1], content[2]))

    def wait(etype: Any, content: Any, r1: Any) -> Any:
        assert etype == "cast" and content[0] == "stop_and_reply"
        _, reason, from2, reply2 = content
        return ("stop_and_reply", reason, [r1, ("reply", from2, reply2)])

    machine = {"init": lambda: ("ok", "start", "undefined"), "start": start, "wait": wait}
    stm = started(gen_statem.start_link(Machine, ("map_statem", machine, []), []))
    from1, tag1 = reply_tag()
    gen_statem.cast(stm, ("echo", from1, "reply1"))
    from2, tag2 = reply_tag()
    gen_statem.cast(stm, ("stop_and_reply", "reason", from2, "reply2"))
    recv(lambda m: m == ("EXIT", stm, "reason"))
    # the EXIT came last: everything before it is in the mailbox now
    assert flush() == [(tag1, "reply1"), (tag2, "reply2")]
    assert expect_exit(gen_statem.call, stm, "hej")[0] == "noproc"
    verify_empty_msgq()


def test_state_enter(node: Node) -> None:
    """state_enter: enter calls, repeat_state from an event and from an enter call, and
    zero time-outs set by enter calls."""
    erlang.process_flag("trap_exit", True)
    me = erlang.self()
    froms = {n: reply_tag() for n in range(1, 20)}  # the suite's {Self, N}
    by_tag = {tag: n for n, (_, tag) in froms.items()}

    def to_self(n: int) -> Any:
        return froms[n][0]

    def start(etype: Any, content: Any, n: Any) -> Any:
        call = etype[1] if type(etype) is tuple else None
        if etype == "enter":
            erlang.send(me, (n, "enter", "start", content))
            return ("keep_state", n + 1)
        if etype == "internal":
            erlang.send(me, (n, "internal", "start", content))
            return ("keep_state", n + 1)
        if etype == "timeout":
            return ("keep_state", n + 1, ("reply", to_self(n), ("timeout", content)))
        if content == "repeat":
            return ("repeat_state", n + 1, [("reply", call, (n, "repeat", "start"))])
        if content == "echo":
            return ("next_state", "wait", n + 1,
                    [("reply", call, (n, "echo", "start")), ("timeout", 0, n)])
        return ("stop_and_reply", content[1], [("reply", call, (n, "stop"))], n + 1)

    def wait(etype: Any, content: Any, n: Any) -> Any:
        call = etype[1] if type(etype) is tuple else None
        if etype == "enter" and n < 5:
            return ("repeat_state", n + 1,
                    [("reply", to_self(n), ("enter", content)), ("timeout", 0, n),
                     ("state_timeout", 0, n)])
        if etype == "enter":
            erlang.send(me, (n, "enter", "wait", content))
            return ("keep_state", n + 1, [("timeout", 0, n), ("state_timeout", 0, n)])
        if etype in ("timeout", "state_timeout"):
            return ("keep_state", n + 1, ("reply", to_self(n), (etype, content)))
        if content == "repeat":
            return ("repeat_state_and_data",
                    [("reply", call, (n, "repeat", "wait")), ("timeout", 0, n)])
        return ("next_state", "start", n + 1,
                [("next_event", "internal", "wait"), ("reply", call, (n, "echo", "wait"))])

    def take(count: int) -> list[Any]:
        """The next `count` messages; a reply to {Self, N} shows as (N, Reply)."""
        got = [recv() for _ in range(count)]
        return [(by_tag[m[0]], m[1]) if type(m) is tuple and len(m) == 2 and m[0] in by_tag
                else m for m in got]

    machine = {"init": lambda: ("ok", "start", 1), "start": start, "wait": wait}
    stm = started(gen_statem.start_link(Machine, ("map_statem", machine, ["state_enter"]), []))
    assert take(1) == [(1, "enter", "start", "start")]
    assert gen_statem.call(stm, "echo") == (2, "echo", "start")
    assert take(5) == [(3, ("enter", "start")), (4, ("enter", "start")),
                       (5, "enter", "wait", "start"), (6, ("timeout", 5)),
                       (7, ("state_timeout", 5))]
    assert sys.get_state(stm) == ("wait", 8)  # the suite: {wait, [8 | Machine]}
    assert gen_statem.call(stm, "repeat") == (8, "repeat", "wait")
    assert take(3) == [(8, "enter", "wait", "wait"), (9, ("timeout", 8)),
                       (10, ("state_timeout", 8))]
    assert gen_statem.call(stm, "echo") == (11, "echo", "wait")
    assert take(2) == [(12, "enter", "start", "wait"), (13, "internal", "start", "wait")]
    assert gen_statem.call(stm, "repeat") == (14, "repeat", "start")
    assert take(1) == [(15, "enter", "start", "start")]
    assert gen_statem.call(stm, ("stop", "bye")) == (16, "stop")
    recv(lambda m: m == ("EXIT", stm, "bye"))
    assert expect_exit(gen_statem.call, stm, "hej")[0] == "noproc"
    verify_empty_msgq()


def test_event_order(node: Node) -> None:
    """event_order: inserted events, then postponed ones; an event time-out 0 is
    cancelled by them."""
    erlang.process_flag("trap_exit", True)

    def start(etype: Any, content: Any, data: Any) -> Any:
        if etype == "cast":
            return ("keep_state_and_data", "postpone")  # handled in buffer
        _, pid, (tag3, tag4, tag5) = content
        return ("next_state", "buffer", [],
                [("next_event", "internal", ("reply", (pid, tag3), "ok3")),
                 ("next_event", "internal", ("reply", (pid, tag4), "ok4")),
                 ("timeout", 0, ("reply", (pid, tag5), "ok5")),
                 ("reply", etype[1], "ok")])

    def buffer(etype: Any, content: Any, replies: Any) -> Any:
        if etype in ("internal", "timeout", "cast"):
            return ("keep_state", [content, *replies])
        return ("next_state", "stop", "undefined",
                [*reversed(replies), ("reply", etype[1], "ok"),
                 ("next_event", "internal", ("stop", content[1]))])

    def stop(etype: Any, result: Any, data: Any) -> Any:
        return result

    machine = {"init": lambda: ("ok", "start", "undefined"), "start": start,
               "buffer": buffer, "stop": stop}
    stm = started(gen_statem.start_link(Machine, ("map_statem", machine, []), []))
    from1, tag1 = reply_tag()
    gen_statem.cast(stm, ("reply", from1, "ok1"))
    from2, tag2 = reply_tag()
    gen_statem.cast(stm, ("reply", from2, "ok2"))
    (pid, tag3), (_, tag4), (_, tag5) = reply_tag()[0], reply_tag()[0], reply_tag()[0]
    assert gen_statem.call(stm, ("buffer", pid, (tag3, tag4, tag5))) == "ok"
    assert gen_statem.call(stm, ("stop", "reason")) == "ok"
    recv(lambda m: m == ("EXIT", stm, "reason"))
    assert flush() == [(tag3, "ok3"), (tag4, "ok4"), (tag1, "ok1"), (tag2, "ok2")]
    assert expect_exit(gen_statem.call, stm, "hej")[0] == "noproc"
    verify_empty_msgq()


def test_state_timeout(node: Node) -> None:
    """state_timeout: state change cancels the state time-out; zero time-outs come after
    inserted events, in order; an event time-out 0 is cancelled by a pending state
    time-out 0; a state time-out 0 can be restarted."""
    erlang.process_flag("trap_exit", True)

    def start(etype: Any, content: Any, data: Any) -> Any:
        erlang.send(erlang.self(), "message_to_self")
        ms = content[1]
        return ("next_state", "state1", (ms, etype[1]),
                [("timeout", ms, 1), ("state_timeout", ms, 1), ("next_event", "internal", 1)])

    def state1(etype: Any, content: Any, data: Any) -> Any:
        assert (etype, content) == ("internal", 1)
        return ("next_state", "state2", data,
                [("timeout", 0, 2), ("state_timeout", 0, 2), ("next_event", "internal", 2)])

    def state2(etype: Any, content: Any, data: Any) -> Any:
        match (etype, content, data):
            case ("internal", 2, _):
                return ("keep_state", ("ok", 2, data), [("timeout", 0, 3)])
            case ("state_timeout", 2, ("ok", 2, inner)):
                return ("keep_state", ("ok", 3, inner),
                        [("timeout", 0, 4), ("state_timeout", 0, 5)])
            case ("timeout", 4, ("ok", 3, inner)):
                return ("keep_state", ("ok", 4, inner),
                        [("state_timeout", 0, 6), ("timeout", 0, 7)])
            case ("state_timeout", 6, ("ok", 4, (ms, from_))):
                return ("next_state", "state3", 6,
                        [("reply", from_, "ok"), ("state_timeout", ms, 8)])
        raise Error(("function_clause", etype, content, data))

    def state3(etype: Any, content: Any, data: Any) -> Any:
        match (etype, content, data):
            case ("info", "message_to_self", 6):
                return ("keep_state", 7)
            case (("call", from_), "check", 7):
                return ("keep_state", from_)
            case ("state_timeout", 8, from_):
                return ("stop_and_reply", "normal", ("reply", from_, "ok"))
        raise Error(("function_clause", etype, content, data))

    machine = {"init": lambda: ("ok", "start", 0), "start": start, "state1": state1,
               "state2": state2, "state3": state3}
    stm = started(gen_statem.start_link(Machine, ("map_statem", machine, []), []))
    tref = erlang.start_timer(1000, erlang.self(), "kull")
    assert gen_statem.call(stm, ("go", 500)) == "ok"
    assert gen_statem.call(stm, "check") == "ok"
    assert erlang.receive(lambda m: m == ("timeout", tref, "kull"), 0) is erlang.TIMEOUT
    recv(lambda m: m == ("timeout", tref, "kull"), 1000)
    recv(lambda m: m == ("EXIT", stm, "normal"), 500)
    verify_empty_msgq()


def test_timeout_cancel_and_update(node: Node) -> None:
    """timeout_cancel_and_update: cancel, update of a running timer, update of an expired
    state time-out whose event is still queued, and the status's Time-outs."""
    erlang.process_flag("trap_exit", True)

    def start(etype: Any, content: Any, data: Any) -> Any:
        erlang.send(erlang.self(), "message_to_self")
        return ("next_state", "state1", etype[1],
                [("state_timeout", 17, 1), ("next_event", "internal", 1)])

    def state1(etype: Any, content: Any, data: Any) -> Any:
        if etype == "internal":
            return ("keep_state_and_data", [("state_timeout", "cancel"),
                                            (("timeout", "a"), 17, 1)])
        if etype == "info":
            return ("keep_state_and_data", [(("timeout", "a"), "update", "a")])
        assert (etype, content) == (("timeout", "a"), "a")
        return ("next_state", "state2", data,
                [("state_timeout", 17, 2), ("next_event", "internal", 2)])

    def state2(etype: Any, content: Any, data: Any) -> Any:
        if etype == "internal":
            timer.sleep(50)  # now state_timeout 17 has fired: its event is queued
            return ("keep_state_and_data", [("state_timeout", "update", "b"),
                                            ("timeout", 17, 2)])
        assert (etype, content) == ("state_timeout", "b")
        return ("next_state", "state3", 3, [("reply", data, "ok"), 17000])

    def state3(etype: Any, content: Any, data: Any) -> Any:
        assert content == "stop" and data == 3
        return ("stop_and_reply", "normal", [("reply", etype[1], "ok")])

    machine = {"init": lambda: ("ok", "start", 0), "start": start, "state1": state1,
               "state2": state2, "state3": state3}
    stm = started(gen_statem.start_link(Machine, ("map_statem", machine, []), []))
    assert gen_statem.call(stm, "test") == "ok"
    status = sys.get_status(stm)
    assert status[:3] == ("status", stm, ("module", "gen_statem"))
    data = dict(status[3][4][1][1])
    assert data["Time-outs"] == (1, [("timeout", 17000)])
    assert gen_statem.call(stm, "stop") == "ok"
    recv(lambda m: m == ("EXIT", stm, "normal"), 500)
    verify_empty_msgq()


def test_event_types(node: Node) -> None:
    """event_types: every event type can be inserted with next_event."""
    erlang.process_flag("trap_exit", True)

    def expect(etype: Any, content: Any, nxt: str) -> Any:
        def state(t: Any, c: Any, d: Any) -> Any:
            assert (t, c, d) == (etype, content, "undefined"), (t, c, d)
            return ("next_state", nxt, "undefined")
        return state

    def start2(etype: Any, content: Any, data: Any) -> Any:
        return ("next_state", "state1", "undefined",
                [("next_event", "internal", 1), ("next_event", "state_timeout", 2),
                 ("next_event", "timeout", 3), ("next_event", "info", 4),
                 ("next_event", "cast", 5), ("next_event", ("timeout", 6), 6),
                 ("next_event", etype, content)])

    def state7(etype: Any, content: Any, data: Any) -> Any:
        assert content == "stop"
        return ("stop_and_reply", "shutdown", [("reply", etype[1], "stopped")])

    machine = {"init": lambda: ("ok", "start1", "undefined", [("next_event", "internal", 0)]),
               "start1": expect("internal", 0, "start2"), "start2": start2,
               "state1": expect("internal", 1, "state2"),
               "state2": expect("state_timeout", 2, "state3"),
               "state3": expect("timeout", 3, "state4"), "state4": expect("info", 4, "state5"),
               "state5": expect("cast", 5, "state6"),
               "state6": expect(("timeout", 6), 6, "state7"), "state7": state7}
    stm = started(gen_statem.start_link(Machine, ("map_statem", machine, []), []))
    assert gen_statem.call(stm, "stop") == "stopped"
    recv(lambda m: m == ("EXIT", stm, "shutdown"), 500)
    assert expect_exit(gen_statem.call, stm, "hej")[0] == "noproc"
    verify_empty_msgq()


def test_generic_timers(node: Node) -> None:
    """generic_timers: named time-outs, absolute and relative, restart and cancel."""
    erlang.process_flag("trap_exit", True)

    def start(etype: Any, content: Any, data: Any) -> Any:
        return ("next_state", "state1", "undefined",
                [(("timeout", "a"), 1500, 1), ("state_timeout", 1500, 1),
                 (("timeout", "b"), 1000, 1), ("next_event", etype, content)])

    def state1(etype: Any, content: Any, data: Any) -> Any:
        t = erlang.monotonic_time("millisecond") + 500
        return ("next_state", "state2", "undefined",
                [(("timeout", "c"), t, 2, ("abs", True)),
                 (("timeout", "d"), 0, 2, [("abs", False)]),
                 ("timeout", 0, 2), (("timeout", "b"), "infinity", 2),
                 (("timeout", "a"), 1000, (etype, content))])

    def expect(etype: Any, nxt: str) -> Any:
        def state(t: Any, c: Any, d: Any) -> Any:
            assert (t, c) == (etype, 2), (t, c)
            return ("next_state", nxt, "undefined")
        return state

    def state4(etype: Any, content: Any, data: Any) -> Any:
        assert etype == ("timeout", "a") and content[1] == "stop"
        return ("stop_and_reply", "shutdown", [("reply", content[0][1], "stopped")])

    machine = {"init": lambda: ("ok", "start", "undefined"), "start": start,
               "state1": state1, "state2": expect(("timeout", "d"), "state3"),
               "state3": expect(("timeout", "c"), "state4"), "state4": state4}
    stm = started(gen_statem.start_link(Machine, ("map_statem", machine, []), []))
    assert gen_statem.call(stm, "stop") == "stopped"
    recv(lambda m: m == ("EXIT", stm, "shutdown"), 500)
    assert expect_exit(gen_statem.call, stm, "hej")[0] == "noproc"
    verify_empty_msgq()


def test_sys1(mode: str) -> None:
    """sys1: get_status; a suspended machine does not answer calls until resumed."""
    pid = started(gen_statem.start(Machine, start_arg(mode, []), []))
    status = sys.get_status(pid)
    assert status[:3] == ("status", pid, ("module", "gen_statem"))
    sys.suspend(pid)
    me = erlang.self()
    tag = erlang.make_ref()
    erlang.spawn(lambda: erlang.send(me, (tag, gen_statem.call(pid, "hej"))))
    assert erlang.receive(lambda m: type(m) is tuple and m[0] == tag, 300) is erlang.TIMEOUT
    sys.resume(pid)
    assert recv(lambda m: type(m) is tuple and m[0] == tag) == (tag, "eh?")
    stop_it(pid)


def test_code_change(node: Node) -> None:
    """code_change: code_change/4 runs while suspended and may change the callback mode."""
    pid = started(gen_statem.start(Machine, ("callback_mode", "state_functions", []), []))
    assert sys.get_state(pid) == ("idle", "data")
    sys.suspend(pid)
    sys.change_code(pid, Machine, "old_vsn", "handle_event_function")
    sys.resume(pid)
    assert sys.get_state(pid) == ("idle", ("old_vsn", "data", "handle_event_function"))
    assert gen_statem.call(pid, "get_callback_mode") == "handle_event_function"
    stop_it(pid)


def test_get_state(mode: str) -> None:
    """get_state: (state, data), by pid and by name, also when suspended."""
    state = erlang.self()
    pid = started(gen_statem.start(Machine, start_arg(mode, ("data", state)), []))
    assert sys.get_state(pid) == ("idle", state)
    assert sys.get_state(pid, 5000) == ("idle", state)
    stop_it(pid)
    pid2 = started(gen_statem.start(("local", "gstm"), Machine,
                                    start_arg(mode, ("data", state)), []))
    assert sys.get_state("gstm") == ("idle", state)
    assert sys.get_state("gstm", 5000) == ("idle", state)
    stop_it(pid2)
    pid3 = started(gen_statem.start(Machine, start_arg(mode, ("data", state)), []))
    assert sys.suspend(pid3) == "ok"
    assert sys.get_state(pid3, 5000) == ("idle", state)
    assert sys.resume(pid3) == "ok"
    stop_it(pid3)
    verify_empty_msgq()


def test_replace_state(mode: str) -> None:
    """replace_state: fun((state, data)) -> (state, data); a crashing fun changes nothing."""
    state = erlang.self()
    pid = started(gen_statem.start(Machine, start_arg(mode, ("data", state)), []))
    assert sys.get_state(pid) == ("idle", state)
    assert sys.replace_state(pid, lambda sd: (sd[0], "replaced")) == ("idle", "replaced")
    assert sys.get_state(pid) == ("idle", "replaced")
    assert sys.replace_state(pid, lambda sd: ("state0", "replaced again"), 5000) == \
        ("state0", "replaced again")
    assert sys.get_state(pid) == ("state0", "replaced again")

    def crash(_sd: Any) -> Any:
        raise Error("fail")

    assert expect_exit(sys.replace_state, pid, crash) == \
        ("callback_failed", ("gen_statem", "system_replace_state"), ("error", "fail"))
    assert sys.get_state(pid) == ("state0", "replaced again")
    assert sys.suspend(pid) == "ok"
    new = "replaced again and again"
    assert sys.replace_state(pid, lambda sd: (sd[0], new)) == ("state0", new)
    assert sys.resume(pid) == "ok"
    assert sys.get_state(pid, 5000) == ("state0", new)
    assert sys.replace_state(pid, lambda sd: ("error", sd[1])) == ("error", new)
    assert sys.get_state(pid) == ("error", new)
    assert sys.replace_state(pid, lambda sd: ("state0", sd[1])) == ("state0", new)
    stop_it(pid)
    verify_empty_msgq()


# -- group undef_callbacks -----------------------------------------------------------------


class OcStatem:
    """The suite's oc_statem (gen_statem_SUITE_data/oc_statem.erl): handle_event_function
    with state enter calls, one state; no code_change nor terminate."""

    def callback_mode(self) -> Any:
        return ["handle_event_function", "state_enter"]

    def init(self, _args: Any) -> Any:
        return ("ok", "start", {})

    def handle_event(self, etype: Any, content: Any, state: Any, data: Any) -> Any:
        if (etype, content, state) == ("enter", "start", "start"):
            return "keep_state_and_data"
        raise Error(("function_clause", ("oc_statem", "handle_event", [etype, content])))


def test_undef_code_change(node: Node) -> None:
    """undef_code_change: a missing code_change answers {error, {'EXIT', {undef, ...}}}."""
    stm = started(gen_statem.start(OcStatem, [], []))
    sys.suspend(stm)
    sys.replace_state(stm, lambda s: ("new", s))
    ret = sys.change_code(stm, OcStatem, "old_vsn", [])
    assert sys.resume(stm) == "ok"
    assert ret[0] == "error" and ret[1][0] == "EXIT"
    undef, [(mod, fun, args, _)] = ret[1][1]
    assert (undef, mod, fun, len(args)) == ("undef", "OcStatem", "code_change", 4)


def test_undef_terminate1(node: Node) -> None:
    """undef_terminate1: without terminate/3, stop exits normal."""
    stm = started(gen_statem.start(OcStatem, [], []))
    mref = erlang.monitor("process", stm)
    assert gen_statem.stop(stm) == "ok"
    assert recv(lambda m: type(m) is tuple and m[:2] == ("DOWN", mref)) == \
        ("DOWN", mref, "process", stm, "normal")


def test_undef_terminate2(node: Node) -> None:
    """undef_terminate2: without terminate/3, stop exits with the given reason."""
    reason = ("error", "test")
    stm = started(gen_statem.start(OcStatem, [], []))
    mref = erlang.monitor("process", stm)
    assert gen_statem.stop(stm, reason, "infinity") == "ok"
    assert recv(lambda m: type(m) is tuple and m[:2] == ("DOWN", mref)) == \
        ("DOWN", mref, "process", stm, reason)


def test_undef_in_terminate(node: Node) -> None:
    """undef_in_terminate: an undef inside terminate is the exit reason stop sees."""
    data = ("undef_in_terminate", (MODULE, "terminate"))
    stm = started(gen_statem.start(Machine, ("data", data), []))
    reason = expect_exit(gen_statem.stop, stm)
    assert reason[0] == "undef" and reason[1][0][:2] == (MODULE, "terminate")


# -- request-id collections ----------------------------------------------------------------


def _statem_broken(pid2: Any) -> tuple[Any, Any]:
    erlang.unlink(pid2)
    erlang.exit(pid2, "kill")
    return ("delayed_answer", 1), "noproc"


def _three(mode: str) -> list[Any]:
    return [started(gen_statem.start(Machine, start_arg(mode, []), [])) for _ in range(3)]


def _stop_three(pids: list[Any]) -> None:
    assert gen_statem.call(pids[0], ("stop", "shutdown")) == "stopped"
    assert gen_statem.call(pids[2], ("stop", "shutdown")) == "stopped"
    for pid in pids:
        check_stopped(pid)


@pytest.mark.parametrize("wait", [False, True], ids=["receive", "wait"])
def test_send_request_reqid_collection(mode: str, wait: bool) -> None:
    """send_request_receive_reqid_collection, send_request_wait_reqid_collection."""
    pids = _three(mode)
    reqid_receive(gen_statem, pids, "alive?", "yes", _statem_broken, wait=wait)
    _stop_three(pids)


def test_send_request_check_reqid_collection(mode: str) -> None:
    """send_request_check_reqid_collection."""
    pids = _three(mode)
    reqid_check(gen_statem, pids, "alive?", "yes", _statem_broken)
    _stop_three(pids)
