"""OTP's supervisor_SUITE.erl, part 2: restart types and strategies, escalation, restart
loops, trees, code_change, order and scaling. The module docstring of
test_supervisor_suite.py lists what is left out or adapted, and why.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from actors import erlang
from supervision import supervisor
from tests.helpers import recv, wait_until
from tests.otp.supervisor_children import (  # trap_exits: the autouse fixture
    ONE,
    SUP,
    SuiteSup,
    check_exit,
    check_exit_reason,
    counts,
    one,
    pids_of,
    spec,
    start_link,
    terminate,
    three_start_child,
    trap_exits,  # noqa: F401
    two_start_child,
)


def one_child(restart: str) -> tuple[Any, Any]:
    sup = start_link(("ok", (("one_for_one", 2, 3600), [])))[1]
    return sup, supervisor.start_child(SUP, spec("child1", ONE, restart))[1]


# -- normal, shutdown and abnormal termination -------------------------------------------------


def test_permanent_normal() -> None:
    """permanent_normal"""
    sup, cpid1 = one_child("permanent")
    terminate(sup, cpid1, "child1", "normal")
    [(cid, pid, kind, mods)] = supervisor.which_children(SUP)
    assert (cid, kind, mods) == ("child1", "worker", []) and erlang.is_pid(pid)
    assert counts(SUP) == [1, 1, 0, 1]


def test_transient_normal() -> None:
    """transient_normal"""
    sup, cpid1 = one_child("transient")
    terminate(sup, cpid1, "child1", "normal")
    assert supervisor.which_children(SUP) == [("child1", "undefined", "worker", [])]
    assert counts(SUP) == [1, 0, 0, 1]


def test_temporary_normal() -> None:
    """temporary_normal"""
    sup, cpid1 = one_child("temporary")
    terminate(sup, cpid1, "child1", "normal")
    assert supervisor.which_children(SUP) == []
    assert counts(SUP) == [0, 0, 0, 0]


def test_permanent_shutdown() -> None:
    """permanent_shutdown"""
    sup, cpid1 = one_child("permanent")
    terminate(sup, cpid1, "child1", "shutdown")
    [(_, cpid2, _, _)] = supervisor.which_children(SUP)
    assert erlang.is_pid(cpid2)
    assert counts(SUP) == [1, 1, 0, 1]
    terminate(sup, cpid2, "child1", ("shutdown", "some_info"))
    [(_, cpid3, _, _)] = supervisor.which_children(SUP)
    assert erlang.is_pid(cpid3)
    assert counts(SUP) == [1, 1, 0, 1]


def test_transient_shutdown() -> None:
    """transient_shutdown"""
    sup, cpid1 = one_child("transient")
    terminate(sup, cpid1, "child1", "shutdown")
    assert supervisor.which_children(SUP) == [("child1", "undefined", "worker", [])]
    assert counts(SUP) == [1, 0, 0, 1]
    _, cpid2 = supervisor.restart_child(SUP, "child1")
    terminate(sup, cpid2, "child1", ("shutdown", "some_info"))
    assert supervisor.which_children(SUP) == [("child1", "undefined", "worker", [])]
    assert counts(SUP) == [1, 0, 0, 1]


def test_temporary_shutdown() -> None:
    """temporary_shutdown"""
    sup, cpid1 = one_child("temporary")
    terminate(sup, cpid1, "child1", "shutdown")
    assert supervisor.which_children(SUP) == []
    assert counts(SUP) == [0, 0, 0, 0]
    _, cpid2 = supervisor.start_child(SUP, spec("child1", ONE, "temporary"))
    terminate(sup, cpid2, "child1", ("shutdown", "some_info"))
    assert supervisor.which_children(SUP) == []
    assert counts(SUP) == [0, 0, 0, 0]


@pytest.mark.parametrize("restart", ["permanent", "transient"])
def test_permanent_and_transient_abnormal(restart: str) -> None:
    """permanent_abnormal, transient_abnormal"""
    sup, cpid1 = one_child(restart)
    terminate(sup, cpid1, "child1", "abnormal")
    [(_, pid, _, _)] = supervisor.which_children(SUP)
    assert erlang.is_pid(pid)
    assert counts(SUP) == [1, 1, 0, 1]


def test_temporary_abnormal() -> None:
    """temporary_abnormal"""
    sup, cpid1 = one_child("temporary")
    terminate(sup, cpid1, "child1", "abnormal")
    assert supervisor.which_children(SUP) == []
    assert counts(SUP) == [0, 0, 0, 0]


def test_temporary_bystander() -> None:
    """temporary_bystander: a temporary child stopped by a group restart is not restarted"""
    child1 = spec("child1", ONE, "permanent", 100)
    child2 = spec("child2", ONE, "temporary", 100)
    sup1 = supervisor.start_link(SuiteSup, ("ok", (("one_for_all", 2, 300), [])))[1]
    sup2 = supervisor.start_link(SuiteSup, ("ok", (("rest_for_one", 2, 300), [])))[1]
    erlang.unlink(sup1)
    erlang.unlink(sup2)
    cpid1 = supervisor.start_child(sup1, child1)[1]
    supervisor.start_child(sup1, child2)
    cpid3 = supervisor.start_child(sup2, child1)[1]
    supervisor.start_child(sup2, child2)
    terminate(sup1, cpid1, "child1", "normal")
    terminate(sup2, cpid3, "child1", "normal")
    assert erlang.is_process_alive(sup1) and erlang.is_process_alive(sup2)
    assert [c[0] for c in supervisor.which_children(sup1)] == ["child1"]
    assert [c[0] for c in supervisor.which_children(sup2)] == ["child1"]
    erlang.exit(sup1, "kill")
    erlang.exit(sup2, "kill")


# -- restart strategies ----------------------------------------------------------------------


def test_one_for_one() -> None:
    """one_for_one"""
    sup = start_link(("ok", (("one_for_one", 2, 3600), [])))[1]
    cpid1 = supervisor.start_child(SUP, spec("child1"))[1]
    cpid2 = supervisor.start_child(SUP, spec("child2"))[1]
    terminate(sup, cpid1, "child1", "abnormal")
    children = supervisor.which_children(SUP)
    assert len(children) == 2 and cpid2 in [c[1] for c in children]
    assert counts(SUP) == [2, 2, 0, 2]
    terminate(sup, cpid2, "child2", "abnormal")  # restart frequency
    [(id4, pid4, _, _), *_] = supervisor.which_children(SUP)
    terminate(sup, pid4, id4, "abnormal")
    assert check_exit([sup]) == "ok"


def test_one_for_one_escalation() -> None:
    """one_for_one_escalation"""
    sup = start_link(("ok", (("one_for_one", 4, 3600), [])))[1]
    cpid1 = supervisor.start_child(SUP, spec("child1", one("error")))[1]
    cpid2 = supervisor.start_child(SUP, spec("child2"))[1]
    erlang.link(cpid2)
    terminate(sup, cpid1, "child1", "abnormal")
    assert check_exit([sup, cpid2]) == "ok"


def test_one_for_all() -> None:
    """one_for_all"""
    sup = start_link(("ok", (("one_for_all", 2, 3600), [])))[1]
    cpid1 = supervisor.start_child(SUP, spec("child1"))[1]
    cpid2 = supervisor.start_child(SUP, spec("child2"))[1]
    erlang.link(cpid2)
    terminate(sup, cpid1, "child1", "abnormal")
    assert check_exit([cpid2]) == "ok"
    wait_until(lambda: all(erlang.is_pid(p) for p in pids_of(SUP)))
    children = supervisor.which_children(SUP)
    assert len(children) == 2
    assert not {cpid1, cpid2} & {c[1] for c in children}
    assert counts(SUP) == [2, 2, 0, 2]
    [(id3, pid3, _, _), *_] = supervisor.which_children(SUP)
    terminate(sup, pid3, id3, "abnormal")
    [(id4, pid4, _, _), *_] = supervisor.which_children(SUP)
    terminate(sup, pid4, id4, "abnormal")
    assert check_exit([sup]) == "ok"


def test_one_for_all_escalation() -> None:
    """one_for_all_escalation"""
    sup = start_link(("ok", (("one_for_all", 4, 3600), [])))[1]
    cpid1 = supervisor.start_child(SUP, spec("child1"))[1]
    cpid2 = supervisor.start_child(SUP, spec("child2", one("error")))[1]
    erlang.link(cpid2)
    terminate(sup, cpid1, "child1", "abnormal")
    assert check_exit([cpid2, sup]) == "ok"


def _other_child_fails_restart(strategy: str) -> tuple[Any, Any, Any, Any]:
    """The common start of *_other_child_fails_restart: two supervisor_3 children that
    start when told; the supervisor is started by a helper process, as in OTP."""
    me = erlang.self()
    ok_msg = (("ok", "undefined"), me)
    children = [spec("child1", (three_start_child, ["child1", me])),
                spec("child2", (three_start_child, ["child2", me]))]

    def starter() -> None:
        _, sup = start_link(("ok", ((strategy, 3, 3600), children)))
        erlang.send(me, ("sup_pid", sup))
        erlang.receive(lambda m: m == ("stop", me), 20_000)

    starter_pid = erlang.spawn_link(starter)
    child1 = recv(lambda m: type(m) is tuple and m[0] == "child1")[1]
    erlang.send(child1, ok_msg)
    child2 = recv(lambda m: type(m) is tuple and m[0] == "child2")[1]
    erlang.send(child2, ok_msg)
    sup = recv(lambda m: type(m) is tuple and m[0] == "sup_pid")[1]
    erlang.link(sup)
    erlang.exit(child1, "die")
    return starter_pid, sup, ok_msg, me


def test_one_for_all_other_child_fails_restart() -> None:
    """one_for_all_other_child_fails_restart"""
    starter, sup, ok_msg, me = _other_child_fails_restart("one_for_all")
    child1b = recv(lambda m: type(m) is tuple and m[0] == "child1")[1]
    ref = erlang.monitor("process", child1b)
    erlang.send(child1b, ok_msg)
    child2b = recv(lambda m: type(m) is tuple and m[0] == "child2")[1]
    erlang.send(child2b, (("stop", "normal"), me))
    down = recv(lambda m: type(m) is tuple and len(m) == 5 and m[1] == ref)
    assert down[4] == "shutdown"  # the restarted child1 is stopped again
    child1c = recv(lambda m: type(m) is tuple and m[0] == "child1")[1]
    erlang.send(child1c, ok_msg)
    child2c = recv(lambda m: type(m) is tuple and m[0] == "child2")[1]
    erlang.send(child2c, ok_msg)
    erlang.send(starter, ("stop", me))
    assert check_exit([starter, sup]) == "ok"


def test_rest_for_one_other_child_fails_restart() -> None:
    """rest_for_one_other_child_fails_restart"""
    starter, sup, ok_msg, me = _other_child_fails_restart("rest_for_one")
    child1b = recv(lambda m: type(m) is tuple and m[0] == "child1")[1]
    erlang.send(child1b, ok_msg)
    child2b = recv(lambda m: type(m) is tuple and m[0] == "child2")[1]
    erlang.send(child2b, (("stop", "normal"), me))
    nxt = recv(lambda m: type(m) is tuple and m[0] in ("child1", "child2"))
    assert nxt[0] == "child2", ("restarting_started_child", child1b)
    erlang.send(nxt[1], ok_msg)
    erlang.send(starter, ("stop", me))
    assert check_exit([starter, sup]) == "ok"


def test_simple_one_for_one() -> None:
    """simple_one_for_one"""
    sup = start_link(("ok", (("simple_one_for_one", 2, 3600), [spec("child")])))[1]
    cpid1 = supervisor.start_child(SUP, [])[1]
    cpid2 = supervisor.start_child(SUP, [])[1]
    terminate(sup, cpid1, "child1", "abnormal")
    children = supervisor.which_children(SUP)
    assert len(children) == 2 and cpid2 in [c[1] for c in children]
    assert counts(SUP) == [1, 2, 0, 2]
    terminate(sup, cpid2, "child2", "abnormal")
    [(id4, pid4, _, _), *_] = supervisor.which_children(SUP)
    terminate(sup, pid4, id4, "abnormal")
    check_exit_reason(sup, "shutdown")


@pytest.mark.parametrize("restart", ["transient", "permanent"])
def test_simple_one_for_one_restart_ignore(restart: str) -> None:
    """simple_one_for_one_restart_ignore"""
    me = erlang.self()
    child = spec("child", (three_start_child, []), restart)
    sup = start_link(("ok", (("simple_one_for_one", 10, 3600), [child])))[1]
    starter = erlang.spawn_link(lambda: supervisor.start_child(sup, ["child1", me]))
    pid1 = recv(lambda m: type(m) is tuple and m[0] == "child1")[1]
    erlang.send(pid1, (("ok", 0), me))
    assert check_exit([starter]) == "ok"
    assert supervisor.which_children(sup) == [("undefined", pid1, "worker", [])]
    terminate(pid1, "kill")
    pid2 = recv(lambda m: type(m) is tuple and m[0] == "child1")[1]
    erlang.send(pid2, (("ok", 0), me))
    wait_until(lambda: pids_of(sup) == [pid2])
    terminate(pid2, "kill")
    pid3 = recv(lambda m: type(m) is tuple and m[0] == "child1")[1]
    erlang.send(pid3, ("ignore", me))
    wait_until(lambda: erlang.process_info(pid3) == "undefined")
    assert supervisor.which_children(sup) == []
    terminate(sup, "shutdown")
    check_exit_reason(sup, "shutdown")


def test_simple_one_for_one_shutdown() -> None:
    """simple_one_for_one_shutdown: children are stopped together under one timer
    (ShutdownTime 1000 ms scaled to 200)"""
    shutdown_time = 200
    child = spec("child", (two_start_child, []), "permanent", 2 * shutdown_time)
    sup = start_link(("ok", (("simple_one_for_one", 2, 3600), [child])))[1]
    supervisor.start_child(SUP, [shutdown_time])
    supervisor.start_child(SUP, [shutdown_time])
    supervisor.start_child(SUP, [5 * shutdown_time])  # killed after 2*ShutdownTime
    t0 = time.monotonic()
    terminate(sup, "shutdown")
    elapsed_ms = (time.monotonic() - t0) * 1000
    assert shutdown_time <= elapsed_ms < 5 * shutdown_time, elapsed_ms
    assert check_exit([sup]) == "ok"


def test_simple_one_for_one_extra() -> None:
    """simple_one_for_one_extra"""
    child = spec("child", one("extra_info"))
    sup = start_link(("ok", (("simple_one_for_one", 2, 3600), [child])))[1]
    ok, cpid1, extra = supervisor.start_child(SUP, [])
    assert (ok, extra) == ("ok", "extra_info")
    ok, cpid2, extra = supervisor.start_child(SUP, [])
    erlang.link(cpid2)
    terminate(sup, cpid1, "child1", "abnormal")
    children = supervisor.which_children(SUP)
    assert len(children) == 2 and cpid2 in [c[1] for c in children]
    assert counts(SUP) == [1, 2, 0, 2]
    terminate(sup, cpid2, "child2", "abnormal")
    [(id4, pid4, _, _), *_] = supervisor.which_children(SUP)
    terminate(sup, pid4, id4, "abnormal")
    assert check_exit([sup]) == "ok"


def test_simple_one_for_one_escalation() -> None:
    """simple_one_for_one_escalation"""
    sup = start_link(("ok", (("simple_one_for_one", 4, 3600), [spec("child")])))[1]
    cpid1 = supervisor.start_child(SUP, ["error"])[1]
    erlang.link(cpid1)
    cpid2 = supervisor.start_child(SUP, [])[1]
    erlang.link(cpid2)
    terminate(sup, cpid1, "child", "abnormal")
    assert check_exit([sup, cpid2]) == "ok"


def test_rest_for_one() -> None:
    """rest_for_one"""
    sup = start_link(("ok", (("rest_for_one", 2, 3600), [])))[1]
    cpid1 = supervisor.start_child(SUP, spec("child1"))[1]
    erlang.link(cpid1)
    cpid2 = supervisor.start_child(SUP, spec("child2"))[1]
    cpid3 = supervisor.start_child(SUP, spec("child3"))[1]
    erlang.link(cpid3)
    assert counts(SUP) == [3, 3, 0, 3]
    terminate(sup, cpid2, "child2", "abnormal")
    assert check_exit([cpid3]) == "ok"
    wait_until(lambda: all(erlang.is_pid(p) for p in pids_of(SUP)))
    children = supervisor.which_children(SUP)
    pids = [c[1] for c in children]
    assert len(children) == 3 and cpid1 in pids
    assert counts(SUP) == [3, 3, 0, 3]
    assert cpid2 not in pids and cpid3 not in pids
    [(cid, pid3, _, _), *_] = supervisor.which_children(SUP)
    assert cid == "child3"
    terminate(sup, pid3, "child3", "abnormal")
    [_, (cid, pid4, _, _), *_] = supervisor.which_children(SUP)
    assert cid == "child2"
    terminate(sup, pid4, "child2", "abnormal")
    assert check_exit([sup]) == "ok"


def test_rest_for_one_escalation() -> None:
    """rest_for_one_escalation"""
    sup = start_link(("ok", (("rest_for_one", 4, 3600), [])))[1]
    cpid1 = supervisor.start_child(SUP, spec("child1"))[1]
    cpid2 = supervisor.start_child(SUP, spec("child2", one("error")))[1]
    erlang.link(cpid2)
    terminate(sup, cpid1, "child1", "abnormal")
    assert check_exit([cpid2, sup]) == "ok"
