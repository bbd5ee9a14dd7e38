"""Request-id collections and check_response, as OTP's gen_server/gen_statem offer them.

Rules of this module:
- A request (`_gen.RequestId`) is answered by (ref, reply) through its alias, or by the DOWN
  of its monitor. Whoever takes the answer closes the request: the alias is withdrawn and
  the monitor removed with its DOWN flushed, so nothing of it is left in the mailbox.
- A collection is an immutable mapping of requests to labels: every operation that changes
  it returns a new one (OTP's reqid_collection()).
- receive_response abandons (closes) every request of the collection when it times out;
  wait_response leaves them active. Timeouts are ms, "infinity" or ("abs", monotonic ms).
"""

from __future__ import annotations

import time
from typing import Any

from . import _context
from ._gen import RequestId
from ._process import Process
from ._terms import TIMEOUT, Error, Exit, Ref


class ReqIdCollection:
    """Requests with labels, in the order they were added. Opaque to users."""

    __slots__ = ("_items",)

    def __init__(self, items: tuple[tuple[RequestId, Any], ...] = ()) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReqIdCollection) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"ReqIdCollection({list(self._items)!r})"

    def add(self, req: RequestId, label: Any) -> ReqIdCollection:
        if type(req) is not RequestId or any(r is req for r, _ in self._items):
            raise Error("badarg")
        return ReqIdCollection((*self._items, (req, label)))

    def without(self, req: RequestId) -> ReqIdCollection:
        return ReqIdCollection(tuple(item for item in self._items if item[0] is not req))

    def find(self, ref: Any) -> tuple[RequestId, Any] | None:
        for req, label in self._items:
            if req.ref == ref:
                return req, label
        return None

    def to_list(self) -> list[tuple[RequestId, Any]]:
        return list(self._items)


def _answer(msg: Any, req: RequestId) -> Any:
    """The response `msg` is to `req`, or None."""
    if type(msg) is not tuple:
        return None
    if len(msg) == 2 and msg[0] == req.ref:
        return ("reply", msg[1])
    if len(msg) == 5 and msg[0] == "DOWN" and msg[1] == req.ref:
        return ("error", (msg[4], req.server_ref))
    return None


def _close(me: Process, req: RequestId) -> None:
    """The request is answered or abandoned: withdraw its alias, drop its monitor and DOWN,
    and any reply that raced in."""
    with me.lock:
        me.aliases.discard(req.ref)
    me.node.demonitor(me, req.ref)
    me.flush_down(req.ref)
    me.take_nowait(lambda m: type(m) is tuple and len(m) == 2 and m[0] == req.ref)


def check_response(msg: Any, req: Any, delete: bool = False) -> Any:
    """check_response(msg, req_id) -> ("reply", r) | ("error", (reason, ref)) | "no_reply";
    with a collection: (response, label, new_collection) | "no_request" | "no_reply"."""
    me = _context.self_process()
    if type(req) is RequestId:
        response = _answer(msg, req)
        if response is None:
            return "no_reply"
        _close(me, req)
        return response
    if not isinstance(req, ReqIdCollection):
        raise Error("badarg")
    if not len(req):
        return "no_request"
    for item, label in req.to_list():
        response = _answer(msg, item)
        if response is not None:
            _close(me, item)
            return (response, label, req.without(item) if delete else req)
    return "no_reply"


def _deadline(timeout: Any) -> float | None:
    if timeout == "infinity":
        return None
    if type(timeout) is tuple and len(timeout) == 2 and timeout[0] == "abs" \
            and type(timeout[1]) is int:
        return time.monotonic() + (timeout[1] - time.monotonic_ns() // 1_000_000) / 1000.0
    if type(timeout) is int and timeout >= 0:
        return time.monotonic() + timeout / 1000.0
    raise Exit(("badarg", ("timeout", timeout)))


def collection_response(coll: Any, timeout: Any, delete: bool, abandon: bool) -> Any:
    """receive_response / wait_response over a collection: (response, label, coll) |
    "no_request" | "timeout"."""
    if not isinstance(coll, ReqIdCollection):
        raise Error("badarg")
    me = _context.self_process()
    deadline = _deadline(timeout)
    if not len(coll):
        return "no_request"
    refs = {req.ref for req, _ in coll.to_list()}

    def answers(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        if len(m) == 2:
            return type(m[0]) is Ref and m[0] in refs
        return len(m) == 5 and m[0] == "DOWN" and type(m[1]) is Ref and m[1] in refs

    left = "infinity" if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
    msg = me.receive(answers, left)
    if msg is TIMEOUT:
        if abandon:
            for req, _ in coll.to_list():
                _close(me, req)
        return "timeout"
    found = coll.find(msg[1] if msg[0] == "DOWN" else msg[0])
    assert found is not None
    req, label = found
    response = _answer(msg, req)
    _close(me, req)
    return (response, label, coll.without(req) if delete else coll)
