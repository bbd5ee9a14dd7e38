"""Kill takes effect at once, even when the target is stuck in Python code.

Erlang's exit(Pid, kill) ends the target unconditionally and at once. Here the target may be
a thread spinning in pure Python: the runtime must still settle its death immediately (DOWN,
links, name, liveness, mailbox) and nothing its abandoned thread does may leak out.

Every stuck loop in this file ends through a threading.Event that teardown sets, so no thread
spins after its test even if the runtime fails to interrupt it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors import Node, erlang
from actors.erlang import Pid
from tests.helpers import down_of, no_message, recv

KILL_ROUNDS = 20
MAX_THREADS = 6


@pytest.fixture
def stops() -> Iterator[list[threading.Event]]:
    """Events that end stuck loops; all are set at teardown."""
    events: list[threading.Event] = []
    yield events
    for event in events:
        event.set()


def new_stop(stops: list[threading.Event]) -> threading.Event:
    event = threading.Event()
    stops.append(event)
    return event


def stuck(report: Pid, stop: threading.Event, unwound: threading.Event) -> None:
    """Say "spinning", then spin in pure Python until `stop` (the runtime must interrupt)."""
    try:
        erlang.send(report, ("spinning", erlang.self()))
        while not stop.is_set():
            pass
        erlang.send(report, ("loop ended", erlang.self()))
    finally:
        unwound.set()


def spinning_of(pid: Pid) -> Any:
    return lambda m: m == ("spinning", pid)


def test_kill_of_stuck_process_takes_effect_at_once(node: Node,
                                                    stops: list[threading.Event]) -> None:
    me = erlang.self()
    stop, unwound = new_stop(stops), threading.Event()
    pid = erlang.spawn(stuck, me, stop, unwound)
    erlang.register("stuck_one", pid)
    ref = erlang.monitor("process", pid)
    recv(spinning_of(pid))

    start = time.monotonic()
    assert erlang.exit(pid, "kill") is True
    # Everything an observer can see changes before exit/2 returns.
    assert erlang.whereis("stuck_one") == "undefined"
    assert "stuck_one" not in erlang.registered()
    assert erlang.is_process_alive(pid) is False
    assert erlang.process_info(pid) == "undefined"
    assert pid not in erlang.processes()
    assert recv(down_of(ref), 1000) == ("DOWN", ref, "process", pid, "killed")
    assert time.monotonic() - start < 1.0
    # The name can be taken again at once.
    erlang.register("stuck_one", me)
    assert erlang.whereis("stuck_one") == me
    erlang.unregister("stuck_one")
    # The abandoned thread is interrupted: it leaves the loop without `stop` being set.
    assert unwound.wait(2.0)
    assert not stop.is_set()
    no_message(lambda m: m == ("loop ended", pid), 50)


def test_kill_of_stuck_process_reaches_trapping_link(node: Node,
                                                     stops: list[threading.Event]) -> None:
    me = erlang.self()
    stop, unwound = new_stop(stops), threading.Event()

    def trapper() -> None:
        erlang.process_flag("trap_exit", True)
        child = erlang.spawn_link(stuck, me, stop, unwound)
        erlang.send(me, ("child", child))
        erlang.send(me, ("trapper got", erlang.receive(None, 3000)))

    trap_pid, trap_ref = erlang.spawn_monitor(trapper)
    child = recv(lambda m: m[0] == "child")[1]
    recv(spinning_of(child))
    erlang.exit(child, "kill")
    assert recv(lambda m: m[0] == "trapper got") == ("trapper got", ("EXIT", child, "killed"))
    assert recv(down_of(trap_ref)) == ("DOWN", trap_ref, "process", trap_pid, "normal")
    assert unwound.wait(2.0)


def test_kill_of_stuck_process_kills_non_trapping_link(node: Node,
                                                       stops: list[threading.Event]) -> None:
    me = erlang.self()
    stop, unwound = new_stop(stops), threading.Event()

    def parent() -> None:
        child = erlang.spawn_link(stuck, me, stop, unwound)
        erlang.send(me, ("child", child))
        erlang.receive(lambda m: m == "never")

    parent_pid, parent_ref = erlang.spawn_monitor(parent)
    child = recv(lambda m: m[0] == "child")[1]
    recv(spinning_of(child))
    erlang.exit(child, "kill")
    assert recv(down_of(parent_ref)) == ("DOWN", parent_ref, "process", parent_pid, "killed")
    assert unwound.wait(2.0)


def test_messages_sent_to_killed_process_are_dropped(node: Node,
                                                     stops: list[threading.Event]) -> None:
    me = erlang.self()
    stop, unwound = new_stop(stops), threading.Event()
    seen: list[Any] = []

    def stuck_then_reads() -> None:
        try:
            erlang.send(me, ("spinning", erlang.self()))
            while not stop.is_set():
                pass
            seen.append(erlang.receive(None, 0))  # must never run: the process is dead
        finally:
            unwound.set()

    pid = erlang.spawn(stuck_then_reads)
    recv(spinning_of(pid))
    erlang.exit(pid, "kill")
    assert erlang.send(pid, "after death") == "after death"
    assert erlang.process_info(pid) == "undefined"
    assert unwound.wait(2.0)
    stop.set()
    assert seen == []


def test_abandoned_thread_sends_nothing_after_kill(node: Node) -> None:
    me = erlang.self()

    def sleeper() -> None:
        erlang.send(me, ("sleeping", erlang.self()))
        time.sleep(0.3)  # simulated blocking work: the kill lands in the middle
        erlang.send(me, ("late", erlang.self()))

    pid, ref = erlang.spawn_monitor(sleeper)
    recv(lambda m: m == ("sleeping", pid))
    erlang.exit(pid, "kill")
    assert recv(down_of(ref), 200) == ("DOWN", ref, "process", pid, "killed")
    no_message(lambda m: type(m) is tuple and m[0] == "late", 600)


def test_thread_that_swallows_the_interrupt_still_cannot_send(
        node: Node, stops: list[threading.Event]) -> None:
    # Python code can catch BaseException; even then, the dead process's sends are dropped.
    me = erlang.self()
    stop, unwound = new_stop(stops), threading.Event()

    def stubborn() -> None:
        erlang.send(me, ("spinning", erlang.self()))
        try:
            while not stop.is_set():
                pass
        except BaseException:
            pass
        try:
            erlang.send(me, ("zombie", erlang.self()))
            erlang.register("zombie_name", erlang.self())
        except BaseException:
            pass
        finally:
            unwound.set()

    pid, ref = erlang.spawn_monitor(stubborn)
    recv(spinning_of(pid))
    erlang.exit(pid, "kill")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "killed")
    assert unwound.wait(2.0)
    no_message(lambda m: type(m) is tuple and m[0] == "zombie", 200)
    assert erlang.whereis("zombie_name") == "undefined"
    no_message(down_of(ref), 0)  # still exactly one DOWN


def test_kill_of_process_blocked_in_receive(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(erlang.receive, lambda m: m == "never")
    erlang.register("blocked", pid)
    erlang.exit(pid, "kill")
    assert erlang.whereis("blocked") == "undefined"
    assert recv(down_of(ref), 1000) == ("DOWN", ref, "process", pid, "killed")


def test_killed_workers_are_freed_or_reused(node: Node,
                                            stops: list[threading.Event]) -> None:
    me = erlang.self()
    most = 0
    for _ in range(KILL_ROUNDS):
        stop, unwound = new_stop(stops), threading.Event()
        pid, ref = erlang.spawn_monitor(stuck, me, stop, unwound)
        recv(spinning_of(pid))
        erlang.exit(pid, "kill")
        assert recv(down_of(ref), 1000)[4] == "killed"
        assert unwound.wait(2.0), "the stuck thread was not interrupted"
        most = max(most, node.pool.thread_count)
    assert most <= MAX_THREADS, f"{most} worker threads for {KILL_ROUNDS} sequential kills"
    assert node.pool.thread_count <= MAX_THREADS
