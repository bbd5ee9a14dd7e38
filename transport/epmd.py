"""A port mapper, as Erlang's epmd: node name -> the node's listen address, one per host.

Rules of this module:
- The daemon listens on TCP `<host>:<port>` (host 127.0.0.1 unless told otherwise, and only
  that host; port `DEFAULT_PORT`, or env `ERLPY_EPMD_PORT`, or an explicit argument). It is
  plain stdlib sockets, not ZeroMQ; the event loop is in `_epmd_server`, the grammar of
  names and addresses in `_epmd_wire`.
- The first node on a host starts it (`ensure_running`) as a detached process that outlives
  that node. When two nodes race, the loser's bind fails with EADDRINUSE and that daemon
  exits with status 0; both callers still see the winner answer.
- A name is registered for exactly as long as the TCP connection that sent `ALIVE` stays
  open (as epmd's ALIVE2): when the node dies the kernel closes its socket and the name is
  free at once. One name per connection.
- The protocol is newline-delimited UTF-8, one request line, one response line:

    request                      response
    ---------------------------  -------------------------------------------------------
    ALIVE <name> <address>       OK | ERR taken | ERR limit | ERR bad_request
    LOOKUP <name>                ADDR <address> | NONE | ERR bad_request
    NAMES                        NAMES[ <name>=<address>]...   (space separated)
    STOP [force]                 OK, then the daemon exits | ERR names_registered
                                 | ERR not_owner | ERR bad_request

  A name is 1..255 printable characters, no space, no "=", exactly one "@" with text on
  both sides. An address is 1..255 printable characters, no space, starting "tcp://" with
  text after it. Anything else is `ERR bad_request` and the connection stays open, except a
  line over `MAX_LINE` bytes: `ERR bad_request`, then the daemon closes the connection.
- Bounds: at most `MAX_CONNECTIONS` connections at once; when full, a new one evicts the
  least recently active connection that holds no name, and names never take the last
  `LOOKUP_RESERVE` slots, so lookups and new nodes always get in. One uid holds at most
  `MAX_NAMES_PER_UID` names (`ERR limit`; root is not limited). A connection that holds
  no name and sends no complete line for `IDLE_TIMEOUT_S` is closed (a byte trickle does
  not count). The daemon reads no more from a connection until its pending output is
  written. No input can crash the daemon.
- Who may do what (the peer's uid comes from the kernel, see `_peercred`): STOP only from
  a loopback client run by the daemon's own user or root (`ERR not_owner`), and only while
  no name is registered (`ERR names_registered`, as epmd refuses `-kill` while nodes
  live); `STOP force` drops the second rule. Clients talk only to a mapper run by their
  own user or root: any other is `EpmdError("untrusted")`, so another local user who
  takes the port cannot answer lookups. The auto-started daemon gets a clean environment
  (no cookie).
- A `Registration` watches its connection: if the mapper drops it while it is open, it
  logs an error and registers again, retrying with back-off (it starts no mapper: the
  next node to start does) until it succeeds or is closed.
- Client calls open one short connection per request (`Registration` keeps its one open)
  and are bounded by their `timeout_ms`. A mapper that does not answer properly is
  `EpmdError("unreachable")`; invalid names or addresses are `EpmdError("bad_request")`
  and are never sent.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import subprocess
import sys
import threading
import time

from ._epmd_error import EpmdError
from ._epmd_registration import Registration
from ._epmd_server import (
    IDLE_TIMEOUT_S,
    LINGER_S,
    LOOKUP_RESERVE,
    MAX_CONNECTIONS,
    MAX_NAMES_PER_UID,
    _raise_fd_limit,
    serve,
)
from ._epmd_wire import MAX_ADDRESS, MAX_LINE, MAX_NAME, valid_address, valid_name
from ._peercred import tcp_peer_uid

__all__ = [
    "DEFAULT_PORT",
    "IDLE_TIMEOUT_S",
    "LINGER_S",
    "LOOKUP_RESERVE",
    "MAX_ADDRESS",
    "MAX_CONNECTIONS",
    "MAX_LINE",
    "MAX_NAME",
    "MAX_NAMES_PER_UID",
    "MAX_RESPONSE",
    "PORT_ENV",
    "EpmdError",
    "Registration",
    "default_port",
    "ensure_running",
    "lookup",
    "main",
    "names",
    "register",
    "serve",
    "stop",
    "valid_address",
    "valid_name",
]

DEFAULT_PORT = 4370
PORT_ENV = "ERLPY_EPMD_PORT"
MAX_RESPONSE = 4 * 1024 * 1024  # the longest response line a client accepts (NAMES)
_PROBE_NAME = "probe@epmd"  # looked up by `ensure_running` to see that a mapper answers
_CHILD_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")  # all the daemon inherits, + PYTHONPATH

log = logging.getLogger("transport.epmd")


def default_port() -> int:
    """The port from env `ERLPY_EPMD_PORT`, else `DEFAULT_PORT`; a bad value is ValueError."""
    raw = os.environ.get(PORT_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_PORT
    port = int(raw)
    if not 0 < port < 65536:
        raise ValueError(f"{PORT_ENV}={raw!r} is not a TCP port")
    return port


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------


def register(
    name: str,
    address: str,
    port: int | None = None,
    host: str = "127.0.0.1",
    timeout_ms: int = 2000,
    *,
    watch: bool = True,
) -> Registration:
    """Register `name` -> `address` for as long as the returned Registration stays open.

    Raises EpmdError("bad_request") for an invalid name or address (nothing is sent),
    EpmdError("taken") if a live connection holds the name, EpmdError("limit") if the
    mapper holds all the names it allows (in all, or for this user), EpmdError("untrusted")
    if the mapper runs as another user, EpmdError("unreachable") if no mapper answers
    within `timeout_ms`. With `watch`, the name is registered again if the mapper drops it.
    """
    if not valid_name(name) or not valid_address(address):
        raise EpmdError("bad_request")
    sock = _alive(name, address, _port(port), host, timeout_ms)
    again = (lambda: _alive(name, address, _port(port), host, timeout_ms)) if watch else None
    return Registration(sock, name, address, again)


def _alive(name: str, address: str, port: int, host: str, timeout_ms: int) -> socket.socket:
    """Send ALIVE on a new connection; the connection once the mapper says OK."""
    deadline = _deadline(timeout_ms)
    sock = _connect(host, port, deadline)
    try:
        reply = _exchange(sock, f"ALIVE {name} {address}\n", deadline, MAX_LINE)
    except BaseException:
        sock.close()
        raise
    if reply == "OK":
        sock.settimeout(None)
        return sock
    sock.close()
    if reply.startswith("ERR ") and reply[4:] in ("taken", "bad_request", "limit"):
        raise EpmdError(reply[4:])
    raise EpmdError("unreachable")


def lookup(
    name: str, port: int | None = None, host: str = "127.0.0.1", timeout_ms: int = 1000
) -> str | None:
    """The address registered for `name` on the mapper at `host`, or None if none is.

    Raises EpmdError("bad_request") for an invalid name (nothing is sent) and
    EpmdError("unreachable") if no mapper answers within `timeout_ms`.
    """
    if not valid_name(name):
        raise EpmdError("bad_request")
    reply = _request(f"LOOKUP {name}\n", port, host, timeout_ms, MAX_LINE)
    if reply == "NONE":
        return None
    kind, _, address = reply.partition(" ")
    if kind == "ADDR" and valid_address(address):
        return address
    raise EpmdError("unreachable")


def names(
    port: int | None = None, host: str = "127.0.0.1", timeout_ms: int = 1000
) -> dict[str, str]:
    """Every registered name -> address on the mapper at `host`, in registration order.

    Raises EpmdError("unreachable") if no mapper answers within `timeout_ms`.
    """
    reply = _request("NAMES\n", port, host, timeout_ms, MAX_RESPONSE)
    if reply == "NAMES":
        return {}
    if not reply.startswith("NAMES "):
        raise EpmdError("unreachable")
    result: dict[str, str] = {}
    for item in reply[len("NAMES ") :].split(" "):
        name, eq, address = item.partition("=")
        if eq != "=" or not valid_name(name) or not valid_address(address):
            raise EpmdError("unreachable")
        result[name] = address
    return result


def ensure_running(port: int | None = None, host: str = "127.0.0.1", timeout_ms: int = 3000) -> int:
    """Make sure a mapper answers on `host:port`, starting a detached daemon if none does.

    The daemon is a new session (`python -m transport.epmd`) and outlives the caller. Safe
    to call from several threads or processes at once: a daemon that loses the race for the
    port exits quietly and every caller sees the winner. Returns the port; raises
    EpmdError("unreachable") if no mapper answers within `timeout_ms`, and
    EpmdError("untrusted") at once if the one that answers runs as another user.
    """
    port = _port(port)
    deadline = _deadline(timeout_ms)
    if _answers(host, port, min(deadline, time.monotonic() + 0.5)):
        return port
    proc = subprocess.Popen(
        [sys.executable, "-m", "transport.epmd", "--port", str(port), "--host", host],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        env=_child_env(),
    )
    # Reap the daemon whenever it exits, so it never lingers as a zombie of this process.
    threading.Thread(target=proc.wait, name=f"epmd-reaper-{proc.pid}", daemon=True).start()
    while True:
        if _answers(host, port, deadline):
            return port
        if proc.returncode not in (None, 0):  # it failed for a reason other than losing a race
            raise EpmdError("unreachable")
        if time.monotonic() >= deadline:
            raise EpmdError("unreachable")
        time.sleep(0.02)


def stop(
    port: int | None = None, host: str = "127.0.0.1", timeout_ms: int = 2000, *,
    force: bool = False,
) -> None:
    """Ask the mapper on `host:port` to exit and wait (bounded) until it stops answering.

    A no-op if none answers. Honoured only from a loopback client of the mapper's own user
    (or root), else EpmdError("not_owner"); while names are registered it is refused with
    EpmdError("names_registered") unless `force` (their nodes then register again).
    """
    port = _port(port)
    deadline = _deadline(timeout_ms)
    try:
        reply = _request("STOP force\n" if force else "STOP\n", port, host, timeout_ms,
                         MAX_LINE)
    except EpmdError as exc:
        if exc.reason == "unreachable":
            return
        raise
    if reply != "OK":
        reason = reply[4:] if reply.startswith("ERR ") else ""
        raise EpmdError(reason if reason in ("names_registered", "not_owner") else "bad_request")
    while _answers(host, port, deadline) and time.monotonic() < deadline:
        time.sleep(0.01)


def _port(port: int | None) -> int:
    return default_port() if port is None else port


def _deadline(timeout_ms: int) -> float:
    return time.monotonic() + max(0, timeout_ms) / 1000.0


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise EpmdError("unreachable")
    return left


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    """A connection to the mapper; EpmdError("untrusted") if another user runs it."""
    try:
        sock = socket.create_connection((host, port), timeout=_remaining(deadline))
    except OSError:
        raise EpmdError("unreachable")
    owner = tcp_peer_uid(sock)
    if owner is not None and hasattr(os, "geteuid") and owner not in (os.geteuid(), 0):
        sock.close()
        log.error("the port mapper on %s:%d runs as uid %d, not as this user or root: "
                  "not trusting it (set %s to use a private one)", host, port, owner, PORT_ENV)
        raise EpmdError("untrusted")
    return sock


def _exchange(sock: socket.socket, request: str, deadline: float, limit: int) -> str:
    """Send one request line and read one response line (without its "\\n")."""
    buf = bytearray()
    try:
        sock.settimeout(_remaining(deadline))
        sock.sendall(request.encode("utf-8"))
        while True:
            end = buf.find(b"\n")
            if end >= 0:
                return bytes(buf[:end]).decode("utf-8")
            if len(buf) > limit:
                raise EpmdError("unreachable")
            sock.settimeout(_remaining(deadline))
            data = sock.recv(65536)
            if not data:
                raise EpmdError("unreachable")
            buf += data
    except (OSError, UnicodeDecodeError):
        raise EpmdError("unreachable")


def _request(request: str, port: int | None, host: str, timeout_ms: int, limit: int) -> str:
    deadline = _deadline(timeout_ms)
    sock = _connect(host, _port(port), deadline)
    try:
        return _exchange(sock, request, deadline, limit)
    finally:
        sock.close()


def _answers(host: str, port: int, deadline: float) -> bool:
    """True if a port mapper (not just any listener) answers on `host:port` by `deadline`."""
    try:
        timeout_ms = max(1, int((deadline - time.monotonic()) * 1000))
        reply = _request(f"LOOKUP {_PROBE_NAME}\n", port, host, timeout_ms, MAX_LINE)
    except EpmdError as exc:
        if exc.reason == "untrusted":
            raise  # another user holds the port: starting a daemon would not help
        return False
    return reply == "NONE" or reply.startswith("ADDR ")


def _child_env() -> dict[str, str]:
    """A clean environment for the daemon: a few locale and path variables and this
    package's root on PYTHONPATH; nothing else (no cookie) leaks into a process that
    outlives the cluster."""
    env = {key: os.environ[key] for key in _CHILD_ENV_KEEP if key in os.environ}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [root, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                     if p and p != root)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m transport.epmd [--port N] [--host H]`; exit 0 also when the port is taken."""
    parser = argparse.ArgumentParser(
        prog="python -m transport.epmd", description="Port mapper daemon: node name -> address."
    )
    parser.add_argument(
        "--port", type=int, default=None, help=f"default: ${PORT_ENV}, else {DEFAULT_PORT}"
    )
    parser.add_argument("--host", default="127.0.0.1", help="the only address bound")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    try:
        serve(_port(args.port), args.host)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return 0  # another daemon won the race; it serves this host
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
