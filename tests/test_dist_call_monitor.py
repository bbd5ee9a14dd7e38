"""A remote call's monitor ends with the server's reply: no demonitor has to cross back.

OTP's gen:call monitors the server, sends the request, and demonitors once the reply is
in; across nodes that demonitor is one more signal. Here the server's node ends the
call's monitor as the server sends its reply, and the reply says so. What processes can
see stays as in OTP: a call leaves no monitor behind on either side, a `send_request`
keeps its monitor until its response is collected, and a reply that the server did not
send itself (`gen_server.reply` from a helper) leaves the monitor to the caller's
demonitor. The server runs on a second node in this process, so its side can be read.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from actors import Node, erlang, gen_server, net_kernel
from actors._terms import Pid

from .conftest import COOKIE
from .helpers import wait_until

_ids = itertools.count(1)


class Server(gen_server.GenServer):
    """ "ping" answers at once; "helper" is answered by another process; "hold" is
    answered only when "release" is cast; "monitored_by" tells who monitors it."""

    def init(self, _: Any) -> Any:
        return ("ok", [])

    def handle_call(self, request: Any, from_: Any, held: list[Any]) -> Any:
        match request:
            case "ping":
                return ("reply", "pong", held)
            case "helper":
                erlang.spawn(lambda: gen_server.reply(from_, "from a helper"))
                return ("noreply", held)
            case "hold":
                return ("noreply", [*held, from_])
        return ("reply", ("unknown", request), held)

    def handle_cast(self, request: Any, held: list[Any]) -> Any:
        if request == "release":
            for from_ in held:
                gen_server.reply(from_, "late")
            return ("noreply", [])
        return ("noreply", held)


@pytest.fixture
def server(dist_node: Node) -> Iterator[tuple[Node, Pid]]:
    """A Server on a second node of this process, which `dist_node` is connected to."""
    other = net_kernel.start_node(f"callmon{next(_ids)}@127.0.0.1", cookie=COOKIE)
    with other.bound():
        _, pid = gen_server.start(Server(), None)
    assert net_kernel.connect_node(other.name) is True
    yield other, pid
    other.stop()


def monitors_on(node: Node, pid: Pid) -> dict[Any, Any]:
    proc = node.lookup(pid)
    assert proc is not None
    return dict(proc.monitored_by)


def my_monitors() -> list[Any]:
    return erlang.process_info(erlang.self(), "monitors")[1]


def test_a_call_has_ended_its_monitor_on_both_sides_when_it_returns(
        server: tuple[Node, Pid]) -> None:
    other, pid = server
    for _ in range(3):
        assert gen_server.call(pid, "ping") == "pong"
        assert monitors_on(other, pid) == {}  # at once: nothing was left to a demonitor
        assert my_monitors() == []
    proc = other.lookup(pid)
    assert proc is not None and not proc.call_monitors


def test_a_send_request_keeps_its_monitor_until_the_response_is_collected(
        server: tuple[Node, Pid]) -> None:
    other, pid = server
    me = erlang.self()
    request = gen_server.send_request(pid, "ping")
    wait_until(lambda: erlang.process_info(me, "message_queue_len")[1] == 1, 5.0)
    assert my_monitors() == [("process", pid)]  # the reply is here, not yet collected
    assert [w for w, _ in monitors_on(other, pid).values()] == [me]
    assert gen_server.receive_response(request, 1000) == ("reply", "pong")
    assert my_monitors() == []
    assert gen_server.call(pid, "ping") == "pong"  # the demonitor rides ahead of this call
    assert monitors_on(other, pid) == {}


def test_a_multi_call_has_ended_its_monitors_when_it_returns(
        server: tuple[Node, Pid]) -> None:
    other, pid = server
    with other.bound():
        erlang.register("callmon_server", pid)
    replies, bad = gen_server.multi_call([other.name], "callmon_server", "ping", 5000)
    assert (replies, bad) == ([(other.name, "pong")], [])
    assert monitors_on(other, pid) == {}  # it collects every answer, as a call does
    assert my_monitors() == []


def test_a_reply_from_another_process_leaves_the_monitor_to_the_callers_demonitor(
        server: tuple[Node, Pid]) -> None:
    other, pid = server
    assert gen_server.call(pid, "helper") == "from a helper"
    assert my_monitors() == []
    assert gen_server.call(pid, "ping") == "pong"  # the first call's demonitor came first
    assert monitors_on(other, pid) == {}
    proc = other.lookup(pid)
    assert proc is not None and not proc.call_monitors


def test_a_timed_out_call_leaves_no_monitor_and_its_late_reply_is_dropped(
        server: tuple[Node, Pid]) -> None:
    other, pid = server
    with pytest.raises(erlang.Exit) as info:
        gen_server.call(pid, "hold", 50)
    assert info.value.reason == ("timeout", ("gen_server", "call", [pid, "hold", 50]))
    gen_server.cast(pid, "release")  # the late reply: the caller's demonitor went first
    assert gen_server.call(pid, "ping") == "pong"
    assert monitors_on(other, pid) == {}
    proc = other.lookup(pid)
    assert proc is not None and not proc.call_monitors
    assert erlang.process_info(erlang.self(), "message_queue_len") == ("message_queue_len", 0)


def test_a_server_that_dies_after_its_reply_sends_its_caller_no_down(
        server: tuple[Node, Pid]) -> None:
    other, pid = server
    assert gen_server.call(pid, "ping") == "pong"
    ref = erlang.monitor("process", pid)
    wait_until(lambda: ref in monitors_on(other, pid), 5.0)  # set there before the kill
    with other.bound():
        erlang.exit(pid, "kill")
    down = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref), 5000)
    assert down == ("DOWN", ref, "process", pid, "killed")
    assert erlang.process_info(erlang.self(), "message_queue_len") == ("message_queue_len", 0)


def test_a_request_that_does_not_pickle_leaves_no_monitor_behind(
        server: tuple[Node, Pid]) -> None:
    """The monitor is set before the request goes (so no DOWN can miss it); a request that
    cannot be sent must take it back, or a later nodedown would bring a stray DOWN."""
    other, pid = server
    for send in (lambda r: gen_server.call(pid, r), lambda r: gen_server.send_request(pid, r)):
        with pytest.raises(erlang.Error) as info:
            send(threading.Lock())
        assert info.value.reason[0] == "badarg"
        assert my_monitors() == []
    assert gen_server.call(pid, "ping") == "pong"
    assert monitors_on(other, pid) == {}
