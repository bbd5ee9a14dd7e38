"""erlang: monitors and DOWN messages, as Erlang/OTP defines them."""

from __future__ import annotations

import pytest

from actors import Node, erlang
from actors.erlang import Pid, Ref
from tests.helpers import down_of, no_message, recv, wait_until


def wait_for(msg: str) -> None:
    """Block until `msg` arrives (or the process is killed)."""
    erlang.receive(lambda m: m == msg)


def is_down(m: object) -> bool:
    return type(m) is tuple and len(m) == 5 and m[0] == "DOWN"


def queue_len(pid: Pid) -> int:
    info = erlang.process_info(pid)
    assert info != "undefined"
    return int(info["message_queue_len"])


def test_down_message_shape_and_exactly_once(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    ref = erlang.monitor("process", pid)
    assert type(ref) is Ref
    erlang.send(pid, "go")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "normal")
    no_message(down_of(ref), 100)
    no_message(is_down, 0)


def test_down_carries_the_exit_reason(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    ref = erlang.monitor("process", pid)
    erlang.exit(pid, ("reason", 1))
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, ("reason", 1))


def test_monitor_and_link_together_give_one_down(node: Node) -> None:
    erlang.process_flag("trap_exit", True)
    try:
        pid = erlang.spawn_link(wait_for, "go")
        ref = erlang.monitor("process", pid)
        erlang.exit(pid, "kill")
        assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "killed")
        assert recv(lambda m: m[0] == "EXIT") == ("EXIT", pid, "killed")
        no_message(is_down, 100)
    finally:
        erlang.process_flag("trap_exit", False)


def test_each_monitor_gets_its_own_down(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    ref1 = erlang.monitor("process", pid)
    ref2 = erlang.monitor("process", pid)
    assert ref1 != ref2
    erlang.send(pid, "go")
    assert recv(down_of(ref1))[4] == "normal"
    assert recv(down_of(ref2))[4] == "normal"
    no_message(is_down, 100)


def test_monitor_on_dead_pid_gives_noproc_at_once(node: Node) -> None:
    pid, ref0 = erlang.spawn_monitor(lambda: None)
    recv(down_of(ref0))
    ref = erlang.monitor("process", pid)
    assert recv(down_of(ref), 500) == ("DOWN", ref, "process", pid, "noproc")
    no_message(down_of(ref), 100)


def test_monitor_by_registered_name(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    erlang.register("watched", pid)
    ref = erlang.monitor("process", "watched")
    erlang.exit(pid, "bye")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", ("watched", node.name), "bye")


def test_monitor_by_name_node_tuple(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    erlang.register("watched2", pid)
    ref = erlang.monitor("process", ("watched2", node.name))
    erlang.send(pid, "go")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", ("watched2", node.name), "normal")


def test_monitor_by_unregistered_name_gives_noproc_at_once(node: Node) -> None:
    ref = erlang.monitor("process", "nobody_here")
    assert recv(down_of(ref), 500) == (
        "DOWN", ref, "process", ("nobody_here", node.name), "noproc")


def test_monitor_follows_the_process_not_the_name(node: Node) -> None:
    # The monitor is set on the process the name pointed at when monitor/2 was called.
    first = erlang.spawn(wait_for, "go")
    erlang.register("moving", first)
    ref = erlang.monitor("process", "moving")
    erlang.unregister("moving")
    second = erlang.spawn(wait_for, "go")
    erlang.register("moving", second)
    erlang.send(second, "go")
    no_message(down_of(ref), 100)
    erlang.exit(first, "first down")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", ("moving", node.name), "first down")


def test_monitor_bad_type_is_badarg(node: Node) -> None:
    with pytest.raises(erlang.Error) as info:
        erlang.monitor("port", erlang.self())
    assert info.value.reason == "badarg"


def test_demonitor_prevents_down(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    ref = erlang.monitor("process", pid)
    assert erlang.demonitor(ref) is True
    erlang.send(pid, "go")
    ref2 = erlang.monitor("process", pid)  # a second monitor tells us when it is over
    recv(down_of(ref2))
    no_message(down_of(ref), 100)


def test_demonitor_flush_removes_queued_down(node: Node) -> None:
    me = erlang.self()
    pid = erlang.spawn(wait_for, "go")
    ref = erlang.monitor("process", pid)
    erlang.send(pid, "go")
    wait_until(lambda: queue_len(me) == 1)  # the DOWN is queued, unreceived
    assert erlang.demonitor(ref, ["flush"]) is True
    no_message(down_of(ref), 100)
    assert queue_len(me) == 0


def test_demonitor_flush_keeps_other_messages(node: Node) -> None:
    me = erlang.self()
    pid = erlang.spawn(wait_for, "go")
    ref = erlang.monitor("process", pid)
    erlang.send(me, "before")
    erlang.send(pid, "go")
    wait_until(lambda: queue_len(me) == 2)
    erlang.send(me, "after")
    erlang.demonitor(ref, ["flush"])
    assert erlang.receive(None, 0) == "before"
    assert erlang.receive(None, 0) == "after"
    assert erlang.receive(None, 0) is erlang.TIMEOUT


def test_demonitor_info(node: Node) -> None:
    pid = erlang.spawn(wait_for, "go")
    ref = erlang.monitor("process", pid)
    assert erlang.demonitor(ref, ["info"]) is True  # was active, now removed
    assert erlang.demonitor(ref, ["info"]) is False  # nothing left to remove
    erlang.send(pid, "go")


def test_demonitor_info_after_down_is_false(node: Node) -> None:
    # OTP: info returns false when the monitor was not found, "probably because someone
    # already has placed a DOWN message ... in the caller's message queue".
    me = erlang.self()
    pid = erlang.spawn(wait_for, "go")
    ref2 = erlang.monitor("process", pid)
    erlang.send(pid, "go")
    wait_until(lambda: queue_len(me) == 1)
    # The monitor already fired: info says it was not found; flush drops the DOWN.
    assert erlang.demonitor(ref2, ["flush", "info"]) is False
    no_message(down_of(ref2), 50)


def test_demonitor_of_unknown_ref_is_true(node: Node) -> None:
    assert erlang.demonitor(erlang.make_ref()) is True
    assert erlang.demonitor(erlang.make_ref(), ["info"]) is False


def test_spawn_monitor(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(wait_for, "go")
    assert type(pid) is Pid and type(ref) is Ref
    assert ("process", pid) in erlang.process_info(erlang.self())["monitors"]
    erlang.exit(pid, "stopped")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "stopped")
    no_message(down_of(ref), 100)


def test_monitor_is_gone_after_down(node: Node) -> None:
    # Once the DOWN is sent the monitor no longer exists: process_info(self(), monitors)
    # no longer lists it and demonitor/2 with info finds nothing.
    pid, ref = erlang.spawn_monitor(wait_for, "go")
    assert erlang.process_info(erlang.self())["monitors"] == [("process", pid)]
    erlang.send(pid, "go")
    recv(down_of(ref))
    assert erlang.process_info(erlang.self())["monitors"] == []
    assert erlang.demonitor(ref, ["info"]) is False


def test_spawn_monitor_of_instant_crash_still_gets_real_reason(node: Node) -> None:
    # spawn_monitor is atomic: even a process that dies at once reports its own reason,
    # never noproc.
    for i in range(20):
        pid, ref = erlang.spawn_monitor(erlang.exit, ("quick", i))
        assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, ("quick", i))


def test_monitoring_process_death_removes_its_monitor(node: Node) -> None:
    me = erlang.self()
    target = erlang.spawn(wait_for, "go")

    def watcher() -> None:
        erlang.monitor("process", target)
        erlang.send(me, "monitoring")
        wait_for("never")

    w, wref = erlang.spawn_monitor(watcher)
    recv(lambda m: m == "monitoring")
    assert erlang.process_info(target)["monitored_by"] == [w]
    erlang.exit(w, "kill")
    recv(down_of(wref))
    assert erlang.process_info(target)["monitored_by"] == []
    erlang.send(target, "go")
