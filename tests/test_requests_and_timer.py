"""gen_server.send_request / wait_response / receive_response, erlang.error, and `timer`."""

from __future__ import annotations

from typing import Any

import pytest

from actors import Node, erlang, gen_server, timer

from .helpers import down_of, no_message, recv


class Echo(gen_server.GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("later", ms):
                erlang.send_after(ms, erlang.self(), ("answer", from_))
                return ("noreply", state)
            case x:
                return ("reply", ("echo", x), state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        match msg:
            case ("answer", from_):
                gen_server.reply(from_, "late answer")
        return ("noreply", state)


@pytest.fixture
def echo(node: Node) -> Any:
    return gen_server.start(Echo, None)[1]


def test_requests_in_flight_are_answered_independently(echo: Any) -> None:
    first = gen_server.send_request(echo, 1)
    second = gen_server.send_request(echo, 2)
    assert gen_server.receive_response(second, 1000) == ("reply", ("echo", 2))
    assert gen_server.wait_response(first, 1000) == ("reply", ("echo", 1))


def test_wait_response_timeout_keeps_the_request_active(echo: Any) -> None:
    req = gen_server.send_request(echo, ("later", 150))
    assert gen_server.wait_response(req, 0) == "timeout"
    assert gen_server.wait_response(req, 2000) == ("reply", "late answer")


def test_receive_response_timeout_abandons_the_request(echo: Any) -> None:
    req = gen_server.send_request(echo, ("later", 100))
    assert gen_server.receive_response(req, 0) == "timeout"
    no_message(timeout=300)  # the late reply is dropped, never queued


def test_request_to_a_dead_server_is_an_error_with_the_server_ref(echo: Any) -> None:
    gen_server.stop(echo)
    req = gen_server.send_request(echo, 1)
    assert gen_server.wait_response(req, 1000) == ("error", ("noproc", echo))
    req = gen_server.send_request("nobody", 1)
    assert gen_server.receive_response(req, 1000) == ("error", ("noproc", "nobody"))


def test_erlang_error_exits_with_reason_and_stack(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(lambda: erlang.error("my_error"))
    reason = recv(down_of(ref))[4]
    assert reason[0] == "my_error" and isinstance(reason[1], list)
    with pytest.raises(erlang.Error) as info:
        erlang.error("badarg")
    assert info.value.reason == "badarg"
    assert erlang.is_pid(pid) and erlang.is_reference(ref) and not erlang.is_pid(ref)


def test_timer_sleep_waits_and_is_killable(node: Node) -> None:
    elapsed, result = timer.tc(timer.sleep, 60)
    assert result == "ok" and elapsed >= 60_000
    pid, ref = erlang.spawn_monitor(timer.sleep, 60_000)
    erlang.exit(pid, "kill")
    assert recv(down_of(ref), 1000)[4] == "killed"


def test_timer_send_after_and_cancel(node: Node) -> None:
    ok, tref = timer.send_after(30, erlang.self(), "ding")
    assert ok == "ok" and recv(lambda m: m == "ding") == "ding"
    _, tref = timer.send_after(200, erlang.self(), "never")
    assert timer.cancel(tref) == ("ok", "cancel")
    no_message(lambda m: m == "never", 350)


def test_timer_send_interval_repeats_until_cancelled(node: Node) -> None:
    _, tref = timer.send_interval(10, erlang.self(), "tick")
    for _ in range(3):
        recv(lambda m: m == "tick", 1000)
    assert timer.cancel(tref) == ("ok", "cancel")
    assert not erlang.is_process_alive(tref)
    while erlang.receive(lambda m: m == "tick", 0) is not erlang.TIMEOUT:
        pass  # drain ticks sent before the cancel (bounded: the timer is dead)
    no_message(lambda m: m == "tick", 100)


def test_timer_apply_after_runs_the_function_later(node: Node) -> None:
    me = erlang.self()
    _, pid = timer.apply_after(20, erlang.send, [me, "applied"])
    assert recv(lambda m: m == "applied") == "applied"
    assert erlang.is_pid(pid)
