"""The floor under the remote call's target: a call between two OS processes that does only
what ours must do, written flat, over the cheapest ZeroMQ path, beside raw REQ/REP.

The server is `demos.bench.call_floor_node`; this side is a DEALER connected to its ROUTER,
and the calling thread blocks in `recv` for the answer. Two kinds of round trip:
- `frames`: the frames a call needs and nothing else: a control pickled and sealed with the
  project's own frame codec (header, sequence number, keyed BLAKE2b tag), opened and
  checked before it is unpickled, each way. Every frame must be authenticated before it is
  unpickled, and kept in order, so any implementation in CPython pays at least this.
- `call`: the same, plus a call's bookkeeping done as flat as it goes: a reference, an
  alias and a monitor on the caller; on the server the monitor, the mailbox and a
  gen_server dispatch (see the node's module); the reply put in the caller's mailbox under
  its lock and taken out of it by a selective receive that starts at the call's marker.

It has no node around it: no other peers, no timers, no kill, no back-pressure, no
multiplexing of processes or connections; a real node pays for those on top. So the ratio
of each to raw REQ/REP is the least that a remote call with our guarantees could show here.
"""

from __future__ import annotations

import itertools
import pickle
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from transport.codec import Kind, Opener, Sealer

from .call_floor_node import KEY

_NODE = [sys.executable, "-m", "demos.bench.call_floor_node"]


class CallFloor:
    """A floor server in its own OS process and this process's end of its connection."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(_NODE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)  # the server exits when stdin closes
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        self.ctx = zmq.Context()
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.RCVTIMEO, 10_000)
        self.dealer.connect(f"tcp://127.0.0.1:{port}")
        self.sealer, self.opener = Sealer(KEY), Opener(KEY)
        self.send_lock = threading.Lock()  # senders of a node serialise on their connection
        self.refs = itertools.count(1)
        self.aliases: set[int] = set()
        self.monitors: dict[int, str] = {}
        self.mailbox: deque[Any] = deque()
        self.lock = threading.Lock()  # the calling process's mailbox lock

    def _send(self, control: tuple[Any, ...]) -> None:
        with self.send_lock:
            self.dealer.send(self.sealer.seal(Kind.DATA, pickle.dumps(control, 5)))

    def _receive(self) -> Any:
        return pickle.loads(self.opener.open(self.dealer.recv()).payload)

    def frames(self, request: Any) -> Any:
        """One round trip of sealed, pickled controls: the answer's request."""
        self._send(("echo", 0, request))
        return self._receive()[2]

    def call(self, request: Any) -> Any:
        """One call with its bookkeeping: the server's reply."""
        ref = next(self.refs)
        self.aliases.add(ref)
        self.monitors[ref] = "server"
        marker = len(self.mailbox)
        self._send(("call", 1, ref, request))
        kind, alias, reply = self._receive()
        if kind == "reply" and alias in self.aliases:
            del self.monitors[alias]  # the server's reply ends the call's monitor
            with self.lock:
                self.mailbox.append((alias, reply))
        with self.lock:
            for index in range(marker, len(self.mailbox)):
                if self.mailbox[index][0] == ref:
                    answer = self.mailbox[index][1]
                    del self.mailbox[index]
                    self.aliases.discard(ref)
                    return answer
        raise RuntimeError("the floor's reply did not come")

    def close(self) -> None:
        """Stop the server and close this end (a second close does nothing)."""
        if self.ctx.closed:
            return
        try:
            self._send(("stop",))
            self.proc.wait(5)
        except (zmq.ZMQError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.ctx.destroy(0)


def alternating_p50s_us(n: int, ops: list[Callable[[], Any]],
                        chunk: int = 100) -> list[float]:
    """Each op n times, in chunks taken in turns, so all see the same spells of load: the
    p50 of each, in microseconds."""
    samples: list[list[int]] = [[] for _ in ops]
    for turn, start in enumerate(range(0, n, chunk)):
        for k in range(len(ops)):
            op, out = ops[(turn + k) % len(ops)], samples[(turn + k) % len(ops)]
            for _ in range(min(chunk, n - start)):
                t0 = time.perf_counter_ns()
                op()
                out.append(time.perf_counter_ns() - t0)
    return [statistics.median(s) / 1000.0 for s in samples]
