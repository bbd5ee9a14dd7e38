"""Examples from OTP's Design Principles, ported line for line, with tests.

1. `ch3`, the channel allocator of the gen_server Behaviour chapter:

    -module(ch3).
    -behaviour(gen_server).
    -export([start_link/0]).
    -export([alloc/0, free/1]).
    -export([init/1, handle_call/3, handle_cast/2]).

    start_link() -> gen_server:start_link({local, ch3}, ch3, [], []).
    alloc() -> gen_server:call(ch3, alloc).
    free(Ch) -> gen_server:cast(ch3, {free, Ch}).
    init(_Args) -> {ok, channels()}.
    handle_call(alloc, _From, Chs) -> {Ch, Chs2} = alloc(Chs), {reply, Ch, Chs2}.
    handle_cast({free, Ch}, Chs) -> Chs2 = free(Ch, Chs), {noreply, Chs2}.

   with channels/0, alloc/1 and free/2 from the Overview chapter (ch1):

    channels() -> {_Allocated = [], _Free = lists:seq(1,100)}.
    alloc({Allocated, [H|T] = _Free}) -> {H, {[H|Allocated], T}}.
    free(Ch, {Alloc, Free} = Channels) ->
        case lists:member(Ch, Alloc) of
            true -> {lists:delete(Ch, Alloc), [Ch|Free]};
            false -> Channels
        end.

   The Erlang module is a Python module object holding exactly the exported functions.

2. A process that traps exits (Processes chapter of the Reference Manual): it sets
   process_flag(trap_exit, true), and an exit signal from a linked process arrives as the
   message {'EXIT', FromPid, Reason} instead of killing it.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from actors import Node, Pid, erlang, gen_server, sys
from tests.helpers import down_of, recv

# -- 1. ch3 -------------------------------------------------------------------------------

Channels = tuple[list[int], list[int]]

ch3 = types.ModuleType("ch3")


def export(fun: Callable[..., Any]) -> Callable[..., Any]:
    """-export: put the function in the ch3 module object."""
    setattr(ch3, fun.__name__, fun)
    return fun


@export
def start_link() -> Any:
    return gen_server.start_link(("local", "ch3"), ch3, [], [])


@export
def alloc() -> Any:
    return gen_server.call("ch3", "alloc")


@export
def free(ch: int) -> str:
    return gen_server.cast("ch3", ("free", ch))


@export
def init(_args: Any) -> Any:
    return ("ok", channels())


@export
def handle_call(request: Any, _from: Any, chs: Channels) -> Any:
    match request:
        case "alloc":
            ch, chs2 = alloc_channel(chs)
            return ("reply", ch, chs2)


@export
def handle_cast(msg: Any, chs: Channels) -> Any:
    match msg:
        case ("free", ch):
            chs2 = free_channel(ch, chs)
            return ("noreply", chs2)


def channels() -> Channels:
    return ([], list(range(1, 101)))


def alloc_channel(chs: Channels) -> tuple[int, Channels]:
    """alloc/1 (a local function in Erlang; Python has one `alloc` per module)."""
    allocated, (h, *t) = chs
    return h, ([h, *allocated], t)


def free_channel(ch: int, chs: Channels) -> Channels:
    """free/2."""
    alloc_, free_ = chs
    if ch in alloc_:
        rest = list(alloc_)
        rest.remove(ch)
        return (rest, [ch, *free_])
    return chs


def test_ch3_start_link_registers_ch3(node: Node) -> None:
    result = ch3.start_link()
    assert result[0] == "ok" and type(result[1]) is Pid
    assert erlang.whereis("ch3") == result[1]
    assert result[1] in erlang.process_info(erlang.self())["links"]
    assert sys.get_state("ch3") == channels()


def test_ch3_alloc_returns_distinct_channels(node: Node) -> None:
    ch3.start_link()
    got = [ch3.alloc() for _ in range(10)]
    assert got == list(range(1, 11))
    assert len(set(got)) == 10


def test_ch3_free_makes_a_channel_available_again(node: Node) -> None:
    ch3.start_link()
    assert ch3.alloc() == 1
    assert ch3.alloc() == 2
    assert ch3.free(1) == "ok"
    assert ch3.alloc() == 1  # freed channels go to the head of the free list
    assert ch3.alloc() == 3
    assert sys.get_state("ch3") == ([3, 1, 2], list(range(4, 101)))


def test_ch3_free_of_an_unallocated_channel_changes_nothing(node: Node) -> None:
    ch3.start_link()
    ch3.alloc()
    before = sys.get_state("ch3")
    assert ch3.free(50) == "ok"
    assert sys.get_state("ch3") == before


def test_ch3_concurrent_clients_get_distinct_channels(node: Node) -> None:
    ch3.start_link()
    owner = erlang.self()

    def client() -> None:
        erlang.send(owner, ("got", ch3.alloc()))

    for _ in range(20):
        erlang.spawn(client)
    got = [recv(lambda m: type(m) is tuple and m[0] == "got")[1] for _ in range(20)]
    assert sorted(got) == list(range(1, 21))


def test_ch3_stops_without_a_terminate_callback(node: Node) -> None:
    # ch3 exports no terminate/2; it is optional, so gen_server:stop(ch3) returns ok
    pid = ch3.start_link()[1]
    assert gen_server.stop("ch3") == "ok"
    assert not erlang.is_process_alive(pid)


# -- 2. a process that traps exits --------------------------------------------------------


def crashing_worker(reason: Any) -> None:
    erlang.receive(lambda m: m == "crash", 3000)
    erlang.exit(reason)


def raising_worker() -> None:
    erlang.receive(lambda m: m == "crash", 3000)
    raise ZeroDivisionError("badarith")


def trapper(owner: Pid, worker_fun: Callable[..., None], *worker_args: Any) -> None:
    """Traps exits, spawn_links a worker, reports its EXIT, then keeps serving pings."""
    erlang.process_flag("trap_exit", True)
    worker = erlang.spawn_link(worker_fun, *worker_args)
    erlang.send(worker, "crash")
    msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "EXIT", 3000)
    erlang.send(owner, ("got", worker, msg))
    for _ in range(10):
        req = erlang.receive(None, 3000)
        if req == "stop" or req is erlang.TIMEOUT:
            return
        if type(req) is tuple and req[0] == "ping":
            erlang.send(req[1], ("pong", erlang.self()))


def test_trapping_process_receives_exit_message_and_keeps_running(node: Node) -> None:
    me = erlang.self()
    pid = erlang.spawn(trapper, me, crashing_worker, "crashed")
    _, worker, msg = recv(lambda m: type(m) is tuple and m[0] == "got")
    assert msg == ("EXIT", worker, "crashed")
    assert erlang.is_process_alive(pid)
    erlang.send(pid, ("ping", me))
    assert recv(lambda m: type(m) is tuple and m[0] == "pong") == ("pong", pid)
    erlang.send(pid, "stop")


def test_trapping_process_gets_exception_reason_of_a_crashed_worker(node: Node) -> None:
    me = erlang.self()
    pid = erlang.spawn(trapper, me, raising_worker)
    _, worker, msg = recv(lambda m: type(m) is tuple and m[0] == "got")
    tag, from_, (exc, stack) = msg
    assert (tag, from_) == ("EXIT", worker)
    assert isinstance(exc, ZeroDivisionError) and isinstance(stack, list)
    erlang.send(pid, ("ping", me))
    assert recv(lambda m: type(m) is tuple and m[0] == "pong") == ("pong", pid)
    erlang.send(pid, "stop")


def test_trapping_process_sees_normal_exit_of_a_linked_process(node: Node) -> None:
    me = erlang.self()
    pid = erlang.spawn(trapper, me, crashing_worker, "normal")
    _, worker, msg = recv(lambda m: type(m) is tuple and m[0] == "got")
    assert msg == ("EXIT", worker, "normal")
    assert erlang.is_process_alive(pid)
    erlang.send(pid, "stop")


def test_without_trapping_the_linked_crash_kills_the_process(node: Node) -> None:
    def non_trapper() -> None:
        worker = erlang.spawn_link(crashing_worker, "crashed")
        erlang.send(worker, "crash")
        erlang.receive(lambda m: m == "never", 3000)

    pid, ref = erlang.spawn_monitor(non_trapper)
    assert recv(down_of(ref)) == ("DOWN", ref, "process", pid, "crashed")
