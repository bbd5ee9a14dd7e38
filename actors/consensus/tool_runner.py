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
The POC leader runs one tool at a time (inside its handle_call), so the default pool has
one runner; a caller that runs tools concurrently can ask for more.

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
from typing import Any

from actors import Exit, Pid, erlang, gen_server, timer
from supervision import supervisor

from .tools import RUN_CONTEXT, Tools

__all__ = ["SUP_NAME", "RunnerPool", "RunnerSup", "ToolRunner", "cancel_run", "crash_reason",
           "start_link"]

SUP_NAME = "erlmcp_tool_runner_sup"
RUNNER_WAIT_MS = 2000  # how long run() looks for a live runner (a restart takes ~1 ms)


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

    def run(self, tool: Any, args: Any, request_id: Any = None,
            ctx: dict[str, Any] | None = None) -> tuple[str, Any]:
        timeout = self.tools.timeout_of(tool)
        request = ("run", tool, args, request_id) if ctx is None \
            else ("run", tool, args, request_id, ctx)
        for _ in range(2):  # a runner that dies before our call arrives never ran the tool
            runner = self._checkout()
            if runner is None:
                return ("error", "no_runner")
            try:
                return gen_server.call(runner, request, timeout)
            except Exit as exc:
                reason = exc.reason[0] if type(exc.reason) is tuple else exc.reason
                if reason == "noproc":
                    continue
                if reason == "timeout":
                    erlang.exit(runner, "kill")  # stuck in the tool: the supervisor restarts it
                    return ("error", "timeout")
                if reason == "cancelled":
                    return ("error", "cancelled")
                return ("error", ("tool_crashed", crash_reason(reason)))
        return ("error", "no_runner")

    def _checkout(self) -> Pid | None:
        """A live runner, round robin; waits (bounded) while the supervisor restarts one."""
        deadline = time.monotonic() + RUNNER_WAIT_MS / 1000.0
        while True:
            alive = [p for p in self._runners if erlang.is_process_alive(p)]
            self._runners = alive if alive and len(alive) == len(self._runners) \
                else self._live_children()
            if self._runners:
                self._next = (self._next + 1) % len(self._runners)
                return self._runners[self._next]
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
