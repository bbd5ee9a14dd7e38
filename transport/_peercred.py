"""Which local user owns the other end of a loopback TCP connection (private).

Rules of this module:
- Linux only: the kernel's sock_diag netlink interface (what `ss` uses) looks one TCP
  socket up by its four-tuple and reports the uid that created it. One lookup is a hash
  probe in the kernel (about 0.1 ms here), whatever the number of sockets; reading
  /proc/net/tcp instead took 25 ms with 2,500 sockets, too slow to do per request.
- Elsewhere, or when the socket is not found (the peer is on another host, or already
  gone), the answer is None and the caller decides what an unknown owner means.
- An accepted socket carries the uid of the process that owns the listening socket, so a
  client learns who runs its server the same way a server learns who its client is.
- `diag_request` and `diag_uid` are pure (bytes in, bytes or uid out); `tcp_peer_uid`
  does the one netlink round trip. No state.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

__all__ = ["diag_request", "diag_uid", "tcp_peer_uid"]

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NO_COOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF
_NLMSG_HEADER = struct.Struct("=IHHII")
_UID_OFFSET = _NLMSG_HEADER.size + 4 + 48 + 12  # header, family..retrans, sockid, 3 u32s


def diag_request(family: int, local: Any, remote: Any, seq: int = 1) -> bytes:
    """A SOCK_DIAG_BY_FAMILY request for the TCP socket whose own address is `local` and
    whose peer is `remote` (each (host, port, ...) as getsockname returns)."""
    src = socket.inet_pton(family, local[0]).ljust(16, b"\0")
    dst = socket.inet_pton(family, remote[0]).ljust(16, b"\0")
    sockid = (struct.pack(">HH", local[1], remote[1]) + src + dst
              + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE))
    body = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES) + sockid
    return _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY,
                              _NLM_F_REQUEST, seq, 0) + body


def diag_uid(reply: bytes) -> int | None:
    """The uid in a sock_diag reply; None for an error reply (not found) or a short one."""
    if len(reply) < _UID_OFFSET + 4:
        return None
    _, kind, _, _, _ = _NLMSG_HEADER.unpack_from(reply)
    if kind != _SOCK_DIAG_BY_FAMILY:
        return None
    return int(struct.unpack_from("=I", reply, _UID_OFFSET)[0])


def tcp_peer_uid(sock: socket.socket) -> int | None:
    """The uid owning the far end of the connected TCP socket `sock`, if it is on this
    host and the kernel says; None when unknown."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket,
                                                                          "AF_NETLINK"):
        return None
    try:
        request = diag_request(sock.family, sock.getpeername(), sock.getsockname())
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            nl.send(request)
            reply = nl.recv(65536)
    except (OSError, ValueError):
        return None
    return diag_uid(reply)
