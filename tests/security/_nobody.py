"""Run a piece of a test as another local user (`nobody`), in a forked child.

The attacks of the security suite come from a user who is not the one running the
cluster. We are root in CI, so a forked child drops to uid/gid `nobody` and runs `fn`;
the result comes back pickled over a socketpair. Whatever `fn` puts in `keep` (sockets)
stays open until the `with` block ends, so a test can check the system while the
attacker still holds its connections. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import encodings.idna  # noqa: F401 - the child cannot import it once it is nobody
import os
import pickle
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

NOBODY = 65534
WAIT_S = 20.0


def need_root() -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root, to run the attacker as another user")


@contextlib.contextmanager
def as_nobody(fn: Callable[[list[Any]], Any], timeout: float = WAIT_S) -> Iterator[Any]:
    """Yield what `fn(keep)` returns when run as uid `nobody`; the child (and whatever it
    kept open) lives until the block ends. A failure in the child fails the test."""
    need_root()
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        keep: list[Any] = []
        try:
            parent.close()
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result: tuple[str, Any] = ("ok", fn(keep))
        except BaseException as exc:  # reported to the parent
            result = ("error", repr(exc))
        try:
            child.sendall(pickle.dumps(result))
            child.shutdown(socket.SHUT_WR)
            child.settimeout(WAIT_S * 3)
            child.recv(1)  # until the parent closes its end
        finally:
            os._exit(0)
    child.close()
    try:
        parent.settimeout(timeout)
        data = b""
        while chunk := parent.recv(65536):
            data += chunk
        status, value = pickle.loads(data)
        assert status == "ok", f"the attacker's code failed: {value}"
        yield value
    finally:
        parent.close()
        _reap(pid)


def _reap(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
