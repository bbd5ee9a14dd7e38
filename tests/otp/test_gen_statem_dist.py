"""gen_statem across real node OS processes, and under a supervisor.

- A machine on a peer node is started by rpc, then driven from this node by name
  ((name, node)) and by pid: casts, calls (the gen_server call protocol), sys, stop, and
  its state time-out, which runs on the peer. stop on a node that is gone exits
  {{nodedown, Node}, {sys, terminate, _}}, as gen_statem_SUITE's stop8/stop9 expect.
- A machine is a supervisor's child like a gen_server: started by its start_link,
  restarted when it crashes, and shut down (terminate/3 runs) with its supervisor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import Exit, Node, Pid, erlang, gen_statem, peer, rpc, sys
from demos.erlang_ports import code_lock
from supervision import supervisor
from tests.helpers import down_of, recv, wait_until


class QuickLock(code_lock.CodeLockEvents):
    """The handle_event_function code lock, open for 300 ms."""

    OPEN_TIME = 300


def _rpc(node: str, *args: Any) -> Any:
    result = rpc.call(node, *args, 10_000)
    assert not (type(result) is tuple and result[:1] == ("badrpc",)), result
    return result


def test_a_gen_statem_on_another_node(peers: Callable[..., tuple[Pid, str]]) -> None:
    ppid, pnode = peers()
    result = _rpc(pnode, "gen_statem", "start", [("local", code_lock.NAME), QuickLock,
                                                  [1, 2, 3], []])
    assert result[0] == "ok" and result[1].node == pnode
    pid = result[1]
    by_name = (code_lock.NAME, pnode)
    assert gen_statem.call(by_name, "code_length") == 3
    assert gen_statem.call(pid, "code_length", 5000) == 3
    for b in (1, 2):
        assert gen_statem.cast(by_name, ("button", b)) == "ok"
    assert sys.get_state(by_name) == ("locked", {"code": [1, 2, 3], "length": 3,
                                                 "buttons": [1, 2]})
    gen_statem.cast(pid, ("button", 3))
    assert sys.get_state(pid)[0] == "open"
    # the state time-out fires on the peer's own timers
    wait_until(lambda: sys.get_state(by_name)[0] == "locked", 5.0)
    req = gen_statem.send_request(by_name, "code_length")
    assert gen_statem.receive_response(req, 5000) == ("reply", 3)
    mref = erlang.monitor("process", pid)
    assert gen_statem.stop(by_name) == "ok"
    assert recv(down_of(mref), 5000)[4] == "normal"
    assert _rpc(pnode, "erlang", "whereis", [code_lock.NAME]) == "undefined"
    reason = _expect_exit(gen_statem.stop, by_name)
    assert reason == "noproc"

    # stop8: anonymous on the remote node, then the node goes away
    pid2 = _rpc(pnode, "gen_statem", "start", [QuickLock, [4], []])[1]
    assert gen_statem.stop(pid2) == "ok"
    assert _rpc(pnode, "erlang", "is_process_alive", [pid2]) is False
    assert _expect_exit(gen_statem.stop, pid2) == "noproc"
    peer.stop(ppid)
    reason = _expect_exit(gen_statem.stop, pid2)
    assert reason[0] == ("nodedown", pnode) and reason[1][:2] == ("sys", "terminate")


def test_a_remote_call_of_a_crashing_machine_exits_with_its_reason(
        peers: Callable[..., tuple[Pid, str]]) -> None:
    _, pnode = peers()
    pid = _rpc(pnode, "gen_statem", "start", [QuickLock, [1], []])[1]
    reason = _expect_exit(gen_statem.call, pid, "no_such_request")
    assert reason[0][0][0] == "function_clause"  # ((error reason, stacktrace), where)
    assert reason[1] == ("gen_statem", "call", [pid, "no_such_request", "infinity"])


def _expect_exit(fun: Any, *args: Any) -> Any:
    try:
        fun(*args)
    except Exit as exc:
        return exc.reason
    raise AssertionError(f"{fun.__name__}{args} did not exit")


# -- supervision -----------------------------------------------------------------------------


class Reporting(gen_statem.GenStatem):
    """A one-state machine that reports its start and its terminate to `owner`."""

    @classmethod
    def start_link(cls, owner: Pid) -> Any:
        return gen_statem.start_link(cls, owner, [])

    def init(self, owner: Pid) -> Any:
        erlang.process_flag("trap_exit", True)  # so that a shutdown runs terminate
        erlang.send(owner, ("started", erlang.self()))
        return ("ok", "running", owner)

    def running(self, etype: Any, content: Any, owner: Any) -> Any:
        if etype == "cast" and content == "crash":
            raise Exit("crashed")
        return "keep_state_and_data"

    def terminate(self, reason: Any, state: Any, owner: Any) -> Any:
        erlang.send(owner, ("terminated", erlang.self(), reason))
        return "ok"


class Sup:
    def init(self, owner: Pid) -> Any:
        erlang.process_flag("trap_exit", True)
        spec = {"id": "machine", "start": (Reporting, "start_link", [owner]),
                "shutdown": 2000}
        return ("ok", ({"strategy": "one_for_one", "intensity": 5, "period": 5}, [spec]))


def test_a_gen_statem_is_a_supervisor_child(node: Node) -> None:
    me = erlang.self()
    erlang.process_flag("trap_exit", True)
    result = supervisor.start_link(Sup, me)
    assert result[0] == "ok", result
    sup = result[1]
    first = recv(lambda m: type(m) is tuple and m[0] == "started")[1]
    assert supervisor.which_children(sup) == [("machine", first, "worker", [Reporting])]
    gen_statem.cast(first, "crash")
    assert recv(lambda m: type(m) is tuple and m[0] == "terminated") == \
        ("terminated", first, "crashed")
    second = recv(lambda m: type(m) is tuple and m[0] == "started")[1]
    assert second != first
    wait_until(lambda: supervisor.which_children(sup)[0][1] == second)
    erlang.exit(sup, "shutdown")
    assert recv(lambda m: type(m) is tuple and m[0] == "terminated") == \
        ("terminated", second, "shutdown")
    recv(lambda m: m == ("EXIT", sup, "shutdown"))
