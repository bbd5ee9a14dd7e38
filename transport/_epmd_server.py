"""The port mapper's daemon: the event loop behind `transport.epmd.serve` (private).

Rules of this module:
- `transport.epmd` is the public face (it re-exports `serve` and the limits) and its
  docstring specifies the protocol. Nothing here imports it, so `python -m transport.epmd`
  (run as `__main__`) never loads a second copy of it.
- One thread, one `selectors` event loop; all state is in a `_Server` instance, touched
  only by the thread inside `serve`. No module-level mutable state.
- Input is read only while pending output is under `_OUT_HIGH_WATER`. After an over-long
  line: reply, free the name, shut the write side, drain input for `LINGER_S`, close.
- The connection cap stays `_FD_RESERVE` descriptors under the process's limit; accept()
  out of descriptors pauses accepting for `_ACCEPT_PAUSE_S`.
- Nothing a local user does can shut others out (issue 13, findings 1 and 7):
  * a full house evicts the least recently active connection that holds no name, so a
    lookup or a new node always gets in; names may use all but `LOOKUP_RESERVE` slots;
  * one uid may hold at most `MAX_NAMES_PER_UID` names (root is not limited);
  * only a complete request line counts as activity, so a byte trickle idles out;
  * STOP is honoured only from this daemon's own uid (or root) and only while no name is
    registered, as epmd refuses `-kill` while nodes live; `STOP force` skips the second
    rule. The peer's uid comes from the kernel (`_peercred`), never from the request.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import threading
import time
from typing import Any

from ._epmd_wire import MAX_LINE, valid_address, valid_name
from ._peercred import tcp_peer_uid

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

MAX_CONNECTIONS = 1024
IDLE_TIMEOUT_S = 30.0  # for connections holding no name
LOOKUP_RESERVE = 64  # connections that names can never take: lookups and new nodes get in
MAX_NAMES_PER_UID = 128  # names one local user may hold at once (root: unlimited)
LINGER_S = 2.0  # after an error close: drain input this long so the peer reads the reply

_RECV_SIZE = 4096
_OUT_HIGH_WATER = 64 * 1024  # stop handling requests while this much output is pending
_FD_RESERVE = 32  # descriptors kept back from the connection cap for everything else
_ACCEPT_PAUSE_S = 0.1  # back-off when accept() is out of descriptors

_OK = b"OK\n"
_NONE = b"NONE\n"
_ERR_TAKEN = b"ERR taken\n"
_ERR_BAD = b"ERR bad_request\n"
_ERR_LIMIT = b"ERR limit\n"
_ERR_NAMES_REGISTERED = b"ERR names_registered\n"
_ERR_NOT_OWNER = b"ERR not_owner\n"
_UNKNOWN_UID = -1  # `_Conn.uid` before it is asked for


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
        "uid",
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
        self.last_active = now  # when the last complete request line arrived (or accept)
        self.uid: int | None = _UNKNOWN_UID  # the peer's uid, looked up once when needed

    def peer_uid(self) -> int | None:
        """The uid owning the client's socket (None: unknown, e.g. on another host)."""
        if self.uid == _UNKNOWN_UID:
            self.uid = tcp_peer_uid(self.sock)
        return self.uid


class _Server:
    """The daemon's state and event loop. All methods run on the thread that calls `run`."""

    def __init__(self, host: str, port: int, max_connections: int, idle_timeout_s: float,
                 max_names_per_uid: int = MAX_NAMES_PER_UID) -> None:
        self.host = host
        self.port = port
        self.max_connections = max(1, min(max_connections, _fd_budget()))
        self.idle_timeout_s = idle_timeout_s
        reserve = min(LOOKUP_RESERVE, max(1, self.max_connections // 4))
        self.name_slots = max(1, self.max_connections - reserve)  # names never take the rest
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.conns: dict[socket.socket, _Conn] = {}
        self.registry: dict[str, tuple[str, _Conn]] = {}
        self.stop_requested = False
        self.accept_paused_until: float | None = None
        self.owner_uid = os.geteuid() if hasattr(os, "geteuid") else None
        self.names_by_uid: dict[int | None, int] = {}
        self.max_names_per_uid = max_names_per_uid

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
            if len(self.conns) >= self.max_connections and not self._evict_one():
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, _is_loopback(peer), time.monotonic())
            self.conns[sock] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _evict_one(self) -> bool:
        """Close the least recently active connection that holds no name; False if none."""
        idle = [c for c in self.conns.values() if c.name is None]
        if not idle:
            return False
        self._close(min(idle, key=lambda c: c.last_active))
        return True

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
            conn.last_active = time.monotonic()  # only a whole line is activity
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
                uid = conn.peer_uid()
                left = self.names_by_uid.get(uid, 0) - 1
                if left > 0:
                    self.names_by_uid[uid] = left
                else:
                    self.names_by_uid.pop(uid, None)

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
        if command == "STOP" and (not args or args == ["force"]) and conn.loopback:
            return self._stop(conn, force=bool(args))
        return _ERR_BAD

    def _stop(self, conn: _Conn, force: bool) -> bytes:
        uid = conn.peer_uid()
        if self.owner_uid is not None and uid not in (self.owner_uid, 0):
            return _ERR_NOT_OWNER  # unknown counts as foreign: the kernel always knows locals
        if not force and any(not self._holder_dead(c) for _, c in list(self.registry.values())):
            return _ERR_NAMES_REGISTERED
        self.stop_requested = True
        return _OK

    def _alive(self, conn: _Conn, name: str, address: str) -> bytes:
        if conn.name is not None or not valid_name(name) or not valid_address(address):
            return _ERR_BAD
        held = self.registry.get(name)
        if held is not None and not self._holder_dead(held[1]):
            return _ERR_TAKEN
        uid = conn.peer_uid()
        if len(self.registry) >= self.name_slots or (
            uid != 0 and self.names_by_uid.get(uid, 0) >= self.max_names_per_uid
        ):
            return _ERR_LIMIT
        self.registry[name] = (address, conn)
        self.names_by_uid[uid] = self.names_by_uid.get(uid, 0) + 1
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
    max_names_per_uid: int = MAX_NAMES_PER_UID,
) -> None:
    """Run the daemon on the calling thread until STOP or `stop_event`; then free everything.

    Sets `ready` once listening. Raises OSError if it cannot bind (EADDRINUSE: another
    daemon already has the port). `stop_event` is noticed within about 0.1 s.
    """
    server = _Server(host, port, max_connections, idle_timeout_s, max_names_per_uid)
    try:
        server.bind()
        if ready is not None:
            ready.set()
        server.run(stop_event)
    finally:
        server.close()


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
