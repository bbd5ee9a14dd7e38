"""Helpers the gen_server and gen_statem conformance suites share (OTP's test helpers)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from actors import Exit, erlang
from tests.helpers import WAIT_MS


class DummyVia:
    """OTP's dummy_via test module: a `via` registry kept in a dict. A name whose holder
    died may be taken again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[Any, Any] = {}

    def register_name(self, name: Any, pid: Any) -> str:
        with self._lock:
            held = self._names.get(name)
            if held is not None and _alive(held):
                return "no"
            self._names[name] = pid
            return "yes"

    def unregister_name(self, name: Any) -> str:
        with self._lock:
            self._names.pop(name, None)
        return "ok"

    def whereis_name(self, name: Any) -> Any:
        with self._lock:
            return self._names.get(name, "undefined")

    def send(self, name: Any, msg: Any) -> Any:
        pid = self.whereis_name(name)
        if pid == "undefined":
            raise Exit(("badarg", (name, msg)))
        erlang.send(pid, msg)
        return pid


def _alive(pid: Any) -> bool:
    try:
        return erlang.is_process_alive(pid)
    except Exception:
        return False


def expect_exit(fun: Any, *args: Any) -> Any:
    """OTP's ?EXPECT_FAILURE: the reason of the Exit that fun(*args) raises."""
    with pytest.raises(Exit) as info:
        fun(*args)
    return info.value.reason


def flush(timeout: int = 0) -> list[Any]:
    """Every message in the caller's mailbox, oldest first (OTP suites' flush/0)."""
    out: list[Any] = []
    for _ in range(10_000):
        msg = erlang.receive(None, timeout)
        if msg is erlang.TIMEOUT:
            return out
        out.append(msg)
    return out


def wfor(msg: Any, timeout: int = WAIT_MS) -> None:
    """OTP's wfor/1: wait for exactly `msg`, fail after `timeout` ms."""
    got = erlang.receive(lambda m: m == msg, timeout)
    assert got is not erlang.TIMEOUT, f"no {msg!r} within {timeout} ms"
