"""Processes borrow worker threads only while they run (the design the benchmark relies on)."""

from __future__ import annotations

import threading

from actors import Node, erlang, gen_server

from .helpers import down_of, recv


def test_idle_gen_servers_hold_no_threads(node: Node) -> None:
    pids = [gen_server.start(gen_server.GenServer, i)[1] for i in range(2000)]
    assert all(erlang.is_process_alive(p) for p in pids)
    assert node.process_count() >= 2000
    assert node.pool.thread_count < 50  # 2,000 live servers, a handful of workers
    for pid in pids[:10]:
        assert gen_server.stop(pid) == "ok"


def test_sequential_short_processes_reuse_workers(node: Node) -> None:
    before = threading.active_count()
    for _ in range(300):
        _, ref = erlang.spawn_monitor(lambda: None)
        recv(down_of(ref))
    assert node.pool.thread_count <= 5
    assert threading.active_count() - before <= 5


def test_a_blocked_function_process_holds_its_thread_until_it_ends(node: Node) -> None:
    pids = [erlang.spawn(erlang.receive) for _ in range(20)]
    for pid in pids:  # each is parked in receive on its own worker
        erlang.monitor("process", pid)
    assert node.pool.thread_count >= 20
    for pid in pids:
        erlang.send(pid, "go")
    for _ in pids:
        recv(lambda m: type(m) is tuple and m[0] == "DOWN")
    _, ref = erlang.spawn_monitor(lambda: None)  # served by one of the freed workers
    recv(down_of(ref))
    assert node.pool.thread_count <= 21
