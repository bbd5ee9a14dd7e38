"""`init`: stop the whole node, as OTP's `init:stop/0`.

`rpc.call(node, "init", "stop", [])` (or `init.stop()` on the node itself) answers "ok",
then ends the OS process cleanly: a node started with `python -m actors.node` stops its
processes and its distribution and exits 0. It works by sending the process SIGTERM, so an
embedding program that installed no handler simply terminates, as `erl` does.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["stop"]

_GRACE_S = 0.05  # time for the caller's answer to leave before the node goes


def stop() -> str:
    """Stop this node's OS process shortly after returning "ok"."""
    threading.Timer(_GRACE_S, os.kill, (os.getpid(), signal.SIGTERM)).start()
    return "ok"
