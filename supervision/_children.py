"""Starting and stopping one child, from inside the supervisor process.

Rules of this module:
- A start calls the child's start function in the supervisor, so `start_link` links the
  child to the supervisor. The result must be ("ok", pid), ("ok", pid, info), "ignore" or
  ("error", reason); anything else, or an exception, is a start error.
- A shutdown is OTP's: monitor, unlink, exit(pid, "shutdown"), wait up to the child's
  shutdown time, then exit(pid, "kill"). "brutal_kill" kills at once. It never hangs:
  a kill takes effect at once even if the child's thread is stuck.
- simple_one_for_one children are shut down all at once under one shutdown timer
  (`shutdown_many`), as OTP's supervisor does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from actors import erlang
from actors.erlang import Pid, ProcessKilled, Ref, exit_reason, is_quiet

from .childspec import Child

log = logging.getLogger("supervision.supervisor")


def start_child(child: Child, extra_args: list[Any] | None = None) -> Any:
    """Call the child's start function: ("ok", pid[, info]), ("ok", "undefined") or error."""
    fn, args = child.start
    try:
        result = fn(*(args + (extra_args or [])))
    except ProcessKilled:
        raise
    except BaseException as exc:
        return ("error", exit_reason(exc))
    if type(result) is tuple and len(result) in (2, 3) and result[0] == "ok" \
            and type(result[1]) is Pid:
        return result
    if result == "ignore":
        return ("ok", "undefined")
    if type(result) is tuple and len(result) == 2 and result[0] == "error":
        return result
    return ("error", result)


def shutdown(pid: Pid, how: Any) -> Any:
    """Stop one child and return the reason it died with ("shutdown" or "killed" expected)."""
    mref = erlang.monitor("process", pid)
    erlang.unlink(pid)
    already = erlang.receive(
        lambda m: type(m) is tuple and len(m) == 3 and m[0] == "EXIT" and m[1] == pid, 0)
    if already is not erlang.TIMEOUT:
        down = _wait_down(mref, "infinity")
        return already[2] if down is erlang.TIMEOUT else down[4]
    if how == "brutal_kill":
        erlang.exit(pid, "kill")
        return _wait_down(mref, "infinity")[4]
    erlang.exit(pid, "shutdown")
    down = _wait_down(mref, how)
    if down is erlang.TIMEOUT:
        erlang.exit(pid, "kill")
        down = _wait_down(mref, "infinity")
    return down[4]


def _wait_down(mref: Any, timeout: Any) -> Any:
    return erlang.receive(
        lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == mref, timeout)


def stop_child(child: Child, sup_name: Any) -> None:
    """Shut a running child down and report a reason other than the expected one. The
    caller marks the child stopped."""
    if type(child.pid) is not Pid:
        return
    reason = shutdown(child.pid, child.shutdown)
    if _unexpected(child, reason):
        report(sup_name, "shutdown_error", reason, child)


def _unexpected(child: Child, reason: Any) -> bool:
    expected = "killed" if child.shutdown == "brutal_kill" else "shutdown"
    return reason != expected and not (reason == "normal" and child.restart != "permanent") \
        and not (type(reason) is tuple and reason and reason[0] == "shutdown")


def shutdown_many(pids: list[Pid], template: Child, sup_name: Any) -> None:
    """Stop many simple_one_for_one children at once: monitor and unlink each, send every
    one "shutdown" (or "kill"), wait for all under one timer, then kill the rest."""
    pending: dict[Ref, Pid] = {}
    early: dict[Pid, Any] = {}
    for pid in pids:
        pending[erlang.monitor("process", pid)] = pid
        erlang.unlink(pid)
    wanted = set(pids)
    while True:  # EXITs already here: those children ended on their own
        msg = erlang.receive(lambda m: type(m) is tuple and len(m) == 3 and m[0] == "EXIT"
                             and m[1] in wanted, 0)
        if msg is erlang.TIMEOUT:
            break
        early[msg[1]] = msg[2]
    how = template.shutdown
    for pid in pids:
        if pid not in early:
            erlang.exit(pid, "kill" if how == "brutal_kill" else "shutdown")
    deadline = None if how in ("infinity", "brutal_kill") else time.monotonic() + how / 1000
    is_down = (lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN"  # noqa: E731
               and m[1] in pending)
    while pending:
        left: Any = "infinity" if deadline is None else \
            max(0, int((deadline - time.monotonic()) * 1000))
        down = erlang.receive(is_down, left)
        if down is erlang.TIMEOUT:
            for pid in pending.values():
                erlang.exit(pid, "kill")
            deadline = None
            continue
        pid = pending.pop(down[1])
        reason = early.get(pid, down[4])
        if _unexpected(template, reason):
            report(sup_name, "shutdown_error", reason, template)


def report(sup_name: Any, context: str, reason: Any, child: Child) -> None:
    """A SASL-style supervisor report on the stdlib logger."""
    log.error("supervisor_report supervisor=%r errorContext=%s reason=%r offender=%r",
              sup_name, context, reason,
              {"pid": child.pid, "id": child.id, "start": child.start_term,
               "restart_type": child.restart, "shutdown": child.shutdown,
               "child_type": child.type})


def progress(sup_name: Any, child: Child) -> None:
    """A progress report (info level), built only when someone listens."""
    if not log.isEnabledFor(logging.INFO):
        return
    log.info("progress_report supervisor=%r started=%r", sup_name,
             {"pid": child.pid, "id": child.id, "child_type": child.type})


def should_restart(child: Child, reason: Any) -> bool:
    if child.restart == "permanent":
        return True
    if child.restart == "transient":
        return not is_quiet(reason)
    return False


def exit_reason_reported(child: Child, reason: Any) -> bool:
    """OTP reports child_terminated for permanent children always, else unless quiet."""
    return child.restart == "permanent" or not is_quiet(reason)


__all__ = ["exit_reason_reported", "progress", "report", "should_restart",
           "shutdown", "shutdown_many", "start_child", "stop_child"]
