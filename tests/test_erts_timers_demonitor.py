"""Issue 12, item 11: three faults found with OTP's erts suites, and item 10 (peer options).

- A timer too far in the future is badarg (ERTS: its expiry must be within the node's
  time span, erlang:system_info(end_time)), and no timer, nor any failure of one, stops
  the node's other timers.
- demonitor(M, ["info"]) returning False means the DOWN is already in the mailbox, so
  demonitor(M, ["flush"]) always removes it. The tests hold the dying process inside its
  death (an exit hook blocks) to keep the old window open.
- A timer to a process that dies is cancelled (read_timer then gives False).
- peer.start takes OTP's options map, and bad options are badarg at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from actors import Error, Node, erlang, peer
from actors._timers import TimerService
from tests.helpers import down_of, no_message, recv

# -- timers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fun", [erlang.send_after, erlang.start_timer])
def test_a_time_past_the_end_of_time_is_badarg_and_timers_keep_working(node: Node,
                                                                       fun: Any) -> None:
    me = erlang.self()
    for bad in (2**63, 10**13, 2**64, -1, 1.5, "10"):
        with pytest.raises(Error) as info:
            fun(bad, me, "never")
        assert info.value.reason == "badarg"
    far = fun(10**12, me, "far")  # ~31 years: valid, and it must not block the others
    assert 10**12 - 1000 <= erlang.read_timer(far) <= 10**12
    fun(10, me, "soon")
    msg = recv(lambda m: m == "soon" or (type(m) is tuple and m[-1] == "soon"), 2000)
    assert msg in ("soon", ("timeout", msg[1] if type(msg) is tuple else None, "soon"))
    assert erlang.cancel_timer(far) > 0


def test_the_timer_thread_survives_a_failing_fire() -> None:
    fired: list[Any] = []
    done = threading.Event()

    def fire(entry: Any) -> None:
        if entry == "boom":
            raise RuntimeError("a destination that fails")
        fired.append(entry)
        if entry == "last":
            done.set()

    service = TimerService("t", fire)
    try:
        service.add("k1", 1, "boom")
        service.add("k2", 20, "after")
        service.add("k3", 40, "last")
        assert done.wait(5.0)
        assert fired == ["after", "last"]
    finally:
        service.stop()


def test_a_dead_processes_timers_are_cancelled(node: Node) -> None:
    pid = erlang.spawn(lambda: erlang.receive(None, "infinity"))
    refs = [erlang.send_after(60_000, pid, "late"), erlang.start_timer(60_000, pid, "late")]
    named = erlang.send_after(60_000, "some_name", "late")  # by name: kept, as ERTS does
    assert all(erlang.read_timer(r) > 0 for r in refs)
    erlang.exit(pid, "kill")
    assert [erlang.read_timer(r) for r in refs] == [False, False]
    assert [erlang.cancel_timer(r) for r in refs] == [False, False]
    assert erlang.read_timer(named) > 0
    erlang.cancel_timer(named)


def test_a_gen_servers_timeout_timer_dies_with_it(node: Node) -> None:
    from actors import gen_server

    class Idle(gen_server.GenServer):
        def init(self, _args: Any) -> Any:
            return ("ok", None, 60_000)

    _, pid = gen_server.start(Idle, None)
    assert len(node.timers._owned.get(pid, ())) == 1
    gen_server.stop(pid)
    assert pid not in node.timers._owned


# -- demonitor and the DOWN ----------------------------------------------------------------


def _die_held(node: Node) -> tuple[Any, Any, threading.Event, threading.Event, threading.Thread]:
    """A monitored process, killed by another thread that is then held inside the death
    (in an exit hook) until `release` is set. Returns once the hold has begun."""
    pid = erlang.spawn(lambda: erlang.receive(None, "infinity"))
    ref = erlang.monitor("process", pid)
    entered, release = threading.Event(), threading.Event()

    def hook(_reason: Any) -> None:
        entered.set()
        release.wait(5.0)

    node.at_exit(pid, hook)

    def kill() -> None:
        with node.bound():
            erlang.exit(pid, "kill")

    killer = threading.Thread(target=kill)
    killer.start()
    assert entered.wait(5.0)
    return pid, ref, entered, release, killer


def test_demonitor_info_false_means_the_down_is_already_queued(node: Node) -> None:
    pid, ref, _, release, killer = _die_held(node)
    try:
        assert erlang.demonitor(ref, ["info"]) is False
        # OTP: false means the DOWN has been (or is being) delivered: it is here now
        assert erlang.receive(down_of(ref), 0) == ("DOWN", ref, "process", pid, "killed")
    finally:
        release.set()
        killer.join(5.0)


def test_demonitor_flush_removes_the_down_for_good(node: Node) -> None:
    _, ref, _, release, killer = _die_held(node)
    try:
        assert erlang.demonitor(ref, ["flush"]) is True
    finally:
        release.set()
        killer.join(5.0)
    no_message(down_of(ref), 200)


def test_demonitor_flush_info_in_a_race_with_many_deaths(node: Node) -> None:
    """Without a hold: kill and demonitor at once, 300 times; never a DOWN after flush."""
    for _ in range(300):
        pid = erlang.spawn(lambda: erlang.receive(None, "infinity"))
        ref = erlang.monitor("process", pid)
        killer = threading.Thread(target=lambda p=pid: node.exit_signal(p, p, "kill"))
        killer.start()
        erlang.demonitor(ref, ["flush", "info"])
        killer.join(5.0)
        assert erlang.receive(down_of(ref), 0) is erlang.TIMEOUT


# -- peer options (item 10) ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"name": "x", "bogus": 1},
    {"name": 5},
    {"name": "a@b"},
    {"connection": "standard_io"},
    {"connection": 0},
    {"host": ""},
    {"args": "not a list"},
    {"wait_boot": -1},
    123,
    ["x"],
])
def test_peer_start_rejects_bad_options_at_once(dist_node: Node, bad: Any) -> None:
    start = time.monotonic()
    with pytest.raises(Error) as info:
        peer.start(bad)
    assert info.value.reason == "badarg" or info.value.reason[0] == "badarg"
    assert time.monotonic() - start < 1.0  # no child was started and waited for


def test_peer_start_takes_otps_options_map(dist_node: Node) -> None:
    result = peer.start({"name": "mapped", "args": [], "env": [("ERLPY_TEST_X", "1")],
                         "wait_boot": 20000})
    assert result[0] == "ok", result
    _, ppid, name = result
    try:
        assert name == "mapped@127.0.0.1"
        assert name in erlang.nodes()
    finally:
        peer.stop(ppid)


def test_cancelled_timers_do_not_pile_up_in_the_heap() -> None:
    """A server that cancels a far timeout on every message must not grow the heap."""
    service = TimerService("t", lambda _e: None)
    try:
        for i in range(20_000):
            service.add(i, 3_600_000, "far")
            assert service.cancel(i) > 0
        assert len(service._heap) <= 2 * len(service._live) + 1024 + 1
        service.add("live", 3_600_000, "kept")
        for i in range(20_000, 25_000):
            service.add(i, 3_600_000, "far")
            service.cancel(i)
        assert service.read("live") > 0
    finally:
        service.stop()
