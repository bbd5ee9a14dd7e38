"""Which local user owns the other end of a loopback TCP connection (private).

Rules of this module:
- Linux only: the kernel lists every TCP socket of the network namespace, with the uid
  that created it, in /proc/net/tcp and /proc/net/tcp6. Elsewhere, or when the entry is
  not found (the peer is on another host, or already gone), the answer is None and the
  caller decides what an unknown owner means.
- For a connection between two local sockets, each end appears once, keyed by its own
  (local, remote) address pair; the other end's entry has the pair swapped. An accepted
  socket carries the uid of the process that owns the listening socket.
- Pure functions over the table text (`find_uid`) plus one reader (`tcp_peer_uid`); no
  state, no threads.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

__all__ = ["find_uid", "table_key", "tcp_peer_uid"]

_TABLES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}
_MAX_TABLE = 64 * 1024 * 1024  # bytes read at most from one table


def _hex_address(family: int, host: str) -> str:
    """An address as the kernel prints it: each 32-bit word in host byte order, as hex."""
    raw = socket.inet_pton(family, host)
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    return "".join(f"{word:08X}" for word in words)


def table_key(family: int, local: Any, remote: Any) -> str:
    """The " local remote " text of the table row for a socket with these two addresses."""
    return (
        f" {_hex_address(family, local[0])}:{local[1]:04X}"
        f" {_hex_address(family, remote[0])}:{remote[1]:04X} "
    )


def find_uid(table: str, key: str) -> int | None:
    """The uid column of the row of `table` (/proc/net/tcp text) holding `key`, or None."""
    at = table.find(key)
    if at < 0:
        return None
    line_end = table.find("\n", at)
    fields = table[at : line_end if line_end >= 0 else len(table)].split()
    # after the two addresses: st, tx:rx queues, tr:when, retransmits, uid
    if len(fields) < 7 or not fields[6].isdigit():
        return None
    return int(fields[6])


def tcp_peer_uid(sock: socket.socket) -> int | None:
    """The uid owning the far end of the connected TCP socket `sock`, if it is local and
    the kernel says; None when unknown."""
    table_path = _TABLES.get(sock.family)
    if table_path is None:
        return None
    try:
        mine = sock.getsockname()
        theirs = sock.getpeername()
        key = table_key(sock.family, theirs, mine)  # the far end's row: its local is theirs
        with open(table_path, encoding="ascii", errors="replace") as f:
            table = f.read(_MAX_TABLE)
    except (OSError, ValueError):
        return None
    return find_uid(table, key)
