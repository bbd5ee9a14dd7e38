"""(on a peer) What the demo runs on its nodes. Peers import this module by reference,
so everything here is a plain module-level function, called by name with rpc or by the
agent (an out-of-band channel that reaches nodes the demo's own node is cut from).

The agent: `agent_serve(controller)` listens on a localhost socket and runs, one line at
a time, `(fun, args)` pickles authenticated with an HMAC keyed by the cluster's cookie
(nothing unauthenticated is ever unpickled), and answers each with `(outcome, value)`.
"""

from __future__ import annotations

import hmac
import pickle
import selectors
import socket
import time
from typing import Any

import cloudpickle

from actors import Pid, _context, erlang, rpc
from actors.consensus import app, audit_log, client
from supervision import supervisor

from ._demo_tools import demo_tools

SERVER = client.SERVER_NAME


def loaded() -> str:
    """Called once per node, so that this module is imported before anything is timed."""
    return erlang.node()


# -- the service --------------------------------------------------------------------------

def start_service(mode: str, nodes: list[str], data_dir: str | None) -> Any:
    """Start erlmcp here, with the demo's tools: ("ok", sup) | ("error", reason)."""
    if mode == "raft":
        return app.start("raft", demo_tools(), nodes=nodes, data_dir=data_dir)
    return app.start("poc", demo_tools())


def stop_service() -> Any:
    return app.stop()


def own_log() -> list[dict[str, Any]]:
    """This node's own audit log, oldest first, whatever its server's role. POC: the
    entries this node executed while it led; Raft: its member's applied, replicated state."""
    try:
        found = audit_log.query(audit_log.NAME)
    except erlang.Exit:
        return []  # no log here (the service is restarting)
    return list(reversed(found[1])) if found[0] == "ok" else []


def own_count() -> int:
    try:
        return int(audit_log.size(audit_log.NAME))
    except erlang.Exit:
        return -1  # no log here (the service is restarting)


def tree() -> list[tuple[str, Any, str]]:
    """erlmcp_sup, its children and tool_runner_sup's runners: (indented id, pid, type);
    [] while it cannot be read (a supervisor is restarting)."""
    try:
        rows: list[tuple[str, Any, str]] = [("erlmcp_sup", erlang.whereis("erlmcp_sup"),
                                             "supervisor")]
        # which_children lists the newest first, as OTP's: show them in start order
        for child_id, pid, kind, _ in reversed(supervisor.which_children("erlmcp_sup")):
            rows.append((f"  {child_id}", pid, kind))
            if child_id == "tool_runner_sup" and type(pid) is Pid:
                rows += [(f"    {cid}", cpid, ckind)
                         for cid, cpid, ckind, _ in reversed(supervisor.which_children(pid))]
        return rows
    except erlang.Exit:
        return []


def wait_applied(count: int, within_ms: int, controller: Pid, tag: Any) -> float | None:
    """Tell `controller` we are watching, then poll this node's log until it holds `count`
    entries: the time.monotonic() we first saw them (one clock for every process of the
    host), or None."""
    erlang.send(controller, ("watching", tag, erlang.node()))
    deadline = time.monotonic() + within_ms / 1000.0
    while time.monotonic() < deadline:
        if own_count() >= count:
            return time.monotonic()
        erlang.receive(lambda _m: False, 1)
    return None


# -- cluster views, for the agent ----------------------------------------------------------

def on(node: str, fun: Any, *args: Any) -> Any:
    """fun(*args) on `node`: here, or by rpc from here."""
    if node == erlang.node():
        return fun(*args)
    return rpc.call(node, fun, list(args), 5000)


def converged(nodes: list[str]) -> tuple[str, Any] | None:
    """(leader's node, leader) if exactly one of `nodes` leads and all the others follow it."""
    statuses = [client.get_status((SERVER, n), 2000) for n in nodes]
    if not all(type(s) is dict for s in statuses):
        return None
    leaders = [s for s in statuses if s["role"] == "leader"]
    if len(leaders) != 1 or any(s["leader_pid"] != leaders[0]["leader_pid"] for s in statuses):
        return None
    return leaders[0]["node"], leaders[0]["leader_pid"]


def converged_within(nodes: list[str], within_ms: int) -> tuple[str, Any] | None:
    """Wait (bounded) until `nodes` agree on one leader among them."""
    deadline = time.monotonic() + within_ms / 1000.0
    while True:
        found = converged(nodes)
        if (found is not None and found[0] in nodes) or time.monotonic() >= deadline:
            return found
        erlang.receive(lambda _m: False, 10)


def nodes_gone(names: list[str], within_ms: int) -> bool:
    """Wait (bounded) until none of `names` is in this node's nodes()."""
    deadline = time.monotonic() + within_ms / 1000.0
    while any(n in erlang.nodes() for n in names):
        if time.monotonic() >= deadline:
            return False
        erlang.receive(lambda _m: False, 10)
    return True


def down_reason(ref: Any, within_ms: int) -> Any:
    """The reason of the DOWN for `ref` (a monitor this process holds), or "no_down"."""
    msg = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref), within_ms)
    return "no_down" if msg is erlang.TIMEOUT else msg[4]


def timed_execute(server: Any, tool: str, args: dict[str, Any], request_id: Any,
                  timeout_ms: int) -> tuple[Any, float]:
    """One execute_tool call with the caller's own call timeout: (answer, ms taken)."""
    import actors.gen_server as gen_server

    t0 = time.monotonic()
    try:
        answer = gen_server.call(server, ("execute_tool", tool, args, request_id), timeout_ms)
    except erlang.Exit as exc:
        answer = ("exit", client.call_failure(exc.reason))
    return answer, (time.monotonic() - t0) * 1000.0


# -- the agent ---------------------------------------------------------------------------------

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
