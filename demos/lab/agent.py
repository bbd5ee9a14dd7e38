"""The agent: a controller's hand on a node that a partition cuts it from.

`Agent(node)` (controller side) starts `agent_serve` on `node` and connects to it over a
localhost socket that no cut touches; `agent(fun, *args)` then runs fun(*args) there.
Lines are `(fun, args)` pickles authenticated with an HMAC keyed by the cluster's cookie
(nothing unauthenticated is ever unpickled), and each is answered with `(outcome, value)`.
Functions travel by reference: the agent's node imports their modules.
"""

from __future__ import annotations

import hmac
import pickle
import selectors
import socket
import time
from typing import Any

import cloudpickle

from actors import Pid, _context, erlang


class Agent:
    """This node's hand on the far side of a partition: `agent(fun, *args)` runs fun(*args)
    in a process on the agent's node, over a localhost socket that no cut touches."""

    def __init__(self, node: str) -> None:
        erlang.spawn(node, agent_serve, erlang.self())
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "agent", 10000)
        if msg is erlang.TIMEOUT:
            raise RuntimeError(f"no agent on {node}")
        self.node = node
        self.sock = socket.create_connection(("127.0.0.1", msg[1]), timeout=30)
        self.file = self.sock.makefile("rwb")

    def __call__(self, fun: Any, *args: Any) -> Any:
        self.file.write(seal((fun, args)))
        self.file.flush()
        line = self.file.readline()
        if not line:
            raise RuntimeError("the agent is gone")
        outcome, result = unseal(line)
        if outcome != "ok":
            raise RuntimeError(f"agent: {result}")
        return result

    def close(self) -> None:
        for closer in (self.file.close, self.sock.close):
            try:
                closer()
            except OSError:
                pass


def seal(obj: Any) -> bytes:
    """One line: an HMAC (keyed with the cookie) and the hex pickle of `obj`."""
    body = cloudpickle.dumps(obj).hex().encode()
    return hmac.new(_key(), body, "sha256").hexdigest().encode() + b" " + body + b"\n"


def unseal(line: bytes) -> Any:
    """`seal`'s inverse; refuses (raises) before unpickling a line whose HMAC is wrong."""
    tag, _, body = line.strip().partition(b" ")
    if not hmac.compare_digest(tag, hmac.new(_key(), body, "sha256").hexdigest().encode()):
        raise ValueError("agent line with a bad HMAC: refused")
    return pickle.loads(bytes.fromhex(body.decode()))


def _key() -> bytes:
    """The cookie of the node this runs on (a node drops `ERLPY_COOKIE` from its
    environment once read, so it is taken from the node's own configuration)."""
    node = _context.current_node()
    if node.dist is None:
        raise RuntimeError("the agent needs a distributed node")
    return node.dist.config.cookie.encode()


def agent_serve(controller: Pid) -> None:
    """Obey the controller over a localhost socket until it closes the connection.

    Anyone on the host can connect to the port, so the agent does not take the first
    connection: it takes the first one whose first line carries a good HMAC (within
    `_AGENT_ACCEPT_S`), and drops the others. A bad line later on that connection gets a
    refusal as its answer; nothing ends the agent but the controller's EOF.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        erlang.send(controller, ("agent", listener.getsockname()[1]))
        conn, request, buf = _accept_controller(listener)
    with conn:
        conn.settimeout(None)
        while request is not None:
            conn.sendall(seal(_run(request)))
            line, buf = _read_line(conn, buf)
            if line is None:
                return
            try:
                request = unseal(line)
            except ValueError as exc:
                request = ("refused", str(exc))


def _run(request: Any) -> tuple[str, Any]:
    if type(request) is tuple and len(request) == 2 and request[0] == "refused":
        return ("raised", request[1])
    fun, args = request
    try:
        return ("ok", fun(*args))
    except Exception as exc:
        return ("raised", repr(exc))


_AGENT_ACCEPT_S = 15.0  # the controller connects within this
_AGENT_MAX_PENDING = 64  # unauthenticated connections held at once while waiting for it
_AGENT_MAX_LINE = 64 * 1024 * 1024


def _accept_controller(listener: socket.socket) -> tuple[socket.socket, Any, bytes]:
    """The first connection whose first line unseals: (it, that request, bytes after it).
    Every other connection is closed. TimeoutError if none comes within `_AGENT_ACCEPT_S`."""
    deadline = time.monotonic() + _AGENT_ACCEPT_S
    listener.setblocking(False)
    pending: dict[socket.socket, bytearray] = {}
    with selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        try:
            while (left := deadline - time.monotonic()) > 0:
                for key, _ in sel.select(left):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is listener:
                        _accept_one(listener, pending, sel)
                        continue
                    found = _first_line(sock, pending[sock])
                    if found is None:
                        continue
                    sel.unregister(sock)
                    del pending[sock]
                    line, rest = found
                    try:
                        request = unseal(line) if line else None
                    except ValueError:
                        request = None
                    if request is None:
                        sock.close()
                        continue
                    sock.setblocking(True)
                    return sock, request, rest
            raise TimeoutError("the agent's controller did not connect")
        finally:
            for sock in pending:
                sock.close()


def _accept_one(listener: socket.socket, pending: dict[socket.socket, bytearray],
                sel: selectors.BaseSelector) -> None:
    try:
        sock, _ = listener.accept()
    except (BlockingIOError, InterruptedError):
        return
    if len(pending) >= _AGENT_MAX_PENDING:
        sock.close()
        return
    sock.setblocking(False)
    pending[sock] = bytearray()
    sel.register(sock, selectors.EVENT_READ)


def _first_line(sock: socket.socket, buf: bytearray) -> tuple[bytes, bytes] | None:
    """(line, rest) once `sock` has sent a whole line; (b"", b"") if it failed or sent too
    much without one (it is then dropped); None while the line is incomplete."""
    try:
        data = sock.recv(1 << 16)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        data = b""
    buf += data
    end = buf.find(b"\n")
    if end >= 0:
        return bytes(buf[:end]), bytes(buf[end + 1 :])
    if not data or len(buf) > _AGENT_MAX_LINE:
        return b"", b""
    return None


def _read_line(conn: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
    """The next line from `conn` (None at EOF or past `_AGENT_MAX_LINE`) and what follows."""
    while b"\n" not in buf:
        data = conn.recv(1 << 16)
        if not data or len(buf) > _AGENT_MAX_LINE:
            return None, b""
        buf += data
    line, _, rest = buf.partition(b"\n")
    return line, rest
