"""Interrupting a thread that runs a killed process (CPython's async exceptions).

Python cannot pre-empt a thread. A kill therefore takes effect in the runtime at once (links,
monitors and names are settled by the killer), and the abandoned thread must stop:
- at its next runtime call (send, receive, call, ...), which raises `ProcessKilled`: a safe
  point, since the exception unwinds through the caller's own `with` blocks;
- or, if it makes none within a grace period (it is stuck in plain Python), by an async
  `ProcessKilled` at its next bytecode. The grace period keeps that rare: an async exception
  can land inside a library's critical section (say, a logging handler's lock).
`clear` withdraws an interrupt that the thread outran.
"""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING

from ._terms import ProcessKilled

if TYPE_CHECKING:
    from ._process import Process

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int

# The same C function, typed to take NULL (None) as "clear the pending exception".
_clear = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))


def interrupt(thread_id: int) -> None:
    """Ask `thread_id` to raise ProcessKilled at its next bytecode."""
    _set_async_exc(thread_id, ctypes.py_object(ProcessKilled))


def clear(thread_id: int) -> None:
    """Withdraw a pending interrupt of `thread_id`, if any."""
    _clear(thread_id, None)


def interrupt_later(proc: Process, thread_id: int, grace_ms: int) -> None:
    """After `grace_ms`, interrupt `thread_id` if it is still running the dead `proc`."""

    def check() -> None:
        with proc.lock:
            if proc.thread == thread_id and not proc.interrupted:
                proc.interrupted = True
                interrupt(thread_id)

    timer = threading.Timer(grace_ms / 1000.0, check)
    timer.daemon = True
    timer.start()
