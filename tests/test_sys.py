"""sys: inspecting and controlling a gen_server from outside, as OTP's sys module does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from actors import Exit, Node, Pid, erlang, gen_server, sys
from actors.gen_server import GenServer
from tests.helpers import down_of, exit_from, no_message, recv


class Recorder(GenServer):
    """State is a list; casts and plain messages ("append", x) append x. Reports every
    handle_info, terminate and code_change to the owner (the init argument's "owner")."""

    def init(self, args: dict[str, Any]) -> Any:
        self.owner = args["owner"]
        for key, value in args.get("pdict", {}).items():
            erlang.put(key, value)
        return ("ok", args.get("state", []), *args.get("after", ()))

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "get":
            return ("reply", state, state)
        return ("reply", ("echo", request), state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        if type(msg) is tuple and msg[0] == "append":
            return ("noreply", [*state, msg[1]])
        if type(msg) is tuple and msg[0] == "return":
            return msg[1]
        return ("noreply", state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        erlang.send(self.owner, ("info", msg))
        return self.handle_cast(msg, state)

    def terminate(self, reason: Any, state: Any) -> Any:
        erlang.send(self.owner, ("terminate", reason, state))
        return "ok"

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> Any:
        erlang.send(self.owner, ("code_change", old_vsn, extra))
        return ("ok", {"upgraded": state})


def args(**kw: Any) -> dict[str, Any]:
    return {"owner": erlang.self(), **kw}


def start_recorder(*name: Any, **kw: Any) -> Pid:
    result = gen_server.start(*name, Recorder, args(**kw))
    assert result[0] == "ok", result
    return result[1]


def tagged(tag: str) -> Callable[[Any], bool]:
    return lambda m: type(m) is tuple and len(m) >= 1 and m[0] == tag


def exit_reason(fun: Callable[..., Any], *a: Any) -> Any:
    with pytest.raises(Exit) as info:
        fun(*a)
    return info.value.reason


# -- get_state and replace_state ----------------------------------------------------------


def test_get_state_by_pid_and_by_name(node: Node) -> None:
    pid = start_recorder(("local", "rec"), state=["a"])
    assert sys.get_state(pid) == ["a"]
    assert sys.get_state("rec") == ["a"]
    gen_server.cast(pid, ("append", "b"))
    assert sys.get_state("rec", 1000) == ["a", "b"]


def test_get_state_of_a_global_server(node: Node) -> None:
    start_recorder(("global", "grec"), state="g")
    assert sys.get_state(("global", "grec")) == "g"


def test_get_state_of_missing_server_is_noproc(node: Node) -> None:
    pid = start_recorder()
    gen_server.stop(pid)
    assert exit_reason(sys.get_state, pid, 1000) == ("noproc", ("sys", "get_state", [pid, 1000]))


def test_replace_state_returns_and_installs_the_new_state(node: Node) -> None:
    pid = start_recorder(state=[1, 2])
    assert sys.replace_state(pid, lambda s: [*s, 3]) == [1, 2, 3]
    assert gen_server.call(pid, "get") == [1, 2, 3]
    gen_server.cast(pid, ("append", 4))
    assert sys.get_state(pid) == [1, 2, 3, 4]


def test_replace_state_with_a_crashing_fun_keeps_the_server_and_its_state(node: Node) -> None:
    # OTP: the state is unchanged and replace_state raises {callback_failed, ...}
    pid = start_recorder(state=["kept"])

    def bad(state: Any) -> Any:
        raise ValueError("no")

    reason = exit_reason(sys.replace_state, pid, bad)
    assert type(reason) is tuple and reason[0] == "callback_failed", reason
    assert erlang.is_process_alive(pid)
    assert sys.get_state(pid) == ["kept"]


# -- get_status ---------------------------------------------------------------------------


def test_get_status_shape_for_start_link(node: Node) -> None:
    pid = gen_server.start_link(("local", "stat"), Recorder,
                                args(state={"n": 1}, pdict={"k": "v"}))[1]
    status = sys.get_status(pid)
    assert type(status) is tuple and len(status) == 4
    tag, spid, module, items = status
    assert (tag, spid, module) == ("status", pid, ("module", "gen_server"))
    assert type(items) is list and len(items) == 5
    pdict, mode, parent, debug, misc = items
    assert type(pdict) is list and ("k", "v") in pdict
    assert mode == "running"
    assert parent == erlang.self()
    assert debug == []
    assert type(misc) is list
    assert misc[0][0] == "header"
    assert ("data", [("State", {"n": 1})]) in misc


def test_get_status_parent_of_unlinked_server_is_itself(node: Node) -> None:
    # gen_server:start (no link): the server is its own parent
    pid = start_recorder()
    assert sys.get_status(pid)[3][2] == pid


def test_get_status_by_name_while_suspended(node: Node) -> None:
    pid = start_recorder(("local", "sus"))
    assert sys.suspend("sus") == "ok"
    status = sys.get_status("sus")
    assert status[1] == pid and status[3][1] == "suspended"
    assert sys.resume("sus") == "ok"
    assert sys.get_status("sus")[3][1] == "running"


# -- suspend and resume -------------------------------------------------------------------


def test_suspend_holds_back_calls_and_casts_until_resume(node: Node) -> None:
    pid = start_recorder()
    assert sys.suspend(pid) == "ok"
    assert erlang.process_info(pid)["status"] == "suspended"
    with pytest.raises(Exit) as info:
        gen_server.call(pid, "get", 100)
    assert info.value.reason == ("timeout", ("gen_server", "call", [pid, "get", 100]))
    for i in range(5):
        gen_server.cast(pid, ("append", i))
    assert sys.get_state(pid) == []  # system messages are still answered; casts wait
    assert erlang.process_info(pid)["status"] == "suspended"
    assert sys.resume(pid) == "ok"
    assert gen_server.call(pid, "get") == [0, 1, 2, 3, 4]
    assert erlang.process_info(pid)["status"] != "suspended"


def test_suspend_holds_back_plain_messages(node: Node) -> None:
    pid = start_recorder()
    sys.suspend(pid)
    erlang.send(pid, ("append", "m"))
    no_message(tagged("info"), 100)
    sys.resume(pid)
    assert recv(tagged("info")) == ("info", ("append", "m"))


def test_call_made_while_suspended_is_answered_after_resume(node: Node) -> None:
    owner = erlang.self()
    pid = start_recorder(state="s")
    sys.suspend(pid)

    def client() -> None:
        erlang.send(owner, ("client_got", gen_server.call(pid, "get", 3000)))

    erlang.spawn(client)
    no_message(tagged("client_got"), 100)
    sys.resume(pid)
    assert recv(tagged("client_got")) == ("client_got", "s")


def test_change_code_while_suspended(node: Node) -> None:
    pid = start_recorder(state="old")
    sys.suspend(pid)
    assert sys.change_code(pid, Recorder, "1.0", "extra") == "ok"
    assert recv(tagged("code_change")) == ("code_change", "1.0", "extra")
    sys.resume(pid)
    assert gen_server.call(pid, "get") == {"upgraded": "old"}


def test_suspended_server_can_be_stopped(node: Node) -> None:
    pid = start_recorder(state="s")
    sys.suspend(pid)
    assert gen_server.stop(pid) == "ok"
    assert recv(tagged("terminate")) == ("terminate", "normal", "s")


# -- system messages and the server's timeout ---------------------------------------------


def test_system_message_does_not_cancel_a_pending_timeout(node: Node) -> None:
    # OTP's gen_server continues its loop with the same timeout after a system message
    pid = start_recorder(after=(150,))
    assert sys.get_state(pid) == []
    assert recv(tagged("info")) == ("info", "timeout")


# -- terminate ----------------------------------------------------------------------------


def test_terminate_calls_terminate_with_reason_and_ends_the_server(node: Node) -> None:
    pid = start_recorder(("local", "term"), state="st")
    ref = erlang.monitor("process", pid)
    assert sys.terminate("term", "done") == "ok"
    assert recv(tagged("terminate")) == ("terminate", "done", "st")
    assert recv(down_of(ref))[4] == "done"
    assert erlang.whereis("term") == "undefined"


def test_terminate_linked_server_sends_exit_to_parent(node: Node) -> None:
    erlang.process_flag("trap_exit", True)
    pid = gen_server.start_link(Recorder, args())[1]
    assert sys.terminate(pid, "shutdown") == "ok"
    assert recv(exit_from(pid)) == ("EXIT", pid, "shutdown")


def test_terminate_of_missing_server_is_noproc_with_location(node: Node) -> None:
    # sys:terminate/3 exits with {noproc, {sys, terminate, [Name, Reason, Timeout]}}
    pid = start_recorder()
    gen_server.stop(pid)
    reason = exit_reason(sys.terminate, pid, "normal", 1000)
    assert reason == ("noproc", ("sys", "terminate", [pid, "normal", 1000]))
