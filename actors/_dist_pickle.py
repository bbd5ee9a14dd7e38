"""How the distribution pickles what it sends (and why it may refuse to).

Rules of this module: plain pickle first, because it is four times faster; cloudpickle only
for what plain pickle refuses. A failure is the sender's badarg, never a lost message.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from ._terms import Error


def dumps(control: Any) -> bytes:
    """Pickle a control tuple with plain pickle, falling back to cloudpickle for what plain
    pickle refuses (lambdas, closures). A spawn's function is pickled apart, by
    `dumps_fun`, so a peer that cannot load it still gets the spawn."""
    try:
        return pickle.dumps(control, 5)
    except Exception:
        try:
            return cloudpickle.dumps(control, 5)
        except Exception as exc:
            raise Error(("badarg", f"cannot send {type(exc).__name__}: {exc}")) from None


def dumps_fun(fun: Any, args: tuple[Any, ...]) -> bytes:
    """A spawn's function and arguments, with cloudpickle: closures and functions of the
    sender's `__main__` travel by value, functions of importable modules by reference (the
    peer must be able to import them)."""
    try:
        return cloudpickle.dumps((fun, args), 5)
    except Exception as exc:
        raise Error(("badarg", f"cannot send {type(exc).__name__}: {exc}")) from None
