"""OTP's supervisor_SUITE.erl, part 4: significant children and auto_shutdown (group
significant), and code_change (code_change, code_change_map, code_change_simple,
code_change_simple_map). The module docstring of test_supervisor_suite.py lists what is
left out or adapted, and why. `check_exit([Pid], 1000)` returning error (nothing came) is
checked over QUIET_MS.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from actors import erlang, sys
from supervision import supervisor
from tests.otp.supervisor_children import (  # trap_exits: the autouse fixture
    ONE,
    QUIET_MS,
    SuiteSup,
    check_exit,
    pids_of,
    start_link,
    terminate,
    trap_exits,  # noqa: F401
)


def child(child_id: str, restart: str, significant: bool) -> dict[str, Any]:
    return {"id": child_id, "start": ONE, "restart": restart, "significant": significant}


def quiet(*pids: Any) -> None:
    """`error = check_exit([Pid], 1000)` for each pid."""
    for pid in pids:
        assert check_exit([pid], QUIET_MS) == "error", pid


def linked_children(sup: Any) -> list[Any]:
    pids = pids_of(sup)
    for pid in pids:
        erlang.link(pid)
    return pids


def fake_upgrade(pid: Any, new_init_return: Any) -> Any:
    """The suite's fake_upgrade/2: swap the init args kept in the state, then change_code."""
    assert sys.suspend(pid) == "ok"
    sys.replace_state(pid, lambda s: dataclasses.replace(s, args=new_init_return))
    result = sys.change_code(pid, "gen_server", "dummy_vsn", [])
    assert sys.resume(pid) == "ok"
    return result


# -- nonsignificant children -----------------------------------------------------------------


@pytest.mark.parametrize("auto_shutdown", ["never", "any_significant", "all_significant"])
def test_nonsignificant_temporary(auto_shutdown: str) -> None:
    """nonsignificant_temporary"""
    child1 = child("child1", "temporary", False)
    sup1 = start_link(("ok", ({"auto_shutdown": auto_shutdown}, [])))[1]
    for how in ("supervisor", "kill", "abnormal", "normal"):
        cpid = supervisor.start_child(sup1, child1)[1]
        erlang.link(cpid)
        terminate(sup1, cpid, "child1", how)
        assert check_exit([cpid]) == "ok"
        quiet(sup1)
    terminate(sup1, "shutdown")
    assert check_exit([sup1]) == "ok"


@pytest.mark.parametrize("auto_shutdown", ["never", "any_significant", "all_significant"])
def test_nonsignificant_transient(auto_shutdown: str) -> None:
    """nonsignificant_transient"""
    child1 = child("child1", "transient", False)
    sup1 = start_link(("ok", ({"intensity": 5, "auto_shutdown": auto_shutdown}, [])))[1]
    cpid1 = supervisor.start_child(sup1, child1)[1]
    erlang.link(cpid1)
    terminate(sup1, cpid1, "child1", "supervisor")
    assert check_exit([cpid1]) == "ok"
    quiet(sup1)
    cpid2 = supervisor.restart_child(sup1, "child1")[1]
    erlang.link(cpid2)
    terminate(sup1, cpid2, "child1", "kill")
    assert check_exit([cpid2]) == "ok"
    quiet(sup1)
    for how in ("abnormal", "normal"):
        [(_, cpid, _, _)] = supervisor.which_children(sup1)
        erlang.link(cpid)
        terminate(sup1, cpid, "child1", how)
        assert check_exit([cpid]) == "ok"
        quiet(sup1)
    terminate(sup1, "shutdown")
    assert check_exit([sup1]) == "ok"


# -- significant children --------------------------------------------------------------------


def _three(auto_shutdown: str, restart: str) -> tuple[Any, list[Any]]:
    sup = start_link(("ok", ({"intensity": 5, "auto_shutdown": auto_shutdown}, [])))[1]
    for cid, significant in (("child1", True), ("child2", True), ("child3", False)):
        supervisor.start_child(sup, child(cid, restart, significant))
    assert [c[0] for c in supervisor.which_children(sup)] == ["child3", "child2", "child1"]
    return sup, linked_children(sup)


def test_significant_temporary() -> None:
    """significant_temporary"""
    sup1, [c3, c2, c1] = _three("any_significant", "temporary")
    terminate(sup1, c1, "child1", "supervisor")  # via the supervisor: no auto_shutdown
    assert check_exit([c1]) == "ok"
    quiet(c2, c3, sup1)
    supervisor.start_child(sup1, child("child1", "temporary", True))
    assert [c[0] for c in supervisor.which_children(sup1)] == ["child1", "child3", "child2"]
    n1, n3, n2 = linked_children(sup1)
    terminate(sup1, n1, "child1", "kill")
    assert check_exit([n1, n2, n3, sup1]) == "ok"
    for how in ("abnormal", "normal"):
        sup, [c3, c2, c1] = _three("any_significant", "temporary")
        terminate(sup, c1, "child1", how)
        assert check_exit([c1, c2, c3, sup]) == "ok"
    sup4, [c3, c2, c1] = _three("all_significant", "temporary")
    terminate(sup4, c1, "child1", "normal")
    assert check_exit([c1]) == "ok"
    quiet(c2, c3, sup4)
    terminate(sup4, c2, "child2", "normal")
    assert check_exit([c2, c3, sup4]) == "ok"


def test_significant_transient() -> None:
    """significant_transient"""
    sup1, [c3, c2, c1] = _three("any_significant", "transient")
    terminate(sup1, c1, "child1", "supervisor")
    assert check_exit([c1]) == "ok"
    quiet(c2, c3, sup1)
    supervisor.restart_child(sup1, "child1")
    for how in ("kill", "abnormal"):  # restarted, no auto_shutdown
        c3, c2, c1 = linked_children(sup1)
        terminate(sup1, c1, "child1", how)
        assert check_exit([c1]) == "ok"
        quiet(c2, c3, sup1)
    c3, c2, c1 = linked_children(sup1)
    terminate(sup1, c1, "child1", "normal")
    assert check_exit([c1, c2, c3, sup1]) == "ok"
    sup2, [c3, c2, c1] = _three("all_significant", "transient")
    terminate(sup2, c1, "child1", "normal")
    assert check_exit([c1]) == "ok"
    quiet(c2, c3, sup2)
    terminate(sup2, c2, "child2", "normal")
    assert check_exit([c2, c3, sup2]) == "ok"


def test_significant_simple() -> None:
    """significant_simple: no auto_shutdown for simple_one_for_one"""
    child1 = {"id": "child1", "start": ONE}
    for auto_shutdown in ("any_significant", "all_significant"):
        result = start_link(("ok", ({"strategy": "simple_one_for_one",
                                     "auto_shutdown": auto_shutdown}, [child1])))
        assert result[0] == "error" and result[1][0] == "supervisor_data"
        assert result[1][1][0] == "bad_combination"
    sup = start_link(("ok", ({"strategy": "simple_one_for_one", "auto_shutdown": "never"},
                             [child1])))[1]
    terminate(sup, "shutdown")
    assert check_exit([sup]) == "ok"


@pytest.mark.parametrize("auto_shutdown", ["any_significant", "all_significant"])
@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one"])
def test_significant_bystander(strategy: str, auto_shutdown: str) -> None:
    """significant_bystander: significant children stopped by a sibling's restart do not
    trigger auto_shutdown"""
    sup = start_link(("ok", ({"strategy": strategy, "intensity": 5,
                              "auto_shutdown": auto_shutdown}, [])))[1]
    for cid, significant in (("child1", True), ("child2", False), ("child3", True)):
        supervisor.start_child(sup, child(cid, "transient", significant))
    c3, c2, c1 = linked_children(sup)
    terminate(c2, "kill")
    if strategy == "one_for_one":
        assert check_exit([c2]) == "ok"
        quiet(c1, c2)
    elif strategy == "one_for_all":
        assert check_exit([c1, c2, c3]) == "ok"
    else:
        assert check_exit([c2, c3]) == "ok"
        quiet(c1)
    quiet(sup)
    terminate(sup, "shutdown")
    assert check_exit([sup]) == "ok"


def test_significant_escalation() -> None:
    """significant_escalation"""
    chsup = {"id": "sup1", "restart": "transient", "type": "supervisor",
             "start": (supervisor.start_link, [SuiteSup,
                                               ("ok", ({"auto_shutdown": "any_significant"},
                                                       []))])}
    child1 = child("child1", "transient", True)
    sup1 = start_link(("ok", ({"auto_shutdown": "any_significant"}, [])))[1]
    chsup1 = supervisor.start_child(sup1, {**chsup, "significant": True})[1]
    cpid1 = supervisor.start_child(chsup1, child1)[1]
    erlang.link(chsup1)
    erlang.link(cpid1)
    terminate(cpid1, "normal")
    assert check_exit([cpid1, chsup1, sup1]) == "ok"
    sup2 = start_link(("ok", ({"auto_shutdown": "any_significant"}, [])))[1]
    chsup2 = supervisor.start_child(sup2, {**chsup, "significant": False})[1]
    cpid2 = supervisor.start_child(chsup2, child1)[1]
    erlang.link(chsup2)
    erlang.link(cpid2)
    terminate(cpid2, "normal")
    assert check_exit([cpid2, chsup2]) == "ok"
    quiet(sup2)
    terminate(sup2, "shutdown")
    assert check_exit([sup2]) == "ok"


# -- upgrades ----------------------------------------------------------------------------------

SIG1 = child("child1", "transient", True)
SIG2 = child("child2", "transient", True)


def _upgraded(sup: Any, new_init: Any) -> None:
    s1 = sys.get_state(sup)
    assert fake_upgrade(sup, new_init) == "ok"
    assert s1 != sys.get_state(sup)


@pytest.mark.parametrize("new", ["any_significant", "all_significant"])
def test_significant_upgrade_never_to(new: str) -> None:
    """significant_upgrade_never_any, significant_upgrade_never_all"""
    sup1 = start_link(("ok", ({"auto_shutdown": "never"}, [])))[1]
    result = supervisor.start_child(sup1, SIG1)
    assert result[0] == "error" and result[1][0] == "bad_combination"
    _upgraded(sup1, ("ok", ({"auto_shutdown": new}, [])))
    cpid1 = supervisor.start_child(sup1, SIG1)[1]
    cpid2 = supervisor.start_child(sup1, SIG2)[1]
    erlang.link(cpid1)
    erlang.link(cpid2)
    terminate(cpid1, "normal")
    if new == "any_significant":
        assert check_exit([cpid1, cpid2, sup1]) == "ok"
        return
    assert check_exit([cpid1]) == "ok"
    quiet(cpid2, sup1)
    terminate(cpid2, "normal")
    assert check_exit([cpid2, sup1]) == "ok"


@pytest.mark.parametrize("old", ["any_significant", "all_significant"])
def test_significant_upgrade_to_never(old: str) -> None:
    """significant_upgrade_any_never, significant_upgrade_all_never"""
    sup1 = start_link(("ok", ({"auto_shutdown": old}, [])))[1]
    cpid1 = supervisor.start_child(sup1, SIG1)[1]
    erlang.link(cpid1)
    _upgraded(sup1, ("ok", ({"auto_shutdown": "never"}, [])))
    quiet(cpid1, sup1)
    result = supervisor.start_child(sup1, SIG2)
    assert result[0] == "error" and result[1][0] == "bad_combination"
    terminate(cpid1, "normal")
    assert check_exit([cpid1]) == "ok"
    quiet(sup1)
    cpid2 = supervisor.restart_child(sup1, "child1")[1]
    erlang.link(cpid2)
    terminate(sup1, "shutdown")
    assert check_exit([cpid2, sup1]) == "ok"


@pytest.mark.parametrize(("old", "new"), [("any_significant", "all_significant"),
                                          ("all_significant", "any_significant")])
def test_significant_upgrade_any_all(old: str, new: str) -> None:
    """significant_upgrade_any_all, significant_upgrade_all_any"""
    sup1 = start_link(("ok", ({"auto_shutdown": old}, [])))[1]
    cpid1 = supervisor.start_child(sup1, SIG1)[1]
    cpid2 = supervisor.start_child(sup1, SIG2)[1]
    erlang.link(cpid1)
    erlang.link(cpid2)
    _upgraded(sup1, ("ok", ({"auto_shutdown": new}, [])))
    quiet(cpid1, cpid2, sup1)
    terminate(cpid1, "normal")
    if new == "any_significant":
        assert check_exit([cpid1, cpid2, sup1]) == "ok"
        return
    assert check_exit([cpid1]) == "ok"
    quiet(cpid2, sup1)
    terminate(cpid2, "normal")
    assert check_exit([cpid2, sup1]) == "ok"


def test_significant_upgrade_child() -> None:
    """significant_upgrade_child"""
    plain = {"id": "child", "start": ONE, "restart": "transient", "significant": False}
    sig = {**plain, "significant": True}
    sup1 = start_link(("ok", ({"auto_shutdown": "never"}, [plain])))[1]
    [c1] = linked_children(sup1)
    s1 = sys.get_state(sup1)
    assert fake_upgrade(sup1, ("ok", ({"auto_shutdown": "never"}, [sig])))[0] == "error"
    assert s1 != sys.get_state(sup1)
    quiet(c1, sup1)
    terminate(sup1, "shutdown")
    assert check_exit([c1, sup1]) == "ok"
    sup2 = start_link(("ok", ({"auto_shutdown": "any_significant"}, [plain])))[1]
    [c2] = linked_children(sup2)
    _upgraded(sup2, ("ok", ({"auto_shutdown": "any_significant"}, [sig])))
    quiet(c2, sup2)
    terminate(c2, "normal")
    assert check_exit([c2, sup2]) == "ok"
    sup3 = start_link(("ok", ({"auto_shutdown": "any_significant"}, [sig])))[1]
    [c3] = linked_children(sup3)
    _upgraded(sup3, ("ok", ({"auto_shutdown": "any_significant"}, [plain])))
    quiet(c3, sup3)
    terminate(c3, "normal")
    assert check_exit([c3]) == "ok"
    quiet(sup3)
    terminate(sup3, "shutdown")
    assert check_exit([sup3]) == "ok"


# -- code_change -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["tuple", "map"])
def test_code_change(form: str) -> None:
    """code_change, code_change_map"""
    flags: Any = ("one_for_one", 0, 1) if form == "tuple" else {}
    pid = start_link(("ok", (flags, [])))[1]
    assert supervisor.which_children(pid) == []
    _upgraded(pid, ("ok", (("one_for_one", 1, 3) if form == "tuple"
                           else {"intensity": 1, "period": 3}, [])))
    if form == "tuple":
        faulty: Any = ("child1", "permanent", "brutal_kill", "worker", [])  # no start
        assert fake_upgrade(pid, ("ok", (flags, [faulty]))) == \
            ("error", ("error", ("invalid_child_spec", faulty)))
        child1 = ("child1", ONE, "permanent", 2000, "worker", [])
        child2 = ("child2", ONE, "permanent", "brutal_kill", "worker", [])
        child11 = ("child1", ONE, "permanent", 1000, "worker", [])
        child3 = ("child3", ONE, "permanent", "brutal_kill", "worker", [])
    else:
        assert fake_upgrade(pid, ("ok", (flags, [{"id": "faulty_child"}]))) == \
            ("error", ("error", "missing_start"))
        child1 = {"id": "child1", "start": ONE, "shutdown": 2000}
        child2 = {"id": "child2", "start": ONE}
        child11 = {"id": "child1", "start": ONE, "shutdown": 1000}
        child3 = {"id": "child3", "start": ONE}
    assert fake_upgrade(pid, ("ok", (flags, [child1, child2]))) == "ok"
    assert supervisor.restart_child(pid, "child1")[0] == "ok"  # not started by the upgrade
    assert supervisor.restart_child(pid, "child2")[0] == "ok"
    assert [c[0] for c in supervisor.which_children(pid)] == ["child2", "child1"]
    assert supervisor.get_childspec(pid, "child1")[1]["shutdown"] == 2000
    assert fake_upgrade(pid, ("ok", (flags, [child11, child3]))) == "ok"
    # children are not deleted by an upgrade: child2 is still there
    assert [c[0] for c in supervisor.which_children(pid)] == ["child2", "child3", "child1"]
    assert supervisor.get_childspec(pid, "child1")[1]["shutdown"] == 1000
    assert fake_upgrade(pid, "ignore") == "ok"
    assert fake_upgrade(pid, "faulty_return") == ("error", "faulty_return")
    bad = ("one_for_one", "faulty_intensity", 1) if form == "tuple" \
        else {"intensity": "faulty_intensity"}
    assert fake_upgrade(pid, ("ok", (bad, []))) == \
        ("error", ("error", ("invalid_intensity", "faulty_intensity")))
    if form == "tuple":
        assert fake_upgrade(pid, ("ok", ("faulty_flags", []))) == \
            ("error", ("error", ("bad_flags", "faulty_flags")))
    terminate(pid, "shutdown")


@pytest.mark.parametrize("form", ["tuple", "map"])
def test_code_change_simple(form: str) -> None:
    """code_change_simple, code_change_simple_map (a wrong number of specs gives
    ("error", ("error", ("bad_start_spec", specs))), see the module docstring)"""
    if form == "tuple":
        flags: Any = ("simple_one_for_one", 0, 1)
        c1: Any = ("child1", ONE, "permanent", "brutal_kill", "worker", [])
        c11: Any = ("child1", ONE, "permanent", 1000, "worker", [])
        c2: Any = ("child2", ONE, "permanent", "brutal_kill", "worker", [])
    else:
        flags = {"strategy": "simple_one_for_one"}
        c1, c2 = {"id": "child1", "start": ONE}, {"id": "child2", "start": ONE}
        c11 = {"id": "child1", "start": ONE, "shutdown": 1000}
    pid = start_link(("ok", (flags, [c1])))[1]
    assert fake_upgrade(pid, ("ok", (flags, [c11]))) == "ok"
    result = fake_upgrade(pid, ("ok", (flags, [c1, c2])))
    assert result[0] == "error" and result[1][0] == "error"
    result = fake_upgrade(pid, ("ok", (flags, [])))
    assert result[0] == "error" and result[1][0] == "error"
    cpid = supervisor.start_child(pid, [])[1]
    assert supervisor.get_childspec(pid, cpid)[1]["shutdown"] == 1000
    terminate(pid, "shutdown")
