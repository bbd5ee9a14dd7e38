"""ToolRunners: tools run in their own supervised processes, so a tool cannot take the
consensus server down with it.

Why a pool of permanent runners and not a runner per call: a per-call runner would have
to be a temporary child (restarting it would either run its call again, breaking
exactly-once, or come back with nothing to do), and temporary children are never
restarted, so there would be no restart to count and no intensity to exceed. A small
pool of permanent runners under a one_for_one supervisor has OTP's semantics exactly: a
tool that raises crashes its runner and the supervisor restarts it; a tool that hangs
past its timeout has its runner killed (a restart too); more than `intensity` restarts in
`period` seconds make the supervisor give up and exit "shutdown", which its parent sees.
The POC leader runs one tool at a time (inside its handle_call, with `run`), so its pool
has one runner by default. Raft mode's server starts runs with `start` and never waits for
them (their ends come as messages, which `outcome` reads), so its pool has several.

Contract of `RunnerPool.run(tool, args, request_id, ctx)` (called in the leader's process):
- ("ok", result): the tool ran; `result` is `Tools.run`'s (possibly its unknown_tool error);
- ("error", ("tool_crashed", reason)): the tool raised; `reason` is the runner's exit
  reason, with a Python exception made a plain term: ("ExcType: message", stacktrace);
- ("error", "timeout"): the tool ran past its timeout; its runner was killed at once;
- ("error", "cancelled"): the caller cancelled the run (`cancel_run`): the runner got an
  exit signal "cancelled", died, and its supervisor restarted it, as after a timeout;
- ("error", "no_runner"): no live runner could be found within RUNNER_WAIT_MS (the runner
  supervisor is gone or keeps failing to restart its children).

`ctx` (optional) is a run context {"token": term, "listener": pid (optional)}: the runner
keeps it in its process dictionary while the tool runs, so `cancel_run(token)` (on the
runner's node) finds the run, and the tool's `tools.report_progress` reaches the listener.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from actors import Exit, Pid, erlang, gen_server, timer
from supervision import supervisor

from .tools import RUN_CONTEXT, Tools

__all__ = ["SUP_NAME", "Run", "RunnerPool", "RunnerSup", "ToolRunner", "cancel_run",
           "crash_reason", "start_link"]

SUP_NAME = "erlmcp_tool_runner_sup"
RUNNER_WAIT_MS = 2000  # how long run() looks for a live runner (a restart takes ~1 ms)
RUN_TRIES = 2  # runners a run may be tried on: one that died before it got the run never ran it


class ToolRunner(gen_server.GenServer):
    """One runner. State: the Tools registry. Calls: ("run", tool, args, request_id)."""

    def init(self, tools: Tools) -> Any:
        return ("ok", tools)

    def handle_call(self, request: Any, from_: Any, tools: Tools) -> Any:
        match request:
            case ("run", name, args, request_id):
                return ("reply", ("ok", tools.run(name, args, request_id)), tools)
            case ("run", name, args, request_id, dict(ctx)):
                return ("reply", ("ok", _run_with(ctx, tools, name, args, request_id)), tools)
        return ("reply", ("error", "unknown_request"), tools)


def _run_with(ctx: dict[str, Any], tools: Tools, name: Any, args: Any,
              request_id: Any) -> Any:
    """Run the tool with its run context in the process dictionary (see the module doc)."""
    erlang.put(RUN_CONTEXT, ctx)
    try:
        return tools.run(name, args, request_id)
    finally:
        erlang.put(RUN_CONTEXT, "undefined")


class RunnerSup(supervisor.Supervisor):
    """one_for_one over runner_1 .. runner_N. Args: (tools, size, intensity, period)."""

    def init(self, args: Any) -> Any:
        tools, size, intensity, period = args
        flags = {"strategy": "one_for_one", "intensity": intensity, "period": period}
        children = [
            {"id": f"runner_{i}", "start": (gen_server.start_link, [ToolRunner, tools]),
             "shutdown": "brutal_kill"}  # a runner has nothing to clean up
            for i in range(1, size + 1)
        ]
        return ("ok", (flags, children))


def start_link(tools: Tools, size: int = 1, intensity: int = 3, period: int = 5,
               name: str = SUP_NAME) -> Any:
    """The runner supervisor, registered locally as `name`."""
    return supervisor.start_link(("local", name), RunnerSup, (tools, size, intensity, period))


def cancel_run(token: Any, sup: Any = SUP_NAME) -> bool:
    """(on the runners' node) Kill the runner running the run `token` with the exit reason
    "cancelled"; its supervisor restarts it. True if a runner was running it."""
    try:
        children = supervisor.which_children(sup)
    except Exit:
        return False
    for _id, pid, _type, _mods in children:
        if type(pid) is not Pid:
            continue
        info = erlang.process_info(pid, "dictionary")
        ctx = dict(info[1]).get(RUN_CONTEXT) if type(info) is tuple else None
        if isinstance(ctx, dict) and ctx.get("token") == token:
            erlang.exit(pid, "cancelled")
            return True
    return False


def _request(tool: Any, args: Any, request_id: Any, ctx: dict[str, Any] | None) -> Any:
    return ("run", tool, args, request_id) if ctx is None else ("run", tool, args, request_id, ctx)


def _failure(reason: Any) -> Any:
    """The outcome of a run whose runner died with `reason`; None if it died before it got
    the run ("noproc": it never ran the tool, which may run on another runner)."""
    if reason == "noproc":
        return None
    if reason == "cancelled":
        return ("error", "cancelled")
    return ("error", ("tool_crashed", crash_reason(reason)))


@dataclass
class Run:
    """A run of `RunnerPool.start` in flight: its request, its runner, its timeout's timer
    (None: no timeout)."""

    req: Any
    runner: Pid
    timer: Any


def crash_reason(reason: Any) -> Any:
    """A runner's exit reason as a plain term that pickles and prints anywhere."""
    if type(reason) is tuple and len(reason) == 2 and isinstance(reason[0], BaseException):
        exc, stack = reason
        return (f"{type(exc).__name__}: {exc}", stack)
    return reason


class RunnerPool:
    """The caller's handle on the runner supervisor's pool: no process of its own, it lives
    in its owner's state, on the supervisor's node. It remembers the runners it found and
    asks the supervisor again only when one of them has died."""

    def __init__(self, tools: Tools, sup: Any = SUP_NAME) -> None:
        self.tools = tools
        self.sup = sup
        self._runners: list[Pid] = []
        self._next = 0
        self._busy: set[Pid] = set()  # runners with a run of `start` on them

    def run(self, tool: Any, args: Any, request_id: Any = None,
            ctx: dict[str, Any] | None = None) -> tuple[str, Any]:
        timeout = self.tools.timeout_of(tool)
        request = _request(tool, args, request_id, ctx)
        for _ in range(RUN_TRIES):
            runner = self._checkout()
            if runner is None:
                return ("error", "no_runner")
            try:
                return gen_server.call(runner, request, timeout)
            except Exit as exc:
                reason = exc.reason[0] if type(exc.reason) is tuple else exc.reason
                if reason == "timeout":
                    erlang.exit(runner, "kill")  # stuck in the tool: the supervisor restarts it
                    return ("error", "timeout")
                failed = _failure(reason)
                if failed is not None:
                    return failed
        return ("error", "no_runner")

    # -- runs that do not block the caller --------------------------------------------------

    def start(self, tool: Any, args: Any, request_id: Any = None,
              ctx: dict[str, Any] | None = None) -> Run | str | None:
        """Start a run on an idle runner and return it at once: the outcome comes as
        messages to the caller, each to be passed to `outcome`. "busy" if every live runner
        has a run (start it when one ends); None if no runner is alive, even after
        waiting RUNNER_WAIT_MS for a restart."""
        runner = self._checkout(idle_only=True)
        if type(runner) is not Pid:
            return runner  # "busy" or None
        timeout = self.tools.timeout_of(tool)
        req = gen_server.send_request(runner, _request(tool, args, request_id, ctx))
        tref = erlang.start_timer(timeout, erlang.self(), ("$run_timeout", req)) \
            if type(timeout) is int else None
        self._busy.add(runner)
        return Run(req, runner, tref)

    def outcome(self, run: Run, msg: Any) -> Any:
        """What the received `msg` means for `run`: "no_reply" (nothing), ("done",
        outcome) with the outcome `run()` would give, or "again": the runner was gone
        before it got the run, which never ran (start it again)."""
        if type(msg) is tuple and len(msg) == 3 and msg[0] == "timeout" \
                and msg[1] == run.timer:
            gen_server.receive_response(run.req, 0)  # abandoned: a late answer is dropped
            self._busy.discard(run.runner)
            erlang.exit(run.runner, "kill")  # stuck in the tool: the supervisor restarts it
            return ("done", ("error", "timeout"))
        answer = gen_server.check_response(msg, run.req)
        if answer == "no_reply":
            return "no_reply"
        self._busy.discard(run.runner)
        if run.timer is not None and erlang.cancel_timer(run.timer) is False:
            erlang.receive(lambda m: type(m) is tuple and len(m) == 3 and m[0] == "timeout"
                           and m[1] == run.timer, 0)  # it fired meanwhile: drop its message
        if answer[0] == "reply":
            return ("done", answer[1])
        failed = _failure(answer[1][0])
        return "again" if failed is None else ("done", failed)

    def _checkout(self, idle_only: bool = False) -> Pid | str | None:
        """A live runner, round robin; with `idle_only`, one with no run of `start` on it,
        or "busy". None if none is alive after waiting RUNNER_WAIT_MS while the supervisor
        restarts one."""
        deadline = time.monotonic() + RUNNER_WAIT_MS / 1000.0
        while True:
            alive = [p for p in self._runners if erlang.is_process_alive(p)]
            self._runners = alive if alive and len(alive) == len(self._runners) \
                else self._live_children()
            self._busy.intersection_update(self._runners)  # a dead runner's run is over
            for _ in range(len(self._runners)):
                self._next = (self._next + 1) % len(self._runners)
                runner = self._runners[self._next]
                if not idle_only or runner not in self._busy:
                    return runner
            if self._runners:
                return "busy"
            if time.monotonic() >= deadline:
                return None
            timer.sleep(1)  # the supervisor has not handled the runner's EXIT yet

    def _live_children(self) -> list[Pid]:
        try:
            children = supervisor.which_children(self.sup)
        except Exit:
            return []
        return [pid for _, pid, _, _ in children
                if type(pid) is Pid and erlang.is_process_alive(pid)]
