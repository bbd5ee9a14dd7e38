"""gen_server.multi_call and abcast across nodes, as OTP's."""

from __future__ import annotations

from typing import Any

from actors import Node, erlang, gen_server, rpc


class Counter(gen_server.GenServer):
    def init(self, args: Any) -> Any:
        return ("ok", 0)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "get":
            return ("reply", (erlang.node(), state), state)
        if request == "slow":
            return ("noreply", state)  # never answers
        return ("reply", "ok", state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("noreply", state + msg)


def start_counter() -> Any:
    return gen_server.start(("local", "counter"), Counter, None)


def test_multi_call_answers_per_node_and_names_the_bad_ones(dist_node: Node,
                                                            peers: Any) -> None:
    _, node = peers()
    start_counter()
    assert rpc.call(node, start_counter)[0] == "ok"
    nobody = "nobody@127.0.0.1"
    replies, bad = gen_server.multi_call([dist_node.name, node, nobody], "counter", "get", 3000)
    assert sorted(replies) == sorted([(dist_node.name, (dist_node.name, 0)), (node, (node, 0))])
    assert bad == [nobody]
    # the two-argument form asks this node and every connected one
    replies, bad = gen_server.multi_call("counter", "get")
    assert {n for n, _ in replies} == {dist_node.name, node} and bad == []


def test_multi_call_timeout_is_one_deadline(dist_node: Node, peers: Any) -> None:
    _, node = peers()
    assert rpc.call(node, start_counter)[0] == "ok"
    replies, bad = gen_server.multi_call([node], "counter", "slow", 200)
    assert replies == [] and bad == [node]
    assert erlang.receive(None, 300) is erlang.TIMEOUT  # no late reply leaks in


def test_abcast_reaches_every_node(dist_node: Node, peers: Any) -> None:
    _, node = peers()
    start_counter()
    assert rpc.call(node, start_counter)[0] == "ok"
    assert gen_server.abcast([dist_node.name, node], "counter", 5) == "abcast"
    assert gen_server.abcast("counter", 2) == "abcast"
    assert gen_server.call("counter", "get") == (dist_node.name, 7)
    assert gen_server.call(("counter", node), "get") == (node, 7)
