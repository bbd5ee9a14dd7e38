"""Interrupting a thread that runs a killed process (CPython's async exceptions).

Python cannot pre-empt a thread. A kill therefore takes effect in the runtime at once (links,
monitors and names are settled by the killer) and the abandoned thread is asked to unwind with
`ProcessKilled` at its next bytecode. `clear` withdraws a request the thread outran.
"""

from __future__ import annotations

import ctypes

from ._terms import ProcessKilled

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int

_clear_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_clear_async_exc_proto = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
_clear = _clear_async_exc_proto(("PyThreadState_SetAsyncExc", ctypes.pythonapi))


def interrupt(thread_id: int) -> None:
    """Ask `thread_id` to raise ProcessKilled at its next bytecode."""
    _set_async_exc(thread_id, ctypes.py_object(ProcessKilled))


def clear(thread_id: int) -> None:
    """Withdraw a pending interrupt of `thread_id`, if any."""
    _clear(thread_id, None)
