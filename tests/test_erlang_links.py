"""erlang: links, exit signals and trap_exit, as Erlang/OTP defines them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from actors import Node, erlang
from actors.erlang import Pid
from tests.helpers import down_of, exit_from, no_message, recv, wait_until

CHAIN_LENGTH = 1000


def wait_forever() -> None:
    """Block until killed, or until a "stop" message arrives."""
    erlang.receive(lambda m: m == "stop")


def echo() -> None:
    """Answer ("ping", from) with ("pong", self) until "stop"; forward nothing else."""
    for _ in range(1000):
        msg = erlang.receive(lambda m: m == "stop" or (type(m) is tuple and m[0] == "ping"))
        if msg == "stop":
            return
        erlang.send(msg[1], ("pong", erlang.self()))


def forwarder(to: Pid, trap: bool = True) -> None:
    """Trap exits (if asked), say ready, then forward every message as ("fwd", self, msg)."""
    erlang.process_flag("trap_exit", trap)
    erlang.send(to, ("ready", erlang.self()))
    for _ in range(1000):
        msg = erlang.receive()
        if msg == "stop":
            return
        erlang.send(to, ("fwd", erlang.self(), msg))


def fwd_of(pid: Pid) -> Callable[[Any], bool]:
    return lambda m: type(m) is tuple and len(m) == 3 and m[0] == "fwd" and m[1] == pid


def ready_of(pid: Pid | None = None) -> Callable[[Any], bool]:
    return lambda m: (type(m) is tuple and len(m) == 2 and m[0] == "ready"
                      and (pid is None or m[1] == pid))


def ping(pid: Pid) -> None:
    erlang.send(pid, ("ping", erlang.self()))
    assert recv(lambda m: m == ("pong", pid)) == ("pong", pid)


# -- propagation ----------------------------------------------------------------------------


def test_non_normal_exit_kills_linked_process(node: Node) -> None:
    me = erlang.self()

    def parent() -> None:
        child = erlang.spawn_link(erlang.receive, lambda m: m == "die")
        erlang.send(me, ("child", child))
        erlang.receive(lambda m: m == "never")

    pid, ref = erlang.spawn_monitor(parent)
    child = recv(lambda m: m[0] == "child")[1]
    erlang.send(child, "die")  # child returns normally: the parent must survive that...
    no_message(down_of(ref), 100)
    assert erlang.is_process_alive(pid)

    def parent2() -> None:
        erlang.spawn_link(erlang.exit, "boom")
        erlang.receive(lambda m: m == "never")

    pid2, ref2 = erlang.spawn_monitor(parent2)
    assert recv(down_of(ref2)) == ("DOWN", ref2, "process", pid2, "boom")
    erlang.exit(pid, "kill")


def test_exit_propagates_through_a_long_chain_of_links(node: Node) -> None:
    me = erlang.self()

    def link_in_chain(n: int) -> None:
        if n > 0:
            erlang.spawn_link(link_in_chain, n - 1)
        erlang.send(me, ("up", erlang.self(), n))
        erlang.receive(lambda m: m == "never")

    erlang.spawn(link_in_chain, CHAIN_LENGTH - 1)
    members: dict[int, Pid] = {}
    for _ in range(CHAIN_LENGTH):
        _, pid, n = recv(lambda m: type(m) is tuple and m[0] == "up", 10000)
        members[n] = pid
    assert len(members) == CHAIN_LENGTH
    refs = {erlang.monitor("process", pid): pid for pid in members.values()}
    erlang.exit(members[0], "boom")  # the tail; the signal must travel to the head
    reasons = {}
    for _ in range(CHAIN_LENGTH):
        _, ref, _, pid, reason = recv(lambda m: type(m) is tuple and m[0] == "DOWN", 10000)
        assert refs[ref] == pid
        reasons[pid] = reason
    assert len(reasons) == CHAIN_LENGTH
    assert set(reasons.values()) == {"boom"}
    assert not any(erlang.is_process_alive(p) for p in members.values())
    assert erlang.is_process_alive(me)


def test_normal_exit_does_not_kill_linked_process(node: Node) -> None:
    me = erlang.self()

    def parent() -> None:
        child = erlang.spawn_link(erlang.receive, lambda m: m == "go")
        ref = erlang.monitor("process", child)
        erlang.send(child, "go")
        down = erlang.receive(down_of(ref), 3000)
        erlang.send(me, ("child down", down[4] if down is not erlang.TIMEOUT else down))
        echo()

    pid, ref = erlang.spawn_monitor(parent)
    assert recv(lambda m: m[0] == "child down") == ("child down", "normal")
    ping(pid)
    no_message(down_of(ref), 50)
    erlang.send(pid, "stop")
    assert recv(down_of(ref))[4] == "normal"


# -- trap_exit ------------------------------------------------------------------------------


def test_trap_exit_turns_exit_signal_into_message(node: Node) -> None:
    me = erlang.self()

    def parent() -> None:
        erlang.process_flag("trap_exit", True)
        child = erlang.spawn_link(erlang.exit, ("custom", 1))
        msg = erlang.receive(None, 3000)
        erlang.send(me, ("got", child, msg))
        echo()

    pid, ref = erlang.spawn_monitor(parent)
    _, child, msg = recv(lambda m: m[0] == "got")
    assert msg == ("EXIT", child, ("custom", 1))
    ping(pid)  # the trapping parent survived
    erlang.send(pid, "stop")
    assert recv(down_of(ref))[4] == "normal"


def test_trapping_process_gets_EXIT_normal_from_linked_process(node: Node) -> None:
    me = erlang.self()
    fwd = erlang.spawn(forwarder, me)
    recv(ready_of(fwd))

    def child() -> None:
        erlang.link(fwd)

    kid = erlang.spawn(child)
    assert recv(fwd_of(fwd))[2] == ("EXIT", kid, "normal")
    erlang.send(fwd, "stop")


def test_process_flag_returns_old_value(node: Node) -> None:
    me = erlang.self()

    def flags() -> None:
        results = [
            erlang.process_flag("trap_exit", True),
            erlang.process_flag("trap_exit", True),
            erlang.process_flag("trap_exit", False),
            erlang.process_flag("trap_exit", False),
        ]
        erlang.send(me, ("flags", results))

    erlang.spawn(flags)
    assert recv(lambda m: m[0] == "flags") == ("flags", [False, True, True, False])


# -- exit/2 ---------------------------------------------------------------------------------


def test_exit2_normal_is_ignored_by_non_trapping_process(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(echo)
    assert erlang.exit(pid, "normal") is True
    ping(pid)
    assert erlang.is_process_alive(pid)
    no_message(down_of(ref), 50)
    erlang.send(pid, "stop")
    assert recv(down_of(ref))[4] == "normal"


def test_exit2_normal_is_a_message_for_trapping_process(node: Node) -> None:
    me = erlang.self()
    fwd = erlang.spawn(forwarder, me)
    recv(ready_of(fwd))
    erlang.exit(fwd, "normal")
    assert recv(fwd_of(fwd))[2] == ("EXIT", me, "normal")
    assert erlang.is_process_alive(fwd)
    erlang.send(fwd, "stop")


def test_exit2_other_reason_kills_non_trapping_process(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(echo)
    erlang.exit(pid, ("shutdown", "please"))
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, ("shutdown", "please"))


def test_exit2_other_reason_is_a_message_for_trapping_process(node: Node) -> None:
    me = erlang.self()
    fwd = erlang.spawn(forwarder, me)
    recv(ready_of(fwd))
    erlang.exit(fwd, "bye")
    assert recv(fwd_of(fwd))[2] == ("EXIT", me, "bye")
    assert erlang.is_process_alive(fwd)
    erlang.send(fwd, "stop")


def test_exit2_self_normal_ends_the_caller(node: Node) -> None:
    # OTP: "If Pid is the calling process and Reason is normal, the process exits normal."
    me = erlang.self()

    def suicide() -> None:
        erlang.exit(erlang.self(), "normal")
        erlang.send(me, "still running")

    pid, ref = erlang.spawn_monitor(suicide)
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "normal")
    no_message(lambda m: m == "still running", 50)


def test_kill_is_untrappable_and_links_see_killed(node: Node) -> None:
    me = erlang.self()
    watcher = erlang.spawn(forwarder, me)
    recv(ready_of(watcher))

    def victim() -> None:
        erlang.process_flag("trap_exit", True)
        erlang.link(watcher)
        erlang.send(me, ("ready", erlang.self()))
        for _ in range(100):
            msg = erlang.receive()
            erlang.send(me, ("victim got", msg))

    pid, ref = erlang.spawn_monitor(victim)
    recv(ready_of(pid))
    erlang.exit(pid, "kill")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "killed")
    assert recv(fwd_of(watcher))[2] == ("EXIT", pid, "killed")
    no_message(lambda m: m[0] == "victim got", 50)
    assert erlang.is_process_alive(watcher)
    erlang.send(watcher, "stop")


def test_kill_reason_from_a_dying_process_is_trappable(node: Node) -> None:
    # Only exit(Pid, kill) is untrappable; a process that *ends* with reason kill sends an
    # ordinary exit signal `kill` to its links.
    me = erlang.self()
    watcher = erlang.spawn(forwarder, me)
    recv(ready_of(watcher))

    def dies_with_kill() -> None:
        erlang.link(watcher)
        erlang.send(me, ("ready", erlang.self()))
        erlang.receive(lambda m: m == "go")
        erlang.exit("kill")

    pid, ref = erlang.spawn_monitor(dies_with_kill)
    recv(ready_of(pid))
    wref = erlang.monitor("process", watcher)
    erlang.send(pid, "go")
    assert recv(down_of(ref))[4] == "kill"
    assert recv(fwd_of(watcher))[2] == ("EXIT", pid, "kill")
    no_message(down_of(wref), 50)
    assert erlang.is_process_alive(watcher)
    erlang.send(watcher, "stop")


# -- link to a dead process -----------------------------------------------------------------


def dead_pid() -> Pid:
    pid, ref = erlang.spawn_monitor(lambda: None)
    recv(down_of(ref))
    return pid


def test_link_to_dead_pid_gives_noproc_EXIT_when_trapping(node: Node) -> None:
    me = erlang.self()
    dead = dead_pid()

    def trapper() -> None:
        erlang.process_flag("trap_exit", True)
        result = erlang.link(dead)
        msg = erlang.receive(None, 3000)
        erlang.send(me, ("linked", result, msg))

    pid, ref = erlang.spawn_monitor(trapper)
    assert recv(lambda m: m[0] == "linked") == ("linked", True, ("EXIT", dead, "noproc"))
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "normal")


def test_link_to_dead_pid_kills_non_trapping_process_with_noproc(node: Node) -> None:
    me = erlang.self()
    dead = dead_pid()

    def linker() -> None:
        erlang.send(me, "linking")
        erlang.link(dead)
        erlang.send(me, "survived link")

    pid, ref = erlang.spawn_monitor(linker)
    assert recv(lambda m: m == "linking") == "linking"
    _, _, _, who, reason = recv(down_of(ref))
    assert who == pid
    # OTP raises error:noproc from link/1; uncaught, that ends the process with noproc
    # (as {noproc, Stack} for an uncaught error). Either way the reason is noproc.
    assert reason == "noproc" or (type(reason) is tuple and reason[0] == "noproc")
    no_message(lambda m: m == "survived link", 50)


def test_link_to_dead_pid_raises_catchable_noproc_error(node: Node) -> None:
    # OTP erlang:link/1: "If the calling process is not trapping exits, and checking PidOrPort
    # is cheap (that is, if PidOrPort is local), link/1 fails with reason noproc" -- an
    # error exception the caller can catch, after which it carries on.
    me = erlang.self()
    dead = dead_pid()

    def linker() -> None:
        try:
            erlang.link(dead)
        except erlang.Error as e:
            erlang.send(me, ("caught", e.reason))
        else:
            erlang.send(me, ("no error",))

    pid, ref = erlang.spawn_monitor(linker)
    assert recv(lambda m: type(m) is tuple and m[0] in ("caught", "no error"), 1000) == (
        "caught", "noproc")
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "normal")


# -- exit/1 and crashes ---------------------------------------------------------------------


def test_exit1_ends_process_with_exactly_that_reason(node: Node) -> None:
    reason = ("my_reason", [1, 2], {"k": "v"})
    pid, ref = erlang.spawn_monitor(erlang.exit, reason)
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, reason)


def test_exit1_reason_reaches_links(node: Node) -> None:
    me = erlang.self()
    fwd = erlang.spawn(forwarder, me)
    recv(ready_of(fwd))

    def child() -> None:
        erlang.link(fwd)
        erlang.exit("custom")

    kid = erlang.spawn(child)
    assert recv(fwd_of(fwd))[2] == ("EXIT", kid, "custom")
    erlang.send(fwd, "stop")


def test_uncaught_exception_exit_reason_is_exception_and_stacktrace(node: Node) -> None:
    def boom() -> None:
        raise ValueError("bad value")

    pid, ref = erlang.spawn_monitor(boom)
    down = recv(down_of(ref))
    assert down[:4] == ("DOWN", ref, "process", pid)
    reason = down[4]
    assert type(reason) is tuple and len(reason) == 2
    assert isinstance(reason[0], ValueError)
    assert reason[0].args == ("bad value",)
    assert isinstance(reason[1], list)


def test_uncaught_exception_reason_reaches_trapping_link(node: Node) -> None:
    me = erlang.self()
    fwd = erlang.spawn(forwarder, me)
    recv(ready_of(fwd))

    def child() -> None:
        erlang.link(fwd)
        raise KeyError("missing")

    kid = erlang.spawn(child)
    tag, sender, reason = recv(fwd_of(fwd))[2]
    assert (tag, sender) == ("EXIT", kid)
    assert isinstance(reason[0], KeyError) and isinstance(reason[1], list)
    erlang.send(fwd, "stop")


def test_uncaught_badarg_error_exit_reason_is_badarg_and_stacktrace(node: Node) -> None:
    def bad() -> None:
        erlang.send("no_such_registered_name", "x")

    pid, ref = erlang.spawn_monitor(bad)
    _, _, _, who, reason = recv(down_of(ref))
    assert who == pid
    assert type(reason) is tuple and reason[0] == "badarg" and isinstance(reason[1], list)


# -- unlink ---------------------------------------------------------------------------------


def test_unlink_prevents_propagation(node: Node) -> None:
    me = erlang.self()

    def parent() -> None:
        child = erlang.spawn_link(erlang.receive, lambda m: m == "die")
        assert erlang.unlink(child) is True
        ref = erlang.monitor("process", child)
        erlang.exit(child, "boom")
        down = erlang.receive(down_of(ref), 3000)
        erlang.send(me, ("child down", down[4]))
        echo()

    pid, ref = erlang.spawn_monitor(parent)
    assert recv(lambda m: m[0] == "child down") == ("child down", "boom")
    ping(pid)
    no_message(down_of(ref), 50)
    assert erlang.process_info(pid)["links"] == []
    erlang.send(pid, "stop")
    assert recv(down_of(ref))[4] == "normal"


def test_unlink_works_in_both_directions(node: Node) -> None:
    me = erlang.self()
    survivor, sref = erlang.spawn_monitor(echo)

    def doomed() -> None:
        erlang.link(survivor)
        erlang.unlink(survivor)
        erlang.send(me, "unlinked")
        erlang.receive(lambda m: m == "go")
        erlang.exit("boom")

    pid, ref = erlang.spawn_monitor(doomed)
    recv(lambda m: m == "unlinked")
    assert me not in erlang.process_info(survivor)["links"]
    assert erlang.process_info(survivor)["links"] == []
    erlang.send(pid, "go")
    assert recv(down_of(ref))[4] == "boom"
    ping(survivor)
    no_message(down_of(sref), 50)
    erlang.send(survivor, "stop")


def test_link_is_idempotent_and_shows_in_process_info(node: Node) -> None:
    me = erlang.self()
    fwd = erlang.spawn(forwarder, me)
    recv(ready_of(fwd))

    def child() -> None:
        erlang.link(fwd)
        erlang.link(fwd)
        erlang.link(erlang.self())  # linking to oneself does nothing
        erlang.send(me, "linked")
        erlang.receive(lambda m: m == "go")
        erlang.exit("once")

    kid = erlang.spawn(child)
    recv(lambda m: m == "linked")
    wait_until(lambda: erlang.process_info(kid)["links"] == [fwd])
    erlang.send(kid, "go")
    assert recv(fwd_of(fwd))[2] == ("EXIT", kid, "once")
    no_message(fwd_of(fwd), 100)  # one link, one signal
    erlang.send(fwd, "stop")


def test_linked_exit_while_shell_waits_raises_exit_in_shell(node: Node) -> None:
    # A plain thread's shell is a process like any other: a linked crash takes it down, and
    # the receive it is blocked in raises Exit with the reason.
    errors: list[Any] = []
    done = threading.Event()

    def late_exit() -> None:
        erlang.receive(None, 100)
        erlang.exit("linked crash")

    def thread_main() -> None:
        try:
            with node.bound():
                erlang.spawn_link(late_exit)
                try:
                    erlang.receive(None, 3000)
                except erlang.Exit as e:
                    errors.append(e.reason)
        finally:
            done.set()

    t = threading.Thread(target=thread_main, daemon=True)
    t.start()
    assert done.wait(5)
    t.join(timeout=3)
    assert errors == ["linked crash"]


def test_linked_exit_between_calls_is_seen_by_shells_next_call(node: Node) -> None:
    # The exit signal kills the shell process at once, even if the plain thread is not inside
    # a runtime call. The thread's next call must see that exit (as Erlang's shell reports
    # "** exception exit: ..."), not carry on silently under a fresh shell pid.
    seen: list[Any] = []
    linked = threading.Event()
    killed = threading.Event()
    done = threading.Event()
    pids: list[Pid] = []

    def thread_main() -> None:
        try:
            with node.bound():
                pids.append(erlang.self())
                pids.append(erlang.spawn_link(wait_forever))
                linked.set()
                if not killed.wait(5):
                    return
                try:
                    msg = erlang.receive(None, 0)
                    seen.append(("returned", msg, erlang.self()))
                except erlang.Exit as e:
                    seen.append(("exit", e.reason))
        finally:
            done.set()

    t = threading.Thread(target=thread_main, daemon=True)
    t.start()
    try:
        assert linked.wait(5)
        shell, child = pids
        ref = erlang.monitor("process", shell)
        erlang.exit(child, "boom")
        assert recv(down_of(ref)) == ("DOWN", ref, "process", shell, "boom")
    finally:
        killed.set()
    assert done.wait(5)
    t.join(timeout=3)
    assert seen == [("exit", "boom")]


def test_trapping_shell_receives_EXIT_from_spawn_link(node: Node) -> None:
    assert erlang.process_flag("trap_exit", True) is False
    try:
        kid = erlang.spawn_link(erlang.exit, "boom")
        assert recv(exit_from(kid)) == ("EXIT", kid, "boom")
    finally:
        erlang.process_flag("trap_exit", False)



def _linked_worker(to: Pid, middle: Pid) -> None:
    """Link to `middle` (as a child links to its supervisor), say so, wait to be killed."""
    erlang.link(middle)
    erlang.send(to, ("linked", erlang.self()))
    wait_forever()


def test_a_trapping_process_hears_of_a_death_after_the_deaths_it_caused(node: Node) -> None:
    """The order a supervisor relies on (OTP's supervisor_SUITE simple_global_supervisor):
    when a trapping process gets the EXIT of a killed process, the non-trapping processes
    linked to it are dead already, their names free. In ERTS the link's victims die as
    they get the signal; here the cascade's deaths all happen before any EXIT goes out."""
    me = erlang.self()
    erlang.process_flag("trap_exit", True)
    middle = erlang.spawn(wait_forever)
    erlang.link(middle)
    workers = [erlang.spawn(_linked_worker, me, middle) for _ in range(4)]
    queued_when_dying: list[Any] = []
    for i, worker in enumerate(workers):
        recv(lambda m, w=worker: m == ("linked", w))
        erlang.register(f"cascade_worker_{i}", worker)
        node.at_exit(worker, lambda _reason: queued_when_dying.append(
            erlang.process_info(me, "message_queue_len")))
    erlang.exit(middle, "kill")
    assert recv(exit_from(middle))[2] == "killed"
    assert queued_when_dying == [("message_queue_len", 0)] * len(workers)
    assert not any(erlang.is_process_alive(w) for w in workers)
    assert [erlang.whereis(f"cascade_worker_{i}") for i in range(4)] == ["undefined"] * 4
