"""A port mapper, as Erlang's epmd: node name -> the node's listen address, one per host.

Rules of this module:
- The daemon listens on TCP `<host>:<port>` (host 127.0.0.1 unless told otherwise, and only
  that host; port `DEFAULT_PORT`, or env `ERLPY_EPMD_PORT`, or an explicit argument). It is
  plain stdlib sockets, not ZeroMQ: one thread, one `selectors` event loop, state held by a
  `_Server` instance (no module-level mutable state).
- The first node on a host starts it (`ensure_running`) as a detached process that outlives
  that node. When two nodes race, the loser's bind fails with EADDRINUSE and that daemon
  exits with status 0; both callers still see the winner answer.
- A name is registered for exactly as long as the TCP connection that sent `ALIVE` stays
  open (as epmd's ALIVE2): when the node dies the kernel closes its socket and the name is
  free at once. One name per connection.
- The protocol is newline-delimited UTF-8, one request line, one response line:

    request                      response
    ---------------------------  -------------------------------------------------------
    ALIVE <name> <address>       OK | ERR taken | ERR bad_request
    LOOKUP <name>                ADDR <address> | NONE | ERR bad_request
    NAMES                        NAMES[ <name>=<address>]...   (space separated)
    STOP   (loopback peers only) OK, then the daemon exits     | ERR bad_request

  A name is 1..255 printable characters, no space, no "=", exactly one "@" with text on
  both sides. An address is 1..255 printable characters, no space, starting "tcp://" with
  text after it. Anything else is `ERR bad_request` and the connection stays open, except a
  line over `MAX_LINE` bytes: `ERR bad_request`, then the daemon closes the connection.
- Bounds: at most `MAX_CONNECTIONS` connections at once (extra ones are closed on accept);
  a connection that has not registered a name and sends nothing for `IDLE_TIMEOUT_S` is
  closed; the daemon reads no more from a connection until its pending output is written.
  No input can crash the daemon.
- Client calls open one short connection per request (`Registration` keeps its one open)
  and are bounded by their `timeout_ms`. A mapper that does not answer properly is
  `EpmdError("unreachable")`; invalid names or addresses are `EpmdError("bad_request")`
  and are never sent.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

DEFAULT_PORT = 4370
PORT_ENV = "ERLPY_EPMD_PORT"
MAX_LINE = 1024  # bytes in one request line, not counting its "\n"
MAX_NAME = 255
MAX_ADDRESS = 255
MAX_CONNECTIONS = 1024
IDLE_TIMEOUT_S = 30.0  # for connections holding no name
LINGER_S = 2.0  # after an error close: drain input this long so the peer reads the reply
MAX_RESPONSE = 4 * 1024 * 1024  # the longest response line a client accepts (NAMES)

_RECV_SIZE = 4096
_OUT_HIGH_WATER = 64 * 1024  # stop handling requests while this much output is pending
_FD_RESERVE = 32  # descriptors kept back from the connection cap for everything else
_ACCEPT_PAUSE_S = 0.1  # back-off when accept() is out of descriptors

_OK = b"OK\n"
_NONE = b"NONE\n"
_ERR_TAKEN = b"ERR taken\n"
_ERR_BAD = b"ERR bad_request\n"
_PROBE_NAME = "probe@epmd"  # looked up by `ensure_running` to see that a mapper answers


class EpmdError(Exception):
    """A port-mapper call failed; `reason` is "unreachable", "taken" or "bad_request"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def default_port() -> int:
    """The port from env `ERLPY_EPMD_PORT`, else `DEFAULT_PORT`; a bad value is ValueError."""
    raw = os.environ.get(PORT_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_PORT
    port = int(raw)
    if not 0 < port < 65536:
        raise ValueError(f"{PORT_ENV}={raw!r} is not a TCP port")
    return port


def valid_name(name: object) -> bool:
    """True for a node name the protocol accepts ("name@host", see the module rules)."""
    if not isinstance(name, str) or not _valid_token(name, MAX_NAME) or "=" in name:
        return False
    local, at, host = name.partition("@")
    return at == "@" and local != "" and host != "" and "@" not in host


def valid_address(address: object) -> bool:
    """True for a listen address the protocol accepts ("tcp://...", see the module rules)."""
    return (
        isinstance(address, str)
        and _valid_token(address, MAX_ADDRESS)
        and address.startswith("tcp://")
        and len(address) > len("tcp://")
    )


def _valid_token(text: str, limit: int) -> bool:
    return 0 < len(text) <= limit and text.isprintable() and " " not in text


# ---------------------------------------------------------------------------------------------
# Daemon
# ---------------------------------------------------------------------------------------------


class _Conn:
    """One accepted connection and its buffers; owned by the event loop thread."""

    __slots__ = (
        "closed",
        "closing",
        "inbuf",
        "last_active",
        "linger_until",
        "loopback",
        "name",
        "outbuf",
        "sock",
    )

    def __init__(self, sock: socket.socket, loopback: bool, now: float) -> None:
        self.sock = sock
        self.loopback = loopback
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.name: str | None = None  # the name this connection registered
        self.closing = False  # replied with an error; flushing, then draining until EOF
        self.linger_until: float | None = None  # set once the write side is shut
        self.closed = False
        self.last_active = now


class _Server:
    """The daemon's state and event loop. All methods run on the thread that calls `run`."""

    def __init__(self, host: str, port: int, max_connections: int, idle_timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.max_connections = max(1, min(max_connections, _fd_budget()))
        self.idle_timeout_s = idle_timeout_s
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.conns: dict[socket.socket, _Conn] = {}
        self.registry: dict[str, tuple[str, _Conn]] = {}
        self.stop_requested = False
        self.accept_paused_until: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def bind(self) -> None:
        """Bind and listen; OSError (EADDRINUSE when another daemon has the port) on failure."""
        family, type_, proto, _, addr = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, type_, proto)
        try:
            if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # pragma: no cover - Windows
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.listener = sock
        self.selector.register(sock, selectors.EVENT_READ, None)

    def run(self, stop_event: threading.Event | None) -> None:
        """Serve until STOP or `stop_event` is set."""
        poll_s = 0.1 if stop_event is not None else 1.0
        next_sweep = time.monotonic() + poll_s
        while not self.stop_requested:
            if stop_event is not None and stop_event.is_set():
                return
            timeout = poll_s if self.accept_paused_until is None else _ACCEPT_PAUSE_S
            for key, mask in self.selector.select(timeout):
                if key.data is None:
                    self._accept()
                else:
                    self._on_event(key.data, mask)
                if self.stop_requested:
                    return
            now = time.monotonic()
            if self.accept_paused_until is not None and now >= self.accept_paused_until:
                self._resume_accept()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + poll_s

    def close(self) -> None:
        """Close every connection and the listener (frees every name)."""
        for conn in list(self.conns.values()):
            self._close(conn)
        if self.listener is not None:
            if self.accept_paused_until is None:
                self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
        self.selector.close()

    # -- accepting ----------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        for _ in range(64):  # a bounded batch; the listener stays readable if more wait
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accept()
                # ECONNABORTED and the like: that one client is gone; nothing to do.
                return
            if len(self.conns) >= self.max_connections:
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, _is_loopback(peer), time.monotonic())
            self.conns[sock] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _pause_accept(self) -> None:
        assert self.listener is not None
        self.selector.unregister(self.listener)
        self.accept_paused_until = time.monotonic() + _ACCEPT_PAUSE_S

    def _resume_accept(self) -> None:
        assert self.listener is not None
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.accept_paused_until = None

    # -- connections --------------------------------------------------------------------------

    def _on_event(self, conn: _Conn, mask: int) -> None:
        if conn.closed:  # closed earlier in this batch
            return
        if mask & selectors.EVENT_READ:
            self._on_readable(conn)
        elif mask & selectors.EVENT_WRITE:
            self._pump(conn)

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if conn.closing:  # lingering: discard until EOF or the deadline
            return
        conn.last_active = time.monotonic()
        conn.inbuf += data
        self._pump(conn)

    def _pump(self, conn: _Conn) -> None:
        """Answer buffered requests and write output until blocked; then set the interest.

        Input is read only while no output is pending, so `inbuf` holds at most one partial
        line plus one read, and `outbuf` stays near `_OUT_HIGH_WATER` plus one response.
        """
        while True:
            if not conn.closing:
                self._handle_lines(conn)
                if conn.closed:
                    return
                if self.stop_requested:
                    _flush_blocking(conn)
                    return
            if conn.outbuf and not self._send(conn):
                return  # the connection was closed
            if conn.outbuf or conn.closing or not _has_line(conn.inbuf):
                break
        if conn.closing and not conn.outbuf and conn.linger_until is None:
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(conn)
                return
            conn.linger_until = time.monotonic() + LINGER_S
        events = selectors.EVENT_WRITE if conn.outbuf else selectors.EVENT_READ
        self.selector.modify(conn.sock, events, conn)

    def _handle_lines(self, conn: _Conn) -> None:
        while len(conn.outbuf) < _OUT_HIGH_WATER and not self.stop_requested and not conn.closed:
            end = conn.inbuf.find(b"\n")
            if end < 0:
                if len(conn.inbuf) > MAX_LINE:
                    self._reject(conn)
                return
            if end > MAX_LINE:
                self._reject(conn)
                return
            line = bytes(conn.inbuf[:end])
            del conn.inbuf[: end + 1]
            conn.outbuf += self._answer(conn, line)

    def _reject(self, conn: _Conn) -> None:
        """Over-long line: reply, free the name, and close once the reply is written."""
        conn.outbuf += _ERR_BAD
        conn.inbuf.clear()
        conn.closing = True
        self._unregister_name(conn)

    def _send(self, conn: _Conn) -> bool:
        """Write what the socket takes; False if the connection was closed."""
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            self._close(conn)
            return False
        del conn.outbuf[:sent]
        return True

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        del self.conns[conn.sock]
        self._unregister_name(conn)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _unregister_name(self, conn: _Conn) -> None:
        if conn.name is not None:
            held = self.registry.get(conn.name)
            if held is not None and held[1] is conn:
                del self.registry[conn.name]

    def _sweep(self, now: float) -> None:
        """Close lingering connections past their deadline and idle nameless ones."""
        for conn in list(self.conns.values()):
            if conn.linger_until is not None:
                if now >= conn.linger_until:
                    self._close(conn)
            elif (
                conn.name is None
                and not conn.closing
                and now - conn.last_active > self.idle_timeout_s
            ):
                self._close(conn)

    # -- requests -----------------------------------------------------------------------------

    def _answer(self, conn: _Conn, raw: bytes) -> bytes:
        """The response line to one request line (without its "\\n")."""
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _ERR_BAD
        parts = line.split(" ")
        command, args = parts[0], parts[1:]
        if command == "ALIVE" and len(args) == 2:
            return self._alive(conn, args[0], args[1])
        if command == "LOOKUP" and len(args) == 1 and valid_name(args[0]):
            held = self.registry.get(args[0])
            if held is None or self._holder_dead(held[1]):
                return _NONE
            return f"ADDR {held[0]}\n".encode()
        if command == "NAMES" and not args:
            items = "".join(f" {name}={addr}" for name, (addr, _) in self.registry.items())
            return f"NAMES{items}\n".encode()
        if command == "STOP" and not args and conn.loopback:
            self.stop_requested = True
            return _OK
        return _ERR_BAD

    def _alive(self, conn: _Conn, name: str, address: str) -> bytes:
        if conn.name is not None or not valid_name(name) or not valid_address(address):
            return _ERR_BAD
        held = self.registry.get(name)
        if held is not None and not self._holder_dead(held[1]):
            return _ERR_TAKEN
        self.registry[name] = (address, conn)
        conn.name = name
        return _OK

    def _holder_dead(self, holder: _Conn) -> bool:
        """Check a registering connection now, in case its EOF is not yet handled.

        A node restarted right after its predecessor died may ask before the loop has seen
        the old socket's EOF; peeking settles it. A dead holder is closed (its name freed).
        """
        try:
            data = holder.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if data:
            return False
        self._close(holder)
        return True


def _has_line(buf: bytearray) -> bool:
    return b"\n" in buf or len(buf) > MAX_LINE


def _flush_blocking(conn: _Conn) -> None:
    """Best effort, bounded: write the reply to STOP before the daemon closes everything."""
    try:
        conn.sock.settimeout(1.0)
        conn.sock.sendall(conn.outbuf)
        conn.outbuf.clear()
    except OSError:
        pass


def _is_loopback(peer: Any) -> bool:
    try:
        addr = ipaddress.ip_address(peer[0])
    except (TypeError, ValueError, IndexError):
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def _fd_budget() -> int:
    """Connections the descriptor limit allows, keeping `_FD_RESERVE` back."""
    if resource is None:  # pragma: no cover - not POSIX
        return MAX_CONNECTIONS
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, soft - _FD_RESERVE)


def serve(
    port: int,
    host: str = "127.0.0.1",
    ready: threading.Event | None = None,
    stop_event: threading.Event | None = None,
    *,
    max_connections: int = MAX_CONNECTIONS,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> None:
    """Run the daemon on the calling thread until STOP or `stop_event`; then free everything.

    Sets `ready` once listening. Raises OSError if it cannot bind (EADDRINUSE: another
    daemon already has the port). `stop_event` is noticed within about 0.1 s.
    """
    server = _Server(host, port, max_connections, idle_timeout_s)
    try:
        server.bind()
        if ready is not None:
            ready.set()
        server.run(stop_event)
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------


class Registration:
    """A held ALIVE connection: the name stays registered until `close()` (or process death).

    Context manager. `close()` is idempotent and frees the name at once.
    """

    def __init__(self, sock: socket.socket, name: str, address: str) -> None:
        self._sock: socket.socket | None = sock
        self._lock = threading.Lock()
        self.name = name
        self.address = address

    @property
    def closed(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def __enter__(self) -> Registration:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Registration {self.name}={self.address} {state}>"


def register(
    name: str,
    address: str,
    port: int | None = None,
    host: str = "127.0.0.1",
    timeout_ms: int = 2000,
) -> Registration:
    """Register `name` -> `address` for as long as the returned Registration stays open.

    Raises EpmdError("bad_request") for an invalid name or address (nothing is sent),
    EpmdError("taken") if a live connection holds the name, EpmdError("unreachable") if no
    mapper answers within `timeout_ms`.
    """
    if not valid_name(name) or not valid_address(address):
        raise EpmdError("bad_request")
    deadline = _deadline(timeout_ms)
    sock = _connect(host, _port(port), deadline)
    try:
        reply = _exchange(sock, f"ALIVE {name} {address}\n", deadline, MAX_LINE)
    except BaseException:
        sock.close()
        raise
    if reply == "OK":
        sock.settimeout(None)
        return Registration(sock, name, address)
    sock.close()
    if reply == "ERR taken":
        raise EpmdError("taken")
    if reply == "ERR bad_request":
        raise EpmdError("bad_request")
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
    EpmdError("unreachable") if no mapper answers within `timeout_ms`.
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


def stop(port: int | None = None, host: str = "127.0.0.1", timeout_ms: int = 2000) -> None:
    """Ask the mapper on `host:port` to exit and wait (bounded) until it stops answering.

    A no-op if none answers. Only honoured from a loopback address.
    """
    port = _port(port)
    deadline = _deadline(timeout_ms)
    try:
        reply = _request("STOP\n", port, host, timeout_ms, MAX_LINE)
    except EpmdError:
        return
    if reply != "OK":
        raise EpmdError("bad_request")
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
    try:
        return socket.create_connection((host, port), timeout=_remaining(deadline))
    except OSError:
        raise EpmdError("unreachable")


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
    except EpmdError:
        return False
    return reply == "NONE" or reply.startswith("ADDR ")


def _child_env() -> dict[str, str]:
    """The caller's environment, with this package's root first on PYTHONPATH."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [root, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root)]
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


def _raise_fd_limit() -> None:
    """Let the daemon hold `MAX_CONNECTIONS` sockets if the hard limit allows."""
    if resource is None:  # pragma: no cover - not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_CONNECTIONS + _FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


if __name__ == "__main__":
    sys.exit(main())
