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


# -- the send_request_*_reqid_collection cases, shared by both suites ----------------------
#
# `mod` is gen_server or gen_statem; `ping`/`pong` the suite's cheap request and its reply
# (started_p/ok, 'alive?'/yes); `broken(pid2)` ends server 2 the suite's way and returns
# (the request to send it, the reason expected in its error response).


def _by_label(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda item: item[1])


def reqid_receive(mod: Any, pids: list[Any], ping: Any, pong: Any, broken: Any,
                  wait: bool = False) -> None:
    """send_request_receive_reqid_collection (wait=False) and
    send_request_wait_reqid_collection (wait=True): the plain, timeout and error parts."""
    get = mod.wait_response if wait else mod.receive_response
    pid1, pid2, pid3 = pids
    # plain
    req0 = mod.send_request(pid1, ping)
    c0 = mod.reqids_new()
    c1 = mod.reqids_add(mod.send_request(pid1, ("delayed_answer", 400)), "req1", c0)
    assert mod.reqids_size(c1) == 1
    c2 = mod.send_request(pid2, ("delayed_answer", 1), "req2", c1)
    assert mod.reqids_size(c2) == 2
    c3 = mod.send_request(pid3, ("delayed_answer", 200), "req3", c2)
    assert mod.reqids_size(c3) == 3
    (resp, label, c4) = get(c3, "infinity", True)
    assert (resp, label, mod.reqids_size(c4)) == (("reply", "delayed"), "req2", 2)
    (resp, label, c5) = get(c4, 5678, True)
    assert (resp, label, mod.reqids_size(c5)) == (("reply", "delayed"), "req3", 1)
    (resp, label, c6) = get(c5, 5000, True)
    assert (resp, label, mod.reqids_size(c6)) == (("reply", "delayed"), "req1", 0)
    assert get(c6, 5000, True) == "no_request"
    assert mod.receive_response(req0, "infinity") == ("reply", pong)
    # timeout
    req0 = mod.send_request(pid1, ping)
    r1 = mod.send_request(pid1, ("delayed_answer", 1000))
    c1 = mod.reqids_add(r1, "req1", mod.reqids_new())
    c2 = mod.send_request(pid2, ("delayed_answer", 1), "req2", c1)
    r3 = mod.send_request(pid3, ("delayed_answer", 500))
    c3 = mod.reqids_add(r3, "req3", c2)
    deadline = erlang.monotonic_time("millisecond") + 100
    (resp, label, c4) = get(c3, ("abs", deadline), True)
    assert (resp, label, mod.reqids_size(c4)) == (("reply", "delayed"), "req2", 2)
    assert get(c4, ("abs", deadline), True) == "timeout"
    assert _by_label(mod.reqids_to_list(c4)) == [(r1, "req1"), (r3, "req3")]
    if wait:  # not abandoned: the replies still come
        assert get(c4, ("abs", deadline + 1500), False) == (("reply", "delayed"), "req3", c4)
        assert get(c4, ("abs", deadline + 1500), False) == (("reply", "delayed"), "req1", c4)
    else:  # abandoned: the replies are dropped
        assert get(c4, ("abs", deadline + 1000), True) == "timeout"
    assert mod.receive_response(req0, "infinity") == ("reply", pong)
    # error
    req0 = mod.send_request(pid1, ping)
    r1 = mod.send_request(pid1, ("delayed_answer", 400))
    c1 = mod.reqids_add(r1, "req1", mod.reqids_new())
    with pytest.raises(Exception) as info:
        mod.reqids_add(r1, "req2", c1)
    assert getattr(info.value, "reason", None) == "badarg"
    request, expected = broken(pid2)
    c2 = mod.send_request(pid2, request, "req2", c1)
    c3 = mod.send_request(pid3, ("delayed_answer", 200), "req3", c2)
    assert mod.reqids_size(c3) == 3
    (resp, label, c4) = get(c3, 2000, True)
    assert (resp[0], resp[1][0], label, mod.reqids_size(c4)) == ("error", expected, "req2", 2)
    assert get(c4, "infinity", False) == (("reply", "delayed"), "req3", c4)
    assert get(c4, "infinity", False) == (("reply", "delayed"), "req1", c4)
    assert mod.receive_response(req0, "infinity") == ("reply", pong)


def next_msg() -> Any:
    msg = erlang.receive(None, WAIT_MS)
    assert msg is not erlang.TIMEOUT
    return msg


def reqid_check(mod: Any, pids: list[Any], ping: Any, pong: Any, broken: Any) -> None:
    """send_request_check_reqid_collection: the plain and error parts."""
    pid1, pid2, pid3 = pids
    req0 = mod.send_request(pid1, ping)
    erlang.receive(lambda _m: False, 100)
    c1 = mod.send_request(pid1, ("delayed_answer", 400), "req1", mod.reqids_new())
    assert mod.reqids_size(c1) == 1
    c2 = mod.reqids_add(mod.send_request(pid2, ("delayed_answer", 1)), "req2", c1)
    c3 = mod.send_request(pid3, ("delayed_answer", 200), "req3", c2)
    assert mod.reqids_size(c3) == 3
    msg0 = next_msg()
    assert mod.check_response(msg0, c3, True) == "no_reply"
    (resp, label, c4) = mod.check_response(next_msg(), c3, True)
    assert (resp, label, mod.reqids_size(c4)) == (("reply", "delayed"), "req2", 2)
    (resp, label, c5) = mod.check_response(next_msg(), c4, True)
    assert (resp, label, mod.reqids_size(c5)) == (("reply", "delayed"), "req3", 1)
    (resp, label, c6) = mod.check_response(next_msg(), c5, True)
    assert (resp, label, mod.reqids_size(c6)) == (("reply", "delayed"), "req1", 0)
    assert mod.check_response(msg0, c6, True) == "no_request"
    assert mod.check_response(msg0, req0) == ("reply", pong)
    # error
    req0 = mod.send_request(pid1, ping)
    erlang.receive(lambda _m: False, 100)
    r1 = mod.send_request(pid1, ("delayed_answer", 400))
    c1 = mod.reqids_add(r1, "req1", mod.reqids_new())
    request, expected = broken(pid2)
    c2 = mod.send_request(pid2, request, "req2", c1)
    c3 = mod.send_request(pid3, ("delayed_answer", 200), "req3", c2)
    msg0 = next_msg()
    assert mod.check_response(msg0, c3, True) == "no_reply"
    (resp, label, c4) = mod.check_response(next_msg(), c3, True)
    assert (resp[0], resp[1][0], label, mod.reqids_size(c4)) == ("error", expected, "req2", 2)
    assert mod.check_response(next_msg(), c4, False) == (("reply", "delayed"), "req3", c4)
    assert mod.check_response(next_msg(), c4, False) == (("reply", "delayed"), "req1", c4)
    assert mod.check_response(msg0, req0) == ("reply", pong)
