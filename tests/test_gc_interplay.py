"""The runtime and CPython's cyclic garbage collector.

- A process that ends is freed by reference counting at once: it leaves no cycle that
  only a full collection would find (with 100,000 children under one supervisor, such
  garbage and the collections it takes grew the cost per child), and the worker thread
  that ran it keeps no reference to it while idle.
- A collection stops every thread; a server run on its caller's thread that the collector
  stopped for long is not judged slow for it (a slow run sends the server's next runs to
  worker threads for a while, see `actors._gen`).
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from actors import Node, erlang, gen_server, gen_statem
from actors._process import SLOW_MS

from .helpers import wait_until

PAUSE_S = 2 * SLOW_MS / 1000


class Server(gen_server.GenServer):
    """"thread" answers the thread running the handler; ("spin", s) keeps it busy in plain
    Python for s seconds; ("collect", s) runs full collections for s seconds."""

    def init(self, args: Any) -> Any:
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case "thread":
                return ("reply", threading.get_ident(), state)
            case ("spin", seconds):
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    pass
            case ("collect", seconds):
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    gc.collect()
        return ("reply", "done", state)


class Machine(gen_statem.GenStatem):
    def callback_mode(self) -> Any:
        return "handle_event_function"

    def init(self, args: Any) -> Any:
        return ("ok", "idle", None)

    def handle_event(self, etype: Any, content: Any, state: Any, data: Any) -> Any:
        return ("keep_state_and_data", [("reply", etype[1], "ok")])


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees objects meanwhile."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _freed_when_it_ends(node: Node, pid: Any, stop: Any) -> None:
    proc = node.lookup(pid)
    assert proc is not None
    gone = weakref.ref(proc)
    del proc
    stop(pid)
    # as soon as the thread that ran it lets go: well before an idle worker retires (1 s)
    wait_until(lambda: gone() is None, timeout=0.5)


def test_an_ended_gen_server_is_freed_without_a_collection(node: Node, no_collector: None
                                                           ) -> None:
    pid = gen_server.start(Server, None)[1]
    assert gen_server.call(pid, "thread") > 0
    _freed_when_it_ends(node, pid, lambda p: gen_server.stop(p, "normal"))


def test_a_killed_gen_server_is_freed_without_a_collection(node: Node, no_collector: None
                                                          ) -> None:
    pid = gen_server.start(Server, None)[1]
    _freed_when_it_ends(node, pid, lambda p: erlang.exit(p, "kill"))


def test_a_spawned_process_is_freed_when_it_returns(node: Node, no_collector: None) -> None:
    """Its worker, idle again, keeps nothing of it (nor of its function's arguments)."""
    pid = erlang.spawn(lambda: erlang.receive(None, "infinity"))
    _freed_when_it_ends(node, pid, lambda p: erlang.send(p, "return"))


def test_an_ended_gen_statem_is_freed_without_a_collection(node: Node, no_collector: None
                                                          ) -> None:
    pid = gen_statem.start(Machine, None, [])[1]
    assert gen_statem.call(pid, "ping") == "ok"
    _freed_when_it_ends(node, pid, lambda p: gen_statem.stop(p))


def test_a_slow_run_on_the_callers_thread_sends_the_server_to_workers(node: Node) -> None:
    pid = gen_server.start(Server, None)[1]
    me = threading.get_ident()
    assert gen_server.call(pid, "thread", "infinity") == me  # lent: runs on our thread
    gen_server.call(pid, ("spin", PAUSE_S), "infinity")
    assert gen_server.call(pid, "thread", "infinity") != me  # a worker's, for a while


def test_the_collectors_pauses_do_not_make_a_run_slow(node: Node) -> None:
    pid = gen_server.start(Server, None)[1]
    me = threading.get_ident()
    gen_server.call(pid, ("collect", PAUSE_S), "infinity")
    assert gen_server.call(pid, "thread", "infinity") == me
