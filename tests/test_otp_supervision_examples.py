"""OTP Design Principles, "Supervisor Behaviour", ported: ch_sup supervising ch3, and a
two-level supervision tree.

The Erlang modules become classes used as modules: `ch3.start_link()` is `ch3:start_link()`,
and the child spec's start {ch3, start_link, []} is (ch3, "start_link", []).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors import Node, erlang, gen_server
from actors.erlang import Pid
from supervision import supervisor
from tests.helpers import down_of, no_message, recv, wait_until

# -- ch3, from the gen_server chapter -------------------------------------------------------------
#
# -module(ch3).
# -behaviour(gen_server).
# -export([start_link/0]).
# -export([alloc/0, free/1]).
# -export([init/1, handle_call/3, handle_cast/2]).

Channels = tuple[list[int], list[int]]


def channels() -> Channels:
    # channels() -> {_Allocated = [], _Free = lists:seq(1, 100)}.
    return ([], list(range(1, 101)))


def alloc(chs: Channels) -> tuple[int, Channels]:
    # alloc({Allocated, [H|T] = _Free}) -> {H, {[H|Allocated], T}}.
    allocated, free_ = chs
    h, t = free_[0], free_[1:]
    return h, ([h, *allocated], t)


def free(ch: int, chs: Channels) -> Channels:
    # free(Ch, {Alloc, Free} = Channels) ->
    #     case lists:member(Ch, Alloc) of
    #         true -> {lists:delete(Ch, Alloc), [Ch|Free]};
    #         false -> Channels
    #     end.
    alloc_, free_ = chs
    if ch in alloc_:
        rest = list(alloc_)
        rest.remove(ch)
        return (rest, [ch, *free_])
    return chs


class ch3(gen_server.GenServer):  # the module's name, as in the OTP example
    @staticmethod
    def start_link() -> Any:
        # start_link() -> gen_server:start_link({local, ch3}, ch3, [], []).
        return gen_server.start_link(("local", "ch3"), ch3, [], [])

    @staticmethod
    def alloc() -> Any:
        # alloc() -> gen_server:call(ch3, alloc).
        return gen_server.call("ch3", "alloc")

    @staticmethod
    def free(ch: int) -> Any:
        # free(Ch) -> gen_server:cast(ch3, {free, Ch}).
        return gen_server.cast("ch3", ("free", ch))

    def init(self, _args: Any) -> Any:
        # init(_Args) -> {ok, channels()}.
        return ("ok", channels())

    def handle_call(self, request: Any, from_: Any, chs: Any) -> Any:
        # handle_call(alloc, _From, Chs) -> {Ch, Chs2} = alloc(Chs), {reply, Ch, Chs2}.
        if request == "alloc":
            ch, chs2 = alloc(chs)
            return ("reply", ch, chs2)
        return super().handle_call(request, from_, chs)

    def handle_cast(self, msg: Any, chs: Any) -> Any:
        # handle_cast({free, Ch}, Chs) -> Chs2 = free(Ch, Chs), {noreply, Chs2}.
        if type(msg) is tuple and len(msg) == 2 and msg[0] == "free":
            return ("noreply", free(msg[1], chs))
        return super().handle_cast(msg, chs)


# -- ch_sup, from the supervisor chapter ----------------------------------------------------------
#
# -module(ch_sup).
# -behaviour(supervisor).
# -export([start_link/0]).
# -export([init/1]).


class ch_sup(supervisor.Supervisor):
    @staticmethod
    def start_link() -> Any:
        # start_link() -> supervisor:start_link(ch_sup, []).
        return supervisor.start_link(ch_sup, [])

    def init(self, _args: Any) -> Any:
        # init(_Args) ->
        #     SupFlags = #{strategy => one_for_one, intensity => 1, period => 5},
        #     ChildSpecs = [#{id => ch3,
        #                     start => {ch3, start_link, []},
        #                     restart => permanent,
        #                     shutdown => brutal_kill,
        #                     type => worker,
        #                     modules => [ch3]}],
        #     {ok, {SupFlags, ChildSpecs}}.
        sup_flags = {"strategy": "one_for_one", "intensity": 1, "period": 5}
        child_specs = [{"id": "ch3",
                        "start": (ch3, "start_link", []),
                        "restart": "permanent",
                        "shutdown": "brutal_kill",
                        "type": "worker",
                        "modules": [ch3]}]
        return ("ok", (sup_flags, child_specs))


class ch_sup_tuples(supervisor.Supervisor):
    """The same supervisor in the older tuple form of the same chapter:
    init(_Args) -> {ok, {{one_for_one, 1, 60},
                         [{ch3, {ch3, start_link, []}, permanent, brutal_kill, worker, [ch3]}]}}.
    """

    @staticmethod
    def start_link() -> Any:
        return supervisor.start_link(ch_sup_tuples, [])

    def init(self, _args: Any) -> Any:
        return ("ok", (("one_for_one", 1, 60),
                       [("ch3", (ch3, "start_link", []), "permanent", "brutal_kill", "worker",
                         [ch3])]))


SUPERVISORS = [ch_sup, ch_sup_tuples]


def wait_new_ch3(old: Pid) -> Pid:
    """Wait until a ch3 other than `old` is registered."""
    wait_until(lambda: erlang.whereis("ch3") not in ("undefined", old))
    pid = erlang.whereis("ch3")
    assert type(pid) is Pid
    return pid


def kill(pid: Pid) -> None:
    ref = erlang.monitor("process", pid)
    erlang.exit(pid, "kill")
    assert recv(down_of(ref))[4] == "killed"


@pytest.fixture
def trapping(node: Node) -> Iterator[None]:
    erlang.process_flag("trap_exit", True)
    yield


@pytest.mark.parametrize("sup_module", SUPERVISORS)
def test_ch_sup_starts_ch3_which_serves_channels(node: Node, sup_module: Any) -> None:
    result = sup_module.start_link()
    assert type(result) is tuple and result[0] == "ok" and type(result[1]) is Pid
    sup = result[1]
    pid = erlang.whereis("ch3")
    assert type(pid) is Pid
    assert supervisor.which_children(sup) == [("ch3", pid, "worker", [ch3])]
    assert supervisor.count_children(sup) == [
        ("specs", 1), ("active", 1), ("supervisors", 0), ("workers", 1)]
    assert ch3.alloc() == 1
    assert ch3.alloc() == 2
    assert ch3.free(1) == "ok"
    assert ch3.alloc() == 1
    assert ch3.alloc() == 3


@pytest.mark.parametrize("sup_module", SUPERVISORS)
def test_ch_sup_restarts_a_crashed_ch3_with_fresh_state(node: Node, sup_module: Any) -> None:
    sup = sup_module.start_link()[1]
    old = erlang.whereis("ch3")
    assert ch3.alloc() == 1 and ch3.alloc() == 2
    kill(old)
    new = wait_new_ch3(old)
    assert supervisor.which_children(sup) == [("ch3", new, "worker", [ch3])]
    assert ch3.alloc() == 1  # a restarted child starts from its init again
    assert erlang.is_process_alive(sup)


@pytest.mark.parametrize("sup_module", SUPERVISORS)
def test_ch_sup_gives_up_after_a_second_restart_within_the_period(
        node: Node, trapping: None, sup_module: Any) -> None:
    sup = sup_module.start_link()[1]
    mref = erlang.monitor("process", sup)
    first = erlang.whereis("ch3")
    kill(first)
    second = wait_new_ch3(first)
    kill(second)  # intensity 1: the second restart within the period is one too many
    assert recv(down_of(mref))[4] == "shutdown"
    assert erlang.whereis("ch3") == "undefined"


def test_stopping_ch_sup_brutally_kills_ch3(node: Node) -> None:
    sup = ch_sup.start_link()[1]
    pid = erlang.whereis("ch3")
    mref = erlang.monitor("process", pid)
    assert gen_server.stop(sup) == "ok"
    assert recv(down_of(mref))[4] == "killed"  # shutdown => brutal_kill
    assert erlang.whereis("ch3") == "undefined"


# -- a two-level supervision tree -----------------------------------------------------------------
#
#            top_sup (one_for_one)
#            /                 \
#         w0 (worker)      lower_sup (one_for_one, intensity 1, period 5)
#                            /        \
#                         w1            w2


class tree_worker(gen_server.GenServer):
    """Traps exits so that a shutdown runs terminate; reports start and stop to `report_to`."""

    @staticmethod
    def start_link(report_to: Pid, name: str) -> Any:
        return gen_server.start_link(tree_worker, (report_to, name))

    def init(self, args: Any) -> Any:
        report_to, name = args
        erlang.process_flag("trap_exit", True)
        erlang.send(report_to, ("started", name, erlang.self()))
        return ("ok", args)

    def terminate(self, reason: Any, state: Any) -> Any:
        report_to, name = state
        erlang.send(report_to, ("terminated", name, reason))
        return "ok"


def worker_spec(name: str, report_to: Pid) -> dict[str, Any]:
    return {"id": name, "start": (tree_worker, "start_link", [report_to, name]),
            "restart": "permanent", "shutdown": 2000, "type": "worker",
            "modules": [tree_worker]}


class lower_sup(supervisor.Supervisor):
    @staticmethod
    def start_link(report_to: Pid) -> Any:
        return supervisor.start_link(lower_sup, report_to)

    def init(self, report_to: Pid) -> Any:
        sup_flags = {"strategy": "one_for_one", "intensity": 1, "period": 5}
        return ("ok", (sup_flags, [worker_spec("w1", report_to),
                                   worker_spec("w2", report_to)]))


class top_sup(supervisor.Supervisor):
    @staticmethod
    def start_link(report_to: Pid) -> Any:
        return supervisor.start_link(("local", "top_sup"), top_sup, report_to)

    def init(self, report_to: Pid) -> Any:
        sup_flags = {"strategy": "one_for_one", "intensity": 3, "period": 5}
        return ("ok", (sup_flags, [
            worker_spec("w0", report_to),
            {"id": "lower_sup", "start": (lower_sup, "start_link", [report_to]),
             "restart": "permanent", "shutdown": "infinity", "type": "supervisor",
             "modules": [lower_sup]}]))


def is_event(m: Any) -> bool:
    return type(m) is tuple and len(m) == 3 and m[0] in ("started", "terminated")


def next_events(n: int) -> list[tuple[str, str]]:
    return [recv(is_event)[:2] for _ in range(n)]


def tree(top: Any) -> dict[str, Pid]:
    """Every pid in the tree, by child id, plus the top supervisor itself."""
    top_children = {i: p for i, p, _, _ in supervisor.which_children(top)}
    lower = top_children["lower_sup"]
    lower_children = {i: p for i, p, _, _ in supervisor.which_children(lower)}
    return {"top_sup": erlang.whereis("top_sup"), **top_children, **lower_children}


@pytest.fixture
def top(node: Node) -> Pid:
    result = top_sup.start_link(erlang.self())
    assert type(result) is tuple and result[0] == "ok"
    assert next_events(3) == [("started", "w0"), ("started", "w1"), ("started", "w2")]
    return result[1]


def test_tree_shape(top: Pid) -> None:
    pids = tree("top_sup")
    assert pids["top_sup"] == top
    assert supervisor.count_children(top) == [
        ("specs", 2), ("active", 2), ("supervisors", 1), ("workers", 1)]
    assert supervisor.count_children(pids["lower_sup"]) == [
        ("specs", 2), ("active", 2), ("supervisors", 0), ("workers", 2)]


def test_tree_killing_a_lower_worker_restarts_only_it(top: Pid) -> None:
    before = tree(top)
    kill(before["w1"])
    assert next_events(1) == [("started", "w1")]
    no_message(is_event)
    after = tree(top)
    assert after["w1"] != before["w1"]
    for name in ("top_sup", "w0", "lower_sup", "w2"):
        assert after[name] == before[name]


def test_tree_lower_supervisor_over_its_intensity_restarts_as_a_whole(top: Pid) -> None:
    before = tree(top)
    lower_ref = erlang.monitor("process", before["lower_sup"])
    kill(before["w1"])
    assert next_events(1) == [("started", "w1")]
    kill(tree(top)["w1"])  # the second restart within 5 s: lower_sup gives up
    # lower_sup stops its other child, exits with shutdown, and top_sup restarts it
    assert next_events(1) == [("terminated", "w2")]
    assert recv(down_of(lower_ref))[4] == "shutdown"
    assert next_events(2) == [("started", "w1"), ("started", "w2")]
    no_message(is_event)
    after = tree(top)
    assert after["top_sup"] == before["top_sup"] and after["w0"] == before["w0"]
    for name in ("lower_sup", "w1", "w2"):
        assert after[name] != before[name]
        assert erlang.is_process_alive(after[name])
        assert not erlang.is_process_alive(before[name])


def test_tree_stopping_the_top_stops_everything_in_reverse_order(top: Pid) -> None:
    pids = tree(top)
    assert gen_server.stop("top_sup") == "ok"
    # lower_sup (started last) goes first, stopping w2 then w1; then w0
    assert next_events(3) == [("terminated", "w2"), ("terminated", "w1"),
                              ("terminated", "w0")]
    assert not any(erlang.is_process_alive(pid) for pid in pids.values())
    assert erlang.whereis("top_sup") == "undefined"
