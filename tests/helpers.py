"""Bounded waits for tests: never sleep for a condition, wait for the event."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors import erlang

WAIT_MS = 3000


def recv(pred: Callable[[Any], bool] | None = None, timeout: int = WAIT_MS) -> Any:
    """Receive a matching message or fail the test after `timeout` ms."""
    msg = erlang.receive(pred, timeout)
    assert msg is not erlang.TIMEOUT, f"no matching message within {timeout} ms"
    return msg


def no_message(pred: Callable[[Any], bool] | None = None, timeout: int = 100) -> None:
    """Assert that no matching message arrives within `timeout` ms."""
    msg = erlang.receive(pred, timeout)
    assert msg is erlang.TIMEOUT, f"unexpected message {msg!r}"


def wait_until(cond: Callable[[], bool], timeout: float = 3.0, step: float = 0.005) -> None:
    """Poll a condition with a bound (for state with no message to wait on)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(step)


def down_of(ref: Any) -> Callable[[Any], bool]:
    return lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref


def exit_from(pid: Any) -> Callable[[Any], bool]:
    return lambda m: type(m) is tuple and len(m) == 3 and m[0] == "EXIT" and m[1] == pid
