"""Handlers run on the I/O thread (actors._inline): a handler that blocks, sleeps or is
killed there never stalls the node's distribution. Real peer nodes in OS processes."""

from __future__ import annotations

import time
from typing import Any

from actors import Node, erlang, gen_server, rpc

from .helpers import down_of, recv


class Worker(gen_server.GenServer):
    """`("sleep", ms)` holds the thread in plain Python (no runtime call: only the watchdog
    can move the I/O role); `("call", server_ref, req)` calls another server and so blocks in
    a receive; "ping" answers at once."""

    def init(self, args: Any) -> Any:
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("sleep", ms):
                time.sleep(ms / 1000.0)
                return ("reply", "slept", state)
            case ("call", server_ref, inner):
                return ("reply", ("called", gen_server.call(server_ref, inner)), state)
            case "ping":
                return ("reply", "pong", state)


def start_worker(name: str) -> Any:
    return gen_server.start(("local", name), Worker, None)


def test_a_long_handler_does_not_stall_the_node(dist_node: Node, peers: Any) -> None:
    """A handler holding its thread for 2 s (over net_ticktime) neither takes the node down
    nor delays another server's answer on that node."""
    _, node = peers()
    for name in ("sleepy", "quick"):
        assert rpc.call(node, start_worker, [name])[0] == "ok"
    erlang.monitor_node(node, True)
    req = gen_server.send_request(("sleepy", node), ("sleep", 2000))
    time.sleep(0.05)  # let the sleep start (not a condition: the call below must not wait)
    t0 = time.monotonic()
    for _ in range(20):
        assert gen_server.call(("quick", node), "ping", 1000) == "pong"
    assert time.monotonic() - t0 < 1.0
    assert gen_server.receive_response(req, 5000) == ("reply", "slept")
    assert erlang.receive(lambda m: m == ("nodedown", node), 200) is erlang.TIMEOUT
    assert node in erlang.nodes()


def test_a_handler_that_calls_back_does_not_deadlock(dist_node: Node, peers: Any) -> None:
    """A remote handler that calls a server on the caller's node blocks in a receive on the
    thread that reads the sockets; the reply it waits for must still be read."""
    _, node = peers()
    assert rpc.call(node, start_worker, ["relay"])[0] == "ok"
    start_worker("home")
    for _ in range(50):
        reply = gen_server.call(("relay", node), ("call", ("home", dist_node.name), "ping"))
        assert reply == ("called", "pong")


def test_nested_calls_through_two_relays(dist_node: Node, peers: Any) -> None:
    """Peer 1 calls peer 2, which calls back to us: each hop blocks a reading thread."""
    _, node1 = peers()
    _, node2 = peers()
    start_worker("home")
    assert rpc.call(node1, start_worker, ["relay"])[0] == "ok"
    assert rpc.call(node2, start_worker, ["relay"])[0] == "ok"
    inner = ("call", ("home", dist_node.name), "ping")
    for _ in range(20):
        reply = gen_server.call(("relay", node1), ("call", ("relay", node2), inner))
        assert reply == ("called", ("called", "pong"))


def test_kill_of_a_handler_stuck_on_the_io_thread(dist_node: Node, peers: Any) -> None:
    """exit(pid, kill) ends a server stuck in plain Python at once; the node carries on."""
    _, node = peers()
    assert rpc.call(node, start_worker, ["stuck"])[0] == "ok"
    assert rpc.call(node, start_worker, ["quick"])[0] == "ok"
    pid = rpc.call(node, erlang.whereis, ["stuck"])
    ref = erlang.monitor("process", pid)
    gen_server.send_request(pid, ("sleep", 3000))
    erlang.exit(pid, "kill")
    assert recv(down_of(ref), 1000)[4] == "killed"
    assert gen_server.call(("quick", node), "ping", 1000) == "pong"
    assert node in erlang.nodes()


class Silent(gen_server.GenServer):
    def init(self, args: Any) -> Any:
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("noreply", state)  # never answers


def start_silent() -> Any:
    return gen_server.start(("local", "silent"), Silent, None)


def _forward_all(n: int, to: Any) -> None:
    erlang.send(to, [erlang.receive(timeout=5000) for _ in range(n)])


def _send_numbers(to: Any, n: int) -> None:
    for i in range(n):
        erlang.send(to, i)


def test_traffic_for_others_flows_while_a_caller_polls(dist_node: Node, peers: Any) -> None:
    """A caller that polls the link for its own replies (ZmqLink.lead_until) serves every
    other frame that comes meanwhile: a stream to another local process arrives whole and
    in order while the caller makes calls back to back."""
    _, node = peers()
    assert rpc.call(node, start_worker, ["echo"])[0] == "ok"
    me = erlang.self()
    sink = erlang.spawn(_forward_all, 2000, me)
    rpc.call(node, erlang.spawn, [_send_numbers, sink, 2000])
    for _ in range(300):
        assert gen_server.call(("echo", node), "ping") == "pong"
    assert recv(lambda m: type(m) is list, 10_000) == list(range(2000))


def test_kill_of_a_caller_that_polls_for_its_reply(dist_node: Node, peers: Any) -> None:
    _, node = peers()
    assert rpc.call(node, start_silent)[0] == "ok"

    def caller() -> None:
        gen_server.call(("silent", node), "hello", "infinity")

    pid = erlang.spawn(caller)
    ref = erlang.monitor("process", pid)
    assert erlang.receive(down_of(ref), 200) is erlang.TIMEOUT  # it waits
    t0 = time.monotonic()
    erlang.exit(pid, "kill")
    assert recv(down_of(ref), 1000)[4] == "killed"
    assert time.monotonic() - t0 < 0.5
    assert rpc.call(node, start_worker, ["quick"])[0] == "ok"  # the link still serves
    assert gen_server.call(("quick", node), "ping", 2000) == "pong"


def test_concurrent_remote_callers_all_get_their_replies(dist_node: Node, peers: Any) -> None:
    """Twenty processes call one remote server at once: one polls the link, the others ride
    along and are woken by whoever reads their replies; every reply reaches its caller."""
    _, node = peers()
    assert rpc.call(node, start_worker, ["echo"])[0] == "ok"
    assert rpc.call(node, start_worker, ["relay"])[0] == "ok"
    me = erlang.self()

    def caller(k: int) -> None:
        got = [gen_server.call(("relay", node), ("call", ("echo", node), "ping"))
               if i % 10 == 0 else gen_server.call(("echo", node), "ping") for i in range(50)]
        erlang.send(me, ("done", k, got.count("pong") + got.count(("called", "pong"))))

    for k in range(20):
        erlang.spawn(caller, k)
    results = sorted(recv(lambda m: type(m) is tuple and m[0] == "done", 30_000)[1:]
                     for _ in range(20))
    assert results == [(k, 50) for k in range(20)]
