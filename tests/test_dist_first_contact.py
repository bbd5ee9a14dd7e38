"""A first contact between two nodes: the callee lists the caller before it runs the first
request (in Erlang a connection is up, and listed, before its first message is delivered),
and a node that connects to a cluster joins its full mesh."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from actors import Node, erlang, net_kernel, rpc

from .conftest import COOKIE
from .helpers import wait_until

_ids = itertools.count(1)
ROOT = Path(__file__).resolve().parents[1]


def test_the_callee_lists_the_caller_before_serving_its_first_request() -> None:
    for _ in range(10):
        n = next(_ids)
        a = net_kernel.start_node(f"first_a{n}@127.0.0.1", cookie=COOKIE)
        b = net_kernel.start_node(f"first_b{n}@127.0.0.1", cookie=COOKIE)
        try:
            with a.bound():
                assert rpc.call(b.name, erlang.nodes) == [a.name]
        finally:
            a.stop()
            b.stop()


def test_connecting_to_one_node_connects_to_its_peers() -> None:
    n = next(_ids)
    n1 = net_kernel.start_node(f"mesh1_{n}@127.0.0.1", cookie=COOKIE)
    n2 = net_kernel.start_node(f"mesh2_{n}@127.0.0.1", cookie=COOKIE)
    shell = net_kernel.start_node(f"mesh_shell{n}@127.0.0.1", cookie=COOKIE)
    try:
        with n2.bound():
            assert net_kernel.connect_node(n1.name) is True
        with shell.bound():
            assert net_kernel.connect_node(n1.name) is True
            wait_until(lambda: n2.name in erlang.nodes())
            assert sorted(rpc.call(n2.name, erlang.nodes)) == sorted([n1.name, shell.name])
    finally:
        for node in (shell, n1, n2):
            node.stop()


def _by_hand(name: str, *extra: str) -> subprocess.Popen[str]:
    """`python -m actors.node` started as the README's "A cluster by hand" does."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors.node", "--name", name, *extra],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "ERLPY_COOKIE": COOKIE})
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[:2] == ["READY", name], line
    return proc


def test_the_readme_cluster_by_hand(dist_node: Node) -> None:
    """n1, then n2 seeded with n1 by name alone; a shell that connects to n1 is connected
    to n2 too, and n2 lists both (the README's example, word for word in effect)."""
    n = next(_ids)
    n1, n2 = f"hand1_{n}@127.0.0.1", f"hand2_{n}@127.0.0.1"
    procs = [_by_hand(n1)]
    try:
        procs.append(_by_hand(n2, "--seed", n1))
        assert net_kernel.connect_node(n1) is True
        wait_until(lambda: n2 in erlang.nodes())
        assert rpc.call(n2, erlang.nodes) == sorted([n1, dist_node.name])
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
