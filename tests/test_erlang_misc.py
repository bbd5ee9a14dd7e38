"""erlang: names, timers, unique integers, time, node(), process_info, the process
dictionary, and the Pid and Ref terms, as Erlang/OTP defines them."""

from __future__ import annotations

import logging
import pickle
import re
import time
from itertools import pairwise
from typing import Any

import pytest

from actors import Node, erlang
from actors.erlang import Pid, Ref
from tests.helpers import down_of, no_message, recv, wait_until


def wait_for(msg: str) -> None:
    """Block until `msg` arrives (or the process is killed)."""
    erlang.receive(lambda m: m == msg)


def dead_pid() -> Pid:
    pid, ref = erlang.spawn_monitor(lambda: None)
    recv(down_of(ref))
    return pid


def assert_badarg(fun: Any, *args: Any) -> None:
    with pytest.raises(erlang.Error) as info:
        fun(*args)
    assert info.value.reason == "badarg"


# -- names ----------------------------------------------------------------------------------


def test_register_whereis_unregister(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    assert erlang.whereis("svc") == "undefined"
    assert erlang.register("svc", pid) is True
    assert erlang.whereis("svc") == pid
    assert "svc" in erlang.registered()
    assert erlang.process_info(pid)["registered_name"] == "svc"
    assert erlang.unregister("svc") is True
    assert erlang.whereis("svc") == "undefined"
    assert "svc" not in erlang.registered()
    assert erlang.is_process_alive(pid)
    erlang.send(pid, "go")


def test_whereis_free_name_is_undefined(node: Node) -> None:
    assert erlang.whereis("never_registered") == "undefined"


def test_registered_lists_all_names(node: Node) -> None:
    pids = [erlang.spawn(wait_for, "go") for _ in range(3)]
    for i, pid in enumerate(pids):
        erlang.register(f"n{i}", pid)
    assert {"n0", "n1", "n2"} <= set(erlang.registered())
    for pid in pids:
        erlang.send(pid, "go")


def test_spawn_with_a_node_and_no_function_is_badarg(node: Node) -> None:
    """spawn(node) names where to run but not what: badarg, as Erlang's spawn/2 with a
    non-fun, here or on another node, before anything starts."""
    erlang.self()  # the test thread's shell process, before counting
    before = len(erlang.processes())
    for spawn in (erlang.spawn, erlang.spawn_link, erlang.spawn_monitor):
        assert_badarg(spawn, node.name)
        assert_badarg(spawn, "elsewhere@nohost")
    assert len(erlang.processes()) == before


def test_register_taken_name_is_badarg(node: Node) -> None:
    a = erlang.spawn(wait_for, "go")
    b = erlang.spawn(wait_for, "go")
    erlang.register("taken", a)
    assert_badarg(erlang.register, "taken", b)
    assert erlang.whereis("taken") == a


def test_register_dead_pid_is_badarg(node: Node) -> None:
    pid = dead_pid()
    assert_badarg(erlang.register, "ghost", pid)
    assert erlang.whereis("ghost") == "undefined"


def test_register_already_named_pid_is_badarg(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    erlang.register("first_name", pid)
    assert_badarg(erlang.register, "second_name", pid)
    assert erlang.whereis("second_name") == "undefined"
    assert erlang.whereis("first_name") == pid


def test_register_undefined_is_badarg(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    assert_badarg(erlang.register, "undefined", pid)
    assert "undefined" not in erlang.registered()


def test_unregister_free_name_is_badarg(node: Node) -> None:
    assert_badarg(erlang.unregister, "not_a_registered_name")


def test_name_freed_when_process_dies(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(wait_for, "go")
    erlang.register("mortal", pid)
    erlang.send("mortal", "go")
    recv(down_of(ref))
    assert erlang.whereis("mortal") == "undefined"
    assert "mortal" not in erlang.registered()
    assert_badarg(erlang.send, "mortal", "anyone?")
    other = erlang.spawn(wait_for, "go")
    erlang.register("mortal", other)  # the name is free again
    assert erlang.whereis("mortal") == other


def test_name_freed_when_process_crashes(node: Node) -> None:
    me = erlang.self()

    def crasher() -> None:
        erlang.register("crasher", erlang.self())
        erlang.send(me, "registered")
        wait_for("go")
        raise RuntimeError("crash")

    pid, ref = erlang.spawn_monitor(crasher)
    recv(lambda m: m == "registered")
    assert erlang.whereis("crasher") == pid
    erlang.send("crasher", "go")
    recv(down_of(ref))
    assert erlang.whereis("crasher") == "undefined"


# -- timers ---------------------------------------------------------------------------------


def test_send_after_delivers_after_the_delay(node: Node) -> None:
    start = time.monotonic()
    ref = erlang.send_after(200, erlang.self(), "tick")
    assert type(ref) is Ref
    assert recv(lambda m: m == "tick", 3000) == "tick"
    elapsed = time.monotonic() - start
    assert elapsed >= 0.1, f"timer fired after {elapsed:.3f}s of 0.2s"
    assert elapsed < 2.0


def test_send_after_to_registered_name(node: Node) -> None:
    erlang.register("timer_target", erlang.self())
    erlang.send_after(20, "timer_target", "named tick")
    assert recv(lambda m: m == "named tick") == "named tick"


def test_send_after_keeps_order_of_due_times(node: Node) -> None:
    me = erlang.self()
    erlang.send_after(120, me, "third")
    erlang.send_after(10, me, "first")
    erlang.send_after(60, me, "second")
    assert [recv(), recv(), recv()] == ["first", "second", "third"]


def test_start_timer_delivers_timeout_tuple(node: Node) -> None:
    ref = erlang.start_timer(30, erlang.self(), "payload")
    assert type(ref) is Ref
    assert recv() == ("timeout", ref, "payload")


def test_cancel_timer_before_firing_returns_remaining_ms(node: Node) -> None:
    ref = erlang.send_after(300, erlang.self(), "cancelled")
    left = erlang.cancel_timer(ref)
    assert type(left) is int
    assert 0 < left <= 300
    no_message(lambda m: m == "cancelled", 500)
    assert erlang.cancel_timer(ref) is False


def test_cancel_timer_after_firing_returns_false(node: Node) -> None:
    ref = erlang.send_after(10, erlang.self(), "fired")
    recv(lambda m: m == "fired")
    assert erlang.cancel_timer(ref) is False
    assert erlang.read_timer(ref) is False


def test_cancel_start_timer(node: Node) -> None:
    ref = erlang.start_timer(200, erlang.self(), "nope")
    assert type(erlang.cancel_timer(ref)) is int
    no_message(lambda m: type(m) is tuple and m[0] == "timeout", 300)


def test_read_timer(node: Node) -> None:
    ref = erlang.send_after(1000, erlang.self(), "later")
    left = erlang.read_timer(ref)
    assert type(left) is int and 0 < left <= 1000
    wait_until(lambda: erlang.read_timer(ref) < left)  # it counts down
    assert type(erlang.cancel_timer(ref)) is int
    assert erlang.read_timer(ref) is False


def test_cancel_timer_with_non_ref_is_badarg(node: Node) -> None:
    assert_badarg(erlang.cancel_timer, "not a ref")


def test_send_after_negative_time_is_badarg(node: Node) -> None:
    assert_badarg(erlang.send_after, -1, erlang.self(), "x")


def test_cancel_unknown_timer_is_false(node: Node) -> None:
    assert erlang.cancel_timer(erlang.make_ref()) is False


# -- unique integers and time ---------------------------------------------------------------


def test_unique_integer_monotonic_positive(node: Node) -> None:
    values = [erlang.unique_integer(["monotonic", "positive"]) for _ in range(1000)]
    assert all(type(v) is int and v > 0 for v in values)
    assert all(a < b for a, b in pairwise(values))


def test_unique_integer_unique_across_processes(node: Node) -> None:
    me = erlang.self()

    def draw() -> None:
        erlang.send(me, ("ints", [erlang.unique_integer() for _ in range(200)]))

    for _ in range(4):
        erlang.spawn(draw)
    drawn: list[int] = [erlang.unique_integer() for _ in range(200)]
    for _ in range(4):
        drawn.extend(recv(lambda m: m[0] == "ints")[1])
    assert len(set(drawn)) == len(drawn) == 1000


def test_unique_integer_bad_modifier_is_badarg(node: Node) -> None:
    assert_badarg(erlang.unique_integer, ["bogus"])


def test_system_time_millisecond(node: Node) -> None:
    now = erlang.system_time("millisecond")
    assert type(now) is int
    assert abs(now - time.time() * 1000) < 1000
    assert abs(erlang.system_time("second") - time.time()) < 2


def test_monotonic_time_non_decreasing(node: Node) -> None:
    values = [erlang.monotonic_time() for _ in range(1000)]
    assert all(type(v) is int for v in values)
    assert all(a <= b for a, b in pairwise(values))
    ms = [erlang.monotonic_time("millisecond") for _ in range(100)]
    assert all(a <= b for a, b in pairwise(ms))


def test_time_bad_unit_is_badarg(node: Node) -> None:
    assert_badarg(erlang.system_time, "fortnight")


# -- node() ---------------------------------------------------------------------------------


def test_node_returns_bound_node_name(node: Node) -> None:
    assert erlang.node() == node.name
    me = erlang.self()
    erlang.spawn(lambda: erlang.send(me, ("node", erlang.node())))
    assert recv(lambda m: m[0] == "node") == ("node", node.name)


def test_node_of_pid_and_ref(node: Node) -> None:
    assert erlang.node(erlang.self()) == node.name
    assert erlang.node(erlang.make_ref()) == node.name
    assert erlang.node(Pid("elsewhere@host", 7)) == "elsewhere@host"


# -- process_info ---------------------------------------------------------------------------


def test_process_info_fields(node: Node) -> None:
    me = erlang.self()

    def subject() -> None:
        erlang.register("subject", erlang.self())
        buddy = erlang.spawn_link(wait_for, "go")
        erlang.monitor("process", buddy)
        erlang.send(me, ("buddy", buddy))
        wait_for("done")
        erlang.send(buddy, "go")

    pid = erlang.spawn(subject)
    buddy = recv(lambda m: m[0] == "buddy")[1]
    for i in range(3):
        erlang.send(pid, ("noise", i))

    def settled() -> bool:
        info = erlang.process_info(pid)
        return info["status"] == "waiting" and info["message_queue_len"] == 3

    wait_until(settled)
    info = erlang.process_info(pid)
    assert isinstance(info, dict)
    assert info["registered_name"] == "subject"
    assert info["message_queue_len"] == 3
    assert info["links"] == [buddy]
    assert info["monitors"] == [("process", buddy)]
    assert info["status"] == "waiting"
    assert info["trap_exit"] is False
    assert erlang.process_info(pid, "message_queue_len") == ("message_queue_len", 3)
    assert erlang.process_info(buddy)["links"] == [pid]
    erlang.send(pid, "done")


def test_process_info_of_dead_pid_is_undefined(node: Node) -> None:
    pid = dead_pid()
    assert erlang.process_info(pid) == "undefined"
    assert erlang.process_info(pid, "status") == "undefined"


def test_process_info_of_non_pid_is_badarg(node: Node) -> None:
    assert_badarg(erlang.process_info, "not a pid")


def test_process_info_unknown_item_is_badarg(node: Node) -> None:
    assert_badarg(erlang.process_info, erlang.self(), "no_such_item")


# -- process dictionary ---------------------------------------------------------------------


def test_put_get(node: Node) -> None:
    me = erlang.self()

    def dict_user() -> None:
        results = [
            erlang.get("k"),
            erlang.put("k", 1),
            erlang.put("k", 2),
            erlang.get("k"),
            erlang.put(("tuple", "key"), [1]),
            erlang.get(("tuple", "key")),
        ]
        erlang.send(me, ("dict", results))

    erlang.spawn(dict_user)
    assert recv(lambda m: m[0] == "dict") == ("dict", ["undefined", "undefined", 1, 2,
                                                       "undefined", [1]])


def test_process_dictionary_is_per_process(node: Node) -> None:
    me = erlang.self()
    erlang.put("shared?", "shell value")

    def other() -> None:
        erlang.send(me, ("other sees", erlang.get("shared?")))
        erlang.put("shared?", "other value")
        erlang.send(me, "done")

    erlang.spawn(other)
    assert recv(lambda m: m[0] == "other sees") == ("other sees", "undefined")
    recv(lambda m: m == "done")
    assert erlang.get("shared?") == "shell value"


# -- Pid and Ref terms ----------------------------------------------------------------------


def test_pid_hashable_immutable_picklable(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    copy = pickle.loads(pickle.dumps(pid))
    assert copy == pid and hash(copy) == hash(pid)
    assert {pid: "v"}[copy] == "v"
    assert len({pid, copy, erlang.self()}) == 2
    assert pid.node == node.name and copy.node == node.name
    with pytest.raises(AttributeError):
        pid.id = 99  # type: ignore[misc]
    with pytest.raises(AttributeError):
        pid.node = "other@host"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        pid.extra = 1  # type: ignore[attr-defined]
    assert pid.node == node.name
    # A pickled pid still addresses the live process.
    erlang.send(copy, "go")
    ref = erlang.monitor("process", copy)
    assert recv(down_of(ref))[3] == pid


def test_pid_repr(node: Node) -> None:
    pid = erlang.self()
    assert re.fullmatch(r"<0\.\d+\.0>", repr(pid)), repr(pid)
    other = Pid("far@away", 5)
    assert re.fullmatch(r"<[1-9]\d*\.5\.0>", repr(other)), repr(other)


def test_pids_are_distinct(node: Node) -> None:
    pids = [erlang.spawn(lambda: None) for _ in range(50)]
    assert len(set(pids)) == 50


def test_ref_hashable_immutable_picklable(node: Node) -> None:
    ref = erlang.make_ref()
    assert type(ref) is Ref
    assert ref.node == node.name
    copy = pickle.loads(pickle.dumps(ref))
    assert copy == ref and hash(copy) == hash(ref)
    assert {ref: 1}[copy] == 1
    assert ref != erlang.make_ref()
    with pytest.raises(AttributeError):
        ref.id = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ref.node = "x"  # type: ignore[misc]


def test_ref_repr(node: Node) -> None:
    ref = erlang.make_ref()
    assert re.fullmatch(r"#Ref<0\.\d+\.\d+\.\d+>", repr(ref)), repr(ref)
    assert repr(ref).startswith("#Ref<0.")


def test_refs_are_unique(node: Node) -> None:
    refs = {erlang.make_ref() for _ in range(1000)}
    assert len(refs) == 1000


def test_timeout_is_a_singleton_through_pickle() -> None:
    assert pickle.loads(pickle.dumps(erlang.TIMEOUT)) is erlang.TIMEOUT


def test_crash_of_a_function_process_is_reported_on_the_logger(
        node: Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="actors.proc_lib")

    def crash() -> None:
        raise KeyError("lost")

    _, ref = erlang.spawn_monitor(crash)
    recv(down_of(ref))
    _, ref = erlang.spawn_monitor(lambda: erlang.exit("quiet"))  # exits are not errors
    recv(down_of(ref))
    texts = [r.getMessage() for r in caplog.records if r.name == "actors.proc_lib"]
    assert len(texts) == 1 and "Error in process" in texts[0] and "lost" in texts[0]
