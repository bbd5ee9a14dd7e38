"""erlang: spawning, sending and receiving, as Erlang/OTP defines them."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from actors import Node, erlang
from actors.erlang import Pid, Ref
from tests.helpers import down_of, no_message, recv, wait_until

N_ORDERED = 1000


def wait_forever() -> None:
    """A process that only ends when it is killed or sent "stop"."""
    erlang.receive(lambda m: m == "stop")


def send_back(to: Pid, *values: Any) -> None:
    erlang.send(to, ("values", erlang.self(), values))


def crash() -> None:
    raise RuntimeError("child crash")


def is_waiting_with(pid: Pid, n: int) -> bool:
    info = erlang.process_info(pid)
    return info != "undefined" and info["status"] == "waiting" and info["message_queue_len"] == n


# -- spawn shapes ---------------------------------------------------------------------------


def test_spawn_returns_pid_and_runs_fun_with_args(node: Node) -> None:
    me = erlang.self()
    pid = erlang.spawn(send_back, me, 1, "two", (3,))
    assert type(pid) is Pid
    assert pid.node == node.name
    assert pid != me
    assert recv() == ("values", pid, (1, "two", (3,)))


def test_spawn_creates_no_link(node: Node) -> None:
    plain = erlang.spawn(crash)
    assert plain not in erlang.process_info(erlang.self())["links"]
    # A crash of an unlinked child leaves the parent alive.
    mref = erlang.monitor("process", plain)
    down = recv(down_of(mref))
    assert down[4] == "noproc" or down[4][0].args == ("child crash",)
    assert erlang.is_process_alive(erlang.self())
    assert erlang.process_info(erlang.self())["links"] == []


def test_spawn_link_links_both_ways(node: Node) -> None:
    me = erlang.self()
    pid = erlang.spawn_link(wait_forever)
    try:
        assert pid in erlang.process_info(me)["links"]
        assert me in erlang.process_info(pid)["links"]
    finally:
        erlang.unlink(pid)
        erlang.send(pid, "stop")


def test_spawn_monitor_returns_pid_and_ref(node: Node) -> None:
    result = erlang.spawn_monitor(erlang.exit, "bye")
    assert type(result) is tuple and len(result) == 2
    pid, ref = result
    assert type(pid) is Pid and type(ref) is Ref
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "bye")
    # A monitor is not a link.
    assert erlang.is_process_alive(erlang.self())


def test_spawn_of_non_callable_is_badarg(node: Node) -> None:
    with pytest.raises(erlang.Error) as info:
        erlang.spawn("not a function")  # type: ignore[arg-type]
    assert info.value.reason == "badarg"


# -- send -----------------------------------------------------------------------------------


def test_send_returns_the_message(node: Node) -> None:
    msg = ("hello", [1, 2, 3])
    assert erlang.send(erlang.self(), msg) is msg
    assert recv() is msg


def test_messages_from_one_process_arrive_in_send_order(node: Node) -> None:
    me = erlang.self()

    def sender() -> None:
        for i in range(N_ORDERED):
            erlang.send(me, ("n", i))

    erlang.spawn(sender)
    got = [recv(lambda m: type(m) is tuple and m[0] == "n")[1] for _ in range(N_ORDERED)]
    assert got == list(range(N_ORDERED))


def test_messages_to_one_process_arrive_in_send_order(node: Node) -> None:
    me = erlang.self()

    def collector() -> None:
        got = [erlang.receive(None, 3000) for _ in range(N_ORDERED)]
        erlang.send(me, ("collected", got))

    pid = erlang.spawn(collector)
    for i in range(N_ORDERED):
        erlang.send(pid, i)
    assert recv(lambda m: m[0] == "collected", 5000)[1] == list(range(N_ORDERED))


# -- receive --------------------------------------------------------------------------------


def test_selective_receive_returns_first_match_and_keeps_the_rest_in_order(node: Node) -> None:
    me = erlang.self()
    for msg in (1, "a", 2, "b", 3, 10):
        erlang.send(me, msg)
    assert erlang.receive(lambda m: isinstance(m, str), 0) == "a"
    assert erlang.receive(lambda m: isinstance(m, int) and m > 1, 0) == 2
    assert erlang.receive(lambda m: isinstance(m, str), 0) == "b"
    assert erlang.receive(lambda m: m == "absent", 0) is erlang.TIMEOUT
    rest = [erlang.receive(None, 0) for _ in range(4)]
    assert rest == [1, 3, 10, erlang.TIMEOUT]


def test_selective_receive_waits_past_messages_that_arrive_later(node: Node) -> None:
    me = erlang.self()

    def picky() -> None:
        got = erlang.receive(lambda m: m == "wanted", 3000)
        rest = []
        for _ in range(10):
            msg = erlang.receive(None, 0)
            if msg is erlang.TIMEOUT:
                break
            rest.append(msg)
        erlang.send(me, ("picky", got, rest))

    pid = erlang.spawn(picky)
    wait_until(lambda: is_waiting_with(pid, 0))
    erlang.send(pid, "x1")
    wait_until(lambda: is_waiting_with(pid, 1))  # woke, skipped x1, waits again
    erlang.send(pid, "x2")
    wait_until(lambda: is_waiting_with(pid, 2))
    erlang.send(pid, "wanted")
    assert recv(lambda m: m[0] == "picky") == ("picky", "wanted", ["x1", "x2"])


def test_receive_timeout_returns_TIMEOUT_after_the_timeout(node: Node) -> None:
    start = time.monotonic()
    assert erlang.receive(None, 80) is erlang.TIMEOUT
    elapsed = time.monotonic() - start
    assert 0.07 <= elapsed < 2.0


def test_receive_timeout_with_only_non_matching_messages(node: Node) -> None:
    me = erlang.self()
    erlang.send(me, "other")
    start = time.monotonic()
    assert erlang.receive(lambda m: m == "wanted", 50) is erlang.TIMEOUT
    assert time.monotonic() - start >= 0.04
    assert erlang.receive(None, 0) == "other"


def test_receive_timeout_zero(node: Node) -> None:
    start = time.monotonic()
    assert erlang.receive(None, 0) is erlang.TIMEOUT
    assert time.monotonic() - start < 0.5
    erlang.send(erlang.self(), "here")
    assert erlang.receive(None, 0) == "here"
    assert erlang.receive(None, 0) is erlang.TIMEOUT


def test_receive_infinity_wakes_on_message(node: Node) -> None:
    me = erlang.self()

    def waiter() -> None:
        erlang.send(me, ("got", erlang.receive(None, "infinity")))

    pid = erlang.spawn(waiter)
    wait_until(lambda: is_waiting_with(pid, 0))
    erlang.send(pid, "wake")
    assert recv(lambda m: m[0] == "got") == ("got", "wake")


# -- self() in a plain thread ---------------------------------------------------------------


def test_self_in_plain_thread_is_a_shell_pid_that_receives(node: Node) -> None:
    me = erlang.self()
    assert type(me) is Pid
    assert me.node == node.name
    assert erlang.self() == me  # stable
    assert erlang.is_process_alive(me)
    erlang.spawn(lambda: erlang.send(me, ("hi from", erlang.self())))
    msg = recv()
    assert msg[0] == "hi from" and type(msg[1]) is Pid and msg[1] != me


def test_each_plain_thread_gets_its_own_shell(node: Node) -> None:
    pids: queue.Queue[Pid] = queue.Queue()
    results: queue.Queue[Any] = queue.Queue()

    def thread_main() -> None:
        with node.bound():
            pids.put(erlang.self())
            results.put(erlang.receive(None, 3000))

    t = threading.Thread(target=thread_main, daemon=True)
    t.start()
    other = pids.get(timeout=3)
    assert type(other) is Pid and other.node == node.name
    assert other != erlang.self()
    erlang.send(other, "for the other shell")
    assert results.get(timeout=3) == "for the other shell"
    t.join(timeout=3)
    assert not t.is_alive()
    no_message(timeout=50)  # nothing leaked into this thread's shell


# -- sends that go nowhere ------------------------------------------------------------------


def test_send_to_unregistered_name_raises_badarg(node: Node) -> None:
    with pytest.raises(erlang.Error) as info:
        erlang.send("no_such_name", "hi")
    assert info.value.reason == "badarg"


def test_send_to_unregistered_name_raises_badarg_in_a_process(node: Node) -> None:
    me = erlang.self()

    def sender() -> None:
        try:
            erlang.send("no_such_name", "hi")
        except erlang.Error as e:
            erlang.send(me, ("caught", e.reason))
        else:
            erlang.send(me, ("no error",))

    erlang.spawn(sender)
    assert recv() == ("caught", "badarg")


def test_send_to_registered_name_delivers(node: Node) -> None:
    erlang.register("msg_target", erlang.self())
    assert erlang.send("msg_target", "by name") == "by name"
    assert recv() == "by name"
    assert erlang.send(("msg_target", node.name), "by tuple") == "by tuple"
    assert recv() == "by tuple"


def test_send_to_name_node_tuple_with_unknown_name_is_dropped(node: Node) -> None:
    msg = ("lost",)
    assert erlang.send(("no_such_name", node.name), msg) is msg
    no_message(timeout=50)


def test_send_to_dead_pid_is_dropped(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(lambda: None)
    assert recv(down_of(ref))[4] == "normal"
    assert not erlang.is_process_alive(pid)
    assert erlang.send(pid, "into the void") == "into the void"
    no_message(timeout=50)
