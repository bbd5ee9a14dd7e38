"""The workloads' clients: each is a process on the controller node that runs operations
one at a time until its deadline and records them in the shared `History`.

How results are recorded (Jepsen's rule: claim only what is known):
    ok    the system answered that the operation happened (a read: with its value)
    fail  the system answered that it did not happen (a CAS whose old value did not match;
          a request refused before it reached the log); failed reads are dropped
    info  anything else: a timeout, a lost connection. It may have happened, or may yet.
A client whose operation ends in `info` takes a new process id (its old one stays open
forever), as in Jepsen.

register  reads (`ra.consistent_query`), writes and CAS (`ra.process_command`) of small
          integers on a few keys at a time; a key retires after `PER_KEY` operations, so
          that each key's history stays small enough to check
audit     `execute_tool` with a fresh request id (an append of that id to the audit log),
          and consistent reads of the whole audit log (the request ids, oldest first)
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors import erlang, gen_server, ra
from actors.consensus import client

from . import kv
from .history import History

PER_KEY = 150  # operations per register key before it retires
ACTIVE_KEYS = 4
VALUES = 5  # register values are 0..VALUES-1
OP_TIMEOUT_MS = 1500
AUDIT_READ_SHARE = 0.05
DEFINITE_REFUSALS = ("no_leader", "not_leader", "no_quorum")  # the service ran nothing


class Keys:
    """The register keys in use: ACTIVE_KEYS at a time, each retired after PER_KEY ops.
    Shared by the clients (a lock guards it)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lock = threading.Lock()
        self._active = list(range(ACTIVE_KEYS))
        self._used = {k: 0 for k in self._active}
        self._next = ACTIVE_KEYS

    def pick(self) -> int:
        with self._lock:
            key = self._rng.choice(self._active)
            self._used[key] += 1
            if self._used[key] >= PER_KEY:
                self._active[self._active.index(key)] = self._next
                self._used[self._next] = 0
                self._next += 1
            return key

    def touched(self) -> list[int]:
        with self._lock:
            return sorted(self._used)


@dataclass
class Clients:
    """What every client of one run shares."""

    history: History
    members: Any  # () -> {node: member id}, current (membership changes under load)
    nodes: list[str]
    count: int
    deadline: float  # monotonic s
    seed: int
    keys: Keys | None = None

    def targets(self, index: int) -> list[Any]:
        """The members client `index` asks, its own node's first (ra tries them in turn)."""
        ids = self.members()
        own = self.nodes[index % len(self.nodes)]
        first = [ids[own]] if own in ids else []
        return first + [sid for node, sid in sorted(ids.items()) if node != own]


Outcome = tuple[str, Any]  # how one operation ended: ("ok" | "fail" | "info", output)


def register_loop(index: int, history: History, keys: Keys, deadline: float, seed: int,
                  count: int, read: Callable[[Any], Outcome],
                  change: Callable[[tuple[Any, ...]], Outcome]) -> None:
    """One register client's operations until `deadline` (monotonic s): reads 40 %, writes
    30 %, CAS 30 %, of small integers on `keys`. `read(key)` and `change(command)` (command:
    ("write", key, value) or ("cas", key, old, new)) run one and say how it ended; a CAS
    that did not match ends ("fail", ("fail", current)). After an unknown outcome the client
    takes a new process id; after any failure but a CAS mismatch it backs off a little."""
    rng = random.Random(seed * 1000 + index)
    process = index
    while time.monotonic() < deadline:
        key = keys.pick()
        roll = rng.random()
        if roll < 0.4:
            op = history.invoke(process, "read", key, None)
            result, output = read(key)
        else:
            if roll < 0.7:
                f, value = "write", rng.randrange(VALUES)
                command: tuple[Any, ...] = ("write", key, value)
            else:
                f, value = "cas", (rng.randrange(VALUES), rng.randrange(VALUES))
                command = ("cas", key, *value)
            op = history.invoke(process, f, key, value)
            result, output = change(command)
        history.complete(op, result, output)
        if result == "info":
            process += count
        if result == "info" or (result == "fail" and not is_mismatch(output)):
            _back_off(rng)


def is_mismatch(output: Any) -> bool:
    """The output of a CAS whose expected value did not match: ("fail", current)."""
    return type(output) is tuple and len(output) == 2 and output[0] == "fail"


def register_client(index: int, c: Clients) -> None:
    """The register workload on ra: reads by `consistent_query`, changes by
    `process_command`, through the client's own node's member first."""
    assert c.keys is not None
    register_loop(index, c.history, c.keys, c.deadline, c.seed, c.count,
                  lambda key: _ra_read(c.targets(index), key),
                  lambda command: _ra_change(c.targets(index), command))


def _ra_read(targets: list[Any], key: Any) -> Outcome:
    answer = _safe(ra.consistent_query, targets, kv.reader(key), OP_TIMEOUT_MS)
    return ("ok", answer[1]) if answer[0] == "ok" else ("fail", _reason(answer))


def _ra_change(targets: list[Any], command: tuple[Any, ...]) -> Outcome:
    answer = _safe(ra.process_command, targets, command, OP_TIMEOUT_MS)
    if answer[0] == "ok" and answer[1] == "ok":
        return ("ok", None)
    if answer[0] == "ok" and is_mismatch(answer[1]):
        return ("fail", answer[1])
    return ("info", _reason(answer))


def audit_client(index: int, c: Clients) -> None:
    rng = random.Random(c.seed * 1000 + index)
    process = index
    server = (client.SERVER_NAME, c.nodes[index % len(c.nodes)])  # the client's node
    n = 0
    while time.monotonic() < c.deadline:
        n += 1
        if rng.random() < AUDIT_READ_SHARE:
            op = c.history.invoke(process, "read", "audit", None)
            answer = _call(server, ("audit", {"consistent": True}))
            if answer[0] == "ok":
                c.history.complete(op, "ok", [e.get("request_id") for e in reversed(answer[1])])
            else:
                c.history.complete(op, "fail", _reason(answer))
                _back_off(rng)
            continue
        if server[1] not in erlang.nodes():  # down: a call could not reach it
            _back_off(rng)
            continue
        request_id = f"c{index}-{n}"
        op = c.history.invoke(process, "append", "audit", request_id)
        answer = _call(server, ("execute_tool", "add", {"a": index, "b": n}, request_id))
        if answer[0] == "ok":
            c.history.complete(op, "ok", answer[1])
        elif answer[0] == "error" and answer[1] in (*DEFINITE_REFUSALS, "noproc"):
            c.history.complete(op, "fail", answer[1])  # (noproc: no server got it)
            _back_off(rng)
        else:
            c.history.complete(op, "info", _reason(answer))
            process += c.count
            _back_off(rng)


def run_clients(target: Any, c: Clients) -> None:
    """Run `count` clients as processes of this node; return once all have stopped."""
    me = erlang.self()
    for index in range(c.count):
        erlang.spawn(_client_main, target, index, c, me)
    for _ in range(c.count):
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "client_done",
                             int((c.deadline - time.monotonic() + 60) * 1000))
        if msg is erlang.TIMEOUT:
            raise RuntimeError("a client did not stop within 60 s of the deadline")


def _client_main(target: Any, index: int, c: Clients, parent: Any) -> None:
    try:
        target(index, c)
    finally:
        erlang.send(parent, ("client_done", index))


def _back_off(rng: random.Random) -> None:
    """After a failure, a short random pause before the next operation (a client of a dead
    node would otherwise spin, filling the history with instant failures)."""
    erlang.receive(lambda _m: False, rng.randint(20, 60))


def _safe(fun: Any, *args: Any) -> Any:
    """fun(*args), with an exception turned into an unknown outcome."""
    try:
        return fun(*args)
    except Exception as exc:  # the client cannot know what happened
        return ("error", ("raised", repr(exc)))


def _call(server: Any, request: Any) -> Any:
    try:
        return gen_server.call(server, request, OP_TIMEOUT_MS)
    except erlang.Exit as exc:
        return ("error", client.call_failure(exc.reason))


def _reason(answer: Any) -> Any:
    """Why an operation did not succeed, as text (the history stays plain JSON)."""
    return repr(answer[1] if type(answer) is tuple and len(answer) > 1 else answer)
