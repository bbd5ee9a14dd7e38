"""Seeded exit-signal storms: random link graphs, random kills, Erlang's rules checked.

For each seed: spawn processes, link them at random, make some trap exits, kill a few at
once from several threads, then check what Erlang guarantees:
- every monitor delivers exactly one DOWN;
- a non-trapping process dies iff an abnormal exit reaches it through its links;
- a trapping process survives and gets one ("EXIT", pid, reason) per dead linked process.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from actors import Node, erlang

from .helpers import recv


def _linked_worker(ready: Any, trap: bool) -> None:
    erlang.process_flag("trap_exit", trap)
    erlang.send(ready, ("ready", erlang.self()))
    while True:  # ends on "stop" or when killed
        msg = erlang.receive(lambda m: not (type(m) is tuple and m[0] == "EXIT"))
        if type(msg) is tuple and msg[0] == "link":
            erlang.link(msg[1])
            erlang.send(ready, ("linked", erlang.self(), msg[1]))
        elif type(msg) is tuple and msg[0] == "exits?":
            erlang.send(msg[1], ("exits", erlang.self(), _drain_exits()))
        elif msg == "stop":
            return


def _drain_exits() -> list[Any]:
    exits = []
    for _ in range(10_000):  # bounded
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "EXIT", 0)
        if msg is erlang.TIMEOUT:
            break
        exits.append(msg[1])
    return exits


def _expected_dead(n: int, edges: set[tuple[int, int]], trapping: set[int],
                   killed: set[int]) -> set[int]:
    """Killed ones die with "killed"; that spreads through links to non-trappers."""
    dead, frontier = set(killed), list(killed)
    while frontier:
        i = frontier.pop()
        for a, b in edges:
            other = b if a == i else a if b == i else None
            if other is not None and other not in dead and other not in trapping:
                dead.add(other)
                frontier.append(other)
    return dead


@pytest.mark.parametrize("seed", range(12))
def test_exit_storm(node: Node, seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(8, 30)
    me = erlang.self()
    trapping = {i for i in range(n) if rng.random() < 0.3}
    pids = [erlang.spawn(_linked_worker, me, i in trapping) for i in range(n)]
    for _ in pids:
        recv(lambda m: type(m) is tuple and m[0] == "ready")
    refs = {erlang.monitor("process", pid): i for i, pid in enumerate(pids)}
    edges = {tuple(sorted(rng.sample(range(n), 2))) for _ in range(rng.randint(n // 2, 2 * n))}
    for a, b in edges:
        erlang.send(pids[a], ("link", pids[b]))
        recv(lambda m, a=a: type(m) is tuple and m[:2] == ("linked", pids[a]))
    killed = set(rng.sample(range(n), rng.randint(1, 3)))
    killers = [threading.Thread(target=lambda i=i: _kill(node, pids[i])) for i in killed]
    for t in killers:
        t.start()
    for t in killers:
        t.join(5)
    expected = _expected_dead(n, edges, trapping, killed)
    downs: dict[int, int] = {}
    for _ in expected:
        msg = recv(lambda m: type(m) is tuple and m[0] == "DOWN", 3000)
        downs[refs[msg[1]]] = downs.get(refs[msg[1]], 0) + 1
    assert set(downs) == expected, f"seed {seed}"
    assert all(count == 1 for count in downs.values()), f"seed {seed}"
    assert erlang.receive(lambda m: type(m) is tuple and m[0] == "DOWN", 150) is erlang.TIMEOUT
    for i in trapping - expected:
        erlang.send(pids[i], ("exits?", me))
        got = recv(lambda m, i=i: type(m) is tuple and m[:2] == ("exits", pids[i]))[2]
        dead_neighbours = {pids[b if a == i else a] for a, b in edges
                           if i in (a, b) and (b if a == i else a) in expected}
        assert sorted(got) == sorted(dead_neighbours), f"seed {seed}"
    for i in set(range(n)) - expected:
        erlang.send(pids[i], "stop")


def _kill(node: Node, pid: Any) -> None:
    with node.bound():
        erlang.exit(pid, "kill")
