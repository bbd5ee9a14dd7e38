"""A held port-mapper registration and its watcher (private; `transport.epmd` re-exports
`Registration` and specifies the protocol).

Rules of this module:
- A name stays registered for as long as its connection to the mapper is open; the
  mapper never writes to that connection unasked, so a blocking read on it ends only at
  EOF or error: the mapper is gone, or dropped us.
- While the Registration is open, one watcher thread per Registration does that read.
  On a drop it logs an error and calls `again()` (a new ALIVE) with back-off from
  `_RETRY_MIN_S` to `_RETRY_MAX_S` until it works or `close()` is called. It starts no
  mapper itself.
- `close()` is idempotent, frees the name at once and ends the watcher.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType

from ._epmd_error import EpmdError

__all__ = ["Registration"]

_RETRY_MIN_S = 0.1  # a dropped Registration retries after this, doubling ...
_RETRY_MAX_S = 5.0  # ... up to this

log = logging.getLogger("transport.epmd")


class Registration:
    """A held ALIVE connection: the name stays registered until `close()` (or process death).

    Context manager. `close()` is idempotent and frees the name at once. While open, a
    watcher thread notices if the mapper drops the connection (it died, or was stopped),
    logs it as an error and registers the name again, with back-off, until that works or
    `close()` is called. `lost` counts the drops seen.
    """

    def __init__(
        self,
        sock: socket.socket,
        name: str,
        address: str,
        again: Callable[[], socket.socket] | None = None,
    ) -> None:
        """`again()` registers the name on a new connection (raising EpmdError if it
        cannot); without it nothing watches the connection."""
        self._sock: socket.socket | None = sock
        self._again = again
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.name = name
        self.address = address
        self.lost = 0
        self.reregistered = threading.Event()  # set (and cleared on loss) as it re-registers
        if again is not None:
            threading.Thread(target=self._watch, name=f"epmd-watch-{name}", daemon=True).start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
            self._closed.set()
        if sock is not None:
            _shut(sock)

    def _watch(self) -> None:
        """Block on the connection (the mapper never writes to it unasked); on EOF or error
        while still open, register again."""
        while not self._closed.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                data = sock.recv(1)
            except OSError:
                data = b""
            if data or self._closed.is_set():
                continue
            self.lost += 1
            self.reregistered.clear()
            log.error("the port mapper dropped the registration of %s (mapper gone or "
                      "stopped); registering it again", self.name)
            self._register_again(sock)

    def _register_again(self, dead: socket.socket) -> None:
        delay = _RETRY_MIN_S
        failures = 0
        while not self._closed.is_set():
            try:
                assert self._again is not None
                sock = self._again()
            except EpmdError as exc:
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.error("cannot register %s with the port mapper again (%s, %d tries); "
                              "other nodes cannot find it by name", self.name, exc.reason,
                              failures)
                self._closed.wait(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            with self._lock:
                if self._closed.is_set():
                    keep = None
                else:
                    keep, self._sock = sock, sock
            if keep is None:
                _shut(sock)
                return
            _shut(dead)
            log.warning("registered %s with the port mapper again", self.name)
            self.reregistered.set()
            return

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


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
