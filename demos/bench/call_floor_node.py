"""The server of the call floor (`demos.bench.call_floor`): one thread, no runtime.

`python -m demos.bench.call_floor_node` binds a ROUTER on a free loopback port, prints it,
and serves until it reads a `stop` control, or until its standard input closes (its
parent is gone). It blocks in `recv` on the ROUTER (the cheapest wait there is), and for
each frame:
- opens it with the project's `transport.codec.Opener` (size, structure, keyed BLAKE2b tag,
  then the sequence number) before anything is unpickled, then unpickles the control;
- `("echo", ref, request)`: answers `("reply", ref, request)`, nothing else;
- `("call", caller, ref, request)`: does a call's bookkeeping as flat as it goes: the
  caller's monitor recorded, the request put in the server's mailbox under its lock and
  taken out, a gen_server-style dispatch (a callback that returns `("reply", r, s)`), the
  monitor dropped as the reply goes;
- answers on the same connection, pickled and sealed by `transport.codec.Sealer`.
Both directions share the frame key that a handshake would have derived.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections import deque
from typing import Any

import zmq

from transport.codec import Kind, Opener, Sealer

KEY = bytes(range(32))  # the session key both ends would share after a handshake


class Echo:
    """The gen_server callback the floor dispatches to."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> tuple[str, Any, Any]:
        return ("reply", request, state)


def serve(router: zmq.Socket) -> None:
    """Answer frames until a `stop` control."""
    opener, sealer = Opener(KEY), Sealer(KEY)
    mailbox: deque[Any] = deque()
    lock = threading.Lock()
    monitors: dict[Any, Any] = {}
    callback, state = Echo(), None
    while True:
        identity, frame = router.recv_multipart()
        control = pickle.loads(opener.open(frame).payload)
        match control:
            case ("echo", ref, request):
                answer = ("reply", ref, request)
            case ("call", caller, ref, request):
                monitors[ref] = caller
                with lock:
                    mailbox.append(("$gen_call", (caller, ref), request))
                with lock:
                    _, from_, request = mailbox.popleft()
                match callback.handle_call(request, from_, state):
                    case ("reply", reply, state):
                        pass
                    case other:
                        raise ValueError(f"bad callback return {other!r}")
                del monitors[ref]
                answer = ("reply", ref, reply)
            case _:
                return
        router.send_multipart([identity, sealer.seal(Kind.DATA, pickle.dumps(answer, 5))])


def _exit_when_orphaned() -> None:
    sys.stdin.read()  # returns at end of file: the parent closed the pipe, or died
    os._exit(0)


def main() -> None:
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    print(router.bind_to_random_port("tcp://127.0.0.1"), flush=True)
    try:
        serve(router)
    finally:
        ctx.destroy(0)


if __name__ == "__main__":
    main()
