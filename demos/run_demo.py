"""`python -m demos.run_demo`: a supervised crash-and-restart story, step by step.

A supervisor holds an audit log and a tool runner. The story: a tool runs; a tool crashes
its runner and the supervisor restarts it; a tool hangs, the caller times out and the stuck
runner is killed at once on shutdown; crashes past the restart intensity stop the tree.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from actors import Node, erlang, gen_server
from supervision import supervisor

HANG_RELEASE = threading.Event()  # lets the hung tool's abandoned thread end at exit


class AuditLog(gen_server.GenServer):
    """Keeps every event it is told about, newest first."""

    def init(self, _args: Any) -> Any:
        return ("ok", [])

    def handle_cast(self, msg: Any, state: list[Any]) -> Any:
        match msg:
            case ("record", event):
                return ("noreply", [event, *state])
        return ("noreply", state)

    def handle_call(self, request: Any, _from: Any, state: list[Any]) -> Any:
        match request:
            case "entries":
                return ("reply", list(reversed(state)), state)
        return ("reply", ("error", "unknown_request"), state)


class ToolRunner(gen_server.GenServer):
    """Runs a tool per call. A tool that raises crashes the runner."""

    def init(self, _args: Any) -> Any:
        erlang.process_flag("trap_exit", True)  # so shutdown waits for terminate/2
        gen_server.cast("audit_log", ("record", ("runner_started", erlang.self())))
        return ("ok", 0)

    def handle_call(self, request: Any, _from: Any, count: int) -> Any:
        match request:
            case ("run", "add", {"a": a, "b": b}):
                return ("reply", ("ok", a + b), count + 1)
            case ("run", "divide", {"a": a, "b": b}):
                return ("reply", ("ok", a / b), count + 1)
            case ("run", "hang", _):
                HANG_RELEASE.wait(30)  # stuck in Python code until released
                return ("reply", ("ok", "woke up"), count)
        return ("reply", ("error", "unknown_tool"), count)


class DemoSup(supervisor.Supervisor):
    def init(self, _args: Any) -> Any:
        flags = {"strategy": "one_for_one", "intensity": 2, "period": 5}
        children = [
            {"id": "audit_log", "start": (gen_server.start_link,
                                          [("local", "audit_log"), AuditLog, None])},
            {"id": "tool_runner", "start": (gen_server.start_link,
                                            [("local", "tool_runner"), ToolRunner, None]),
             "shutdown": 100},
        ]
        return ("ok", (flags, children))


def say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


def run_tool(tool: str, args: dict[str, Any], timeout: int = 1000) -> Any:
    try:
        return gen_server.call("tool_runner", ("run", tool, args), timeout)
    except erlang.Exit as exc:
        reason = exc.reason[0]
        if type(reason) is tuple and isinstance(reason[0], BaseException):
            reason = f"{type(reason[0]).__name__}: {reason[0]}"
        return ("exit", reason)


def wait_for_new(name: str, old: Any, timeout_ms: int = 2000) -> Any:
    """Wait (bounded) until `name` is registered to a pid other than `old`."""
    deadline = erlang.monotonic_time("millisecond") + timeout_ms
    while erlang.monotonic_time("millisecond") < deadline:
        pid = erlang.whereis(name)
        if pid not in ("undefined", old):
            return pid
        erlang.receive(lambda _m: False, 5)
    raise SystemExit(f"{name} was not restarted in {timeout_ms} ms")


def story() -> None:
    erlang.process_flag("trap_exit", True)
    _, sup = supervisor.start_link(("local", "demo_sup"), DemoSup, None)
    say("1", f"supervisor demo_sup {sup} started its children in order:")
    for child_id, pid, kind, _ in supervisor.which_children("demo_sup"):
        say("1", f"    {child_id:<12} {pid}  ({kind})")

    say("2", f"add(2, 3) -> {run_tool('add', {'a': 2, 'b': 3})}")

    runner = erlang.whereis("tool_runner")
    say("3", f"divide(1, 0) -> {run_tool('divide', {'a': 1, 'b': 0})}")
    new_runner = wait_for_new("tool_runner", runner)
    say("3", f"tool_runner crashed; the supervisor restarted it: {runner} -> {new_runner}")
    say("3", f"add(40, 2) on the new runner -> {run_tool('add', {'a': 40, 'b': 2})}")

    say("4", f"hang() with a 200 ms call timeout -> {run_tool('hang', {}, 200)}")
    hung = erlang.whereis("tool_runner")
    t0 = erlang.monotonic_time("millisecond")
    supervisor.terminate_child("demo_sup", "tool_runner")
    took = erlang.monotonic_time("millisecond") - t0
    say("4", f"terminate_child on the stuck runner returned in {took} ms "
             f"(shutdown 100 ms, then kill); alive: {erlang.is_process_alive(hung)}")
    say("4", f"restart_child -> {supervisor.restart_child('demo_sup', 'tool_runner')}")

    ref = erlang.monitor("process", sup)
    is_down = lambda m: type(m) is tuple and m[:2] == ("DOWN", ref)  # noqa: E731
    down = erlang.TIMEOUT
    for attempt in range(1, 6):
        runner = erlang.whereis("tool_runner")
        say("5", f"crash #{attempt}: divide(1, 0) -> {run_tool('divide', {'a': 1, 'b': 0})}")
        down = erlang.receive(is_down, 300)
        if down is not erlang.TIMEOUT:
            break
        say("5", f"    restarted as {wait_for_new('tool_runner', runner)}")
    if down is erlang.TIMEOUT:
        raise SystemExit("the supervisor did not give up in time")
    say("5", f"more than 2 restarts within 5 s: demo_sup gave up and exited with {down[4]!r}")
    say("5", f"audit_log is gone too: whereis -> {erlang.whereis('audit_log')!r}")


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)  # the story prints what matters
    node = Node("demo@localhost")
    try:
        with node.bound():
            story()
    finally:
        HANG_RELEASE.set()
        node.stop()
    print("demo finished: every crash was contained and reported by its supervisor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
