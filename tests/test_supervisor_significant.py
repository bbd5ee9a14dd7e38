"""Significant children and auto_shutdown (OTP 24+), start_child's error shape, and the
supervisor's report for a stray message."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from actors import Node, erlang, gen_server
from supervision import supervisor

from .helpers import down_of, recv


class Worker(gen_server.GenServer):
    def init(self, args: Any) -> Any:
        return ("ok", args)

    def handle_call(self, request: Any, _from: Any, state: Any) -> Any:
        if request == "finish":
            return ("stop", "normal", "ok", state)
        return ("reply", state, state)


class Sup(supervisor.Supervisor):
    def init(self, args: Any) -> Any:
        return ("ok", args)


def worker(child_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": child_id, "start": (gen_server.start_link, [Worker, child_id]), **extra}


def start(flags: dict[str, Any], specs: list[Any]) -> Any:
    result = supervisor.start_link(Sup, (flags, specs))
    assert result[0] == "ok", result
    return result[1]


def pid_of(sup: Any, child_id: str) -> Any:
    return next(p for i, p, _, _ in supervisor.which_children(sup) if i == child_id)


@pytest.fixture(autouse=True)
def trapping(node: Node) -> None:
    erlang.process_flag("trap_exit", True)


def test_any_significant_stops_the_supervisor_when_one_significant_child_ends() -> None:
    specs = [worker("a", restart="transient", significant=True),
             worker("b", restart="transient")]
    sup = start({"strategy": "one_for_one", "auto_shutdown": "any_significant"}, specs)
    ref = erlang.monitor("process", sup)
    gen_server.call(pid_of(sup, "b"), "finish", 1000)  # not significant: nothing happens
    assert erlang.receive(down_of(ref), 100) is erlang.TIMEOUT
    gen_server.call(pid_of(sup, "a"), "finish", 1000)
    assert recv(down_of(ref))[4] == "shutdown"


def test_all_significant_waits_for_the_last_significant_child() -> None:
    specs = [worker("a", restart="temporary", significant=True),
             worker("b", restart="temporary", significant=True)]
    sup = start({"strategy": "one_for_one", "auto_shutdown": "all_significant"}, specs)
    ref = erlang.monitor("process", sup)
    gen_server.call(pid_of(sup, "a"), "finish", 1000)
    assert erlang.receive(down_of(ref), 100) is erlang.TIMEOUT
    assert erlang.is_process_alive(sup)
    gen_server.call(pid_of(sup, "b"), "finish", 1000)
    assert recv(down_of(ref))[4] == "shutdown"


def test_a_significant_child_that_crashes_is_restarted_not_shut_down() -> None:
    specs = [worker("a", restart="transient", significant=True)]
    sup = start({"strategy": "one_for_one", "auto_shutdown": "any_significant",
                 "intensity": 5}, specs)
    old = pid_of(sup, "a")
    erlang.exit(old, "boom")
    for _ in range(200):  # bounded: the restart is asynchronous
        new = pid_of(sup, "a")
        if new not in (old, "undefined"):
            break
        erlang.receive(None, 5)
    assert new not in (old, "undefined")
    assert erlang.is_process_alive(sup)


def test_significant_permanent_child_and_bad_auto_shutdown_are_rejected() -> None:
    bad = worker("a", significant=True)  # permanent by default
    assert supervisor.check_childspecs([bad]) == (
        "error", ("bad_combination", [("restart", "permanent"), ("significant", True)]))
    result = supervisor.start_link(Sup, ({"auto_shutdown": "sometimes"}, []))
    assert result == ("error", ("supervisor_data", ("invalid_auto_shutdown", "sometimes")))


def test_start_child_failure_carries_the_reason_and_the_child_spec() -> None:
    sup = start({"strategy": "one_for_one"}, [])
    failing = {"id": "f", "start": (lambda: ("error", "no_way"), [])}
    result = supervisor.start_child(sup, failing)
    assert result[0] == "error"
    reason, child = result[1]
    assert reason == "no_way"
    assert child["id"] == "f" and child["restart"] == "permanent"


def test_a_stray_message_is_reported_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    sup = start({"strategy": "one_for_one"}, [worker("a")])
    with caplog.at_level(logging.ERROR, logger="supervision.supervisor"):
        erlang.send(sup, "hello")
        assert supervisor.count_children(sup)[0] == ("specs", 1)  # the stray was handled
    assert any("unexpected message" in r.getMessage() for r in caplog.records)
    assert erlang.is_process_alive(sup)


def test_period_is_whole_seconds_and_specs_must_be_a_list() -> None:
    assert supervisor.start_link(Sup, ({"period": 0.5}, [])) == \
        ("error", ("supervisor_data", ("invalid_period", 0.5)))
    assert supervisor.check_childspecs("not a list") == ("error", ("badarg", "not a list"))
