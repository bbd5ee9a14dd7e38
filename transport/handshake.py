"""Handshake payloads: the bytes inside the HELLO, CHALLENGE and ACK frames of `transport.codec`.

Rules of this module:
* Sans-I/O and pure, as `transport.codec`: no sockets, no threads, no clocks, no global
  mutable state, no pickle, no randomness.
* `decode_*` read bytes from the network and raise only `FrameError("bad_payload")` on bad
  input, whatever the bytes. Bad arguments from our own side (an oversized field, a nonce
  that is not 16 bytes, creation out of range) are programming errors and raise
  ValueError/TypeError instead.
* Every public name here is also importable from `transport.codec`.

Layout: fields in order, no padding, nothing after the last one:
    str    = u8 length + UTF-8 bytes (at most MAX_FIELD bytes)
    nonce  = u8 length (always 16) + 16 bytes
    u32    = 4 bytes big-endian
    Hello     = str sender, str receiver, nonce nonce, str address, u32 creation
    Challenge = str sender, str receiver, nonce nonce_echo, nonce nonce, u32 creation
    Ack       = nonce nonce_echo, then the initiator's Hello, field by field
The encoding is canonical: decode accepts exactly the bytes that encode produces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._frame_error import FrameError

__all__ = [
    "MAX_FIELD",
    "NONCE_SIZE",
    "Ack",
    "Challenge",
    "Hello",
    "decode_ack",
    "decode_challenge",
    "decode_hello",
    "encode_ack",
    "encode_challenge",
    "encode_hello",
]

NONCE_SIZE = 16
MAX_FIELD = 255  # bytes, longest name/address in a handshake payload

_U32 = struct.Struct(">I")
_CREATION_LIMIT = 1 << 32


@dataclass(frozen=True, slots=True)
class Hello:
    """Handshake step 1, initiator -> acceptor."""

    sender: str  # node name, e.g. "n1@127.0.0.1"
    receiver: str  # the node name the sender believes it is talking to
    nonce: bytes  # 16 bytes
    address: str  # sender's listen address, e.g. "tcp://127.0.0.1:5555"
    creation: int  # sender's incarnation number, 0 <= creation < 2**32


@dataclass(frozen=True, slots=True)
class Challenge:
    """Handshake step 2, acceptor -> initiator: echoes the Hello's nonce, adds a fresh one."""

    sender: str
    receiver: str
    nonce_echo: bytes  # the Hello's nonce
    nonce: bytes  # 16 fresh bytes
    creation: int  # 0 <= creation < 2**32


@dataclass(frozen=True, slots=True)
class Ack:
    """Handshake step 3, initiator -> acceptor: echoes the Challenge's nonce and repeats the
    Hello, so the acceptor keeps no state between CHALLENGE and ACK (`transport.connection`)."""

    nonce_echo: bytes
    hello: Hello


def _put_str(out: list[bytes], what: str, value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    raw = value.encode("utf-8")
    if len(raw) > MAX_FIELD:
        raise ValueError(f"{what} is {len(raw)} bytes, max {MAX_FIELD}")
    out.append(bytes((len(raw),)))
    out.append(raw)


def _put_nonce(out: list[bytes], what: str, value: bytes) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) != NONCE_SIZE:
        raise ValueError(f"{what} is {len(value)} bytes, must be {NONCE_SIZE}")
    out.append(bytes((NONCE_SIZE,)))
    out.append(value)


def _put_u32(out: list[bytes], what: str, value: int) -> None:
    if not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value < _CREATION_LIMIT:
        raise ValueError(f"{what} {value} out of range [0, 2**32)")
    out.append(_U32.pack(value))


class _Reader:
    """Consumes handshake fields from a payload; every failure is FrameError("bad_payload")."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    def _take(self, n: int, what: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise FrameError("bad_payload", f"truncated {what}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def _field(self, what: str) -> bytes:
        return self._take(self._take(1, what)[0], what)

    def text(self, what: str) -> str:
        raw = self._field(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("bad_payload", f"{what} is not UTF-8")

    def nonce(self, what: str) -> bytes:
        raw = self._field(what)
        if len(raw) != NONCE_SIZE:
            raise FrameError("bad_payload", f"{what} is {len(raw)} bytes, not {NONCE_SIZE}")
        return raw

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self._take(4, what))[0]
        return value

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise FrameError("bad_payload", f"{len(self._data) - self._pos} trailing bytes")


def encode_hello(h: Hello) -> bytes:
    """The canonical payload of `h`; ValueError/TypeError if a field is out of range."""
    out: list[bytes] = []
    _put_hello(out, h)
    return b"".join(out)


def _put_hello(out: list[bytes], h: Hello) -> None:
    if not isinstance(h, Hello):
        raise TypeError(f"hello must be a Hello, not {type(h).__name__}")
    _put_str(out, "sender", h.sender)
    _put_str(out, "receiver", h.receiver)
    _put_nonce(out, "nonce", h.nonce)
    _put_str(out, "address", h.address)
    _put_u32(out, "creation", h.creation)


def _read_hello(r: _Reader) -> Hello:
    return Hello(
        sender=r.text("sender"),
        receiver=r.text("receiver"),
        nonce=r.nonce("nonce"),
        address=r.text("address"),
        creation=r.u32("creation"),
    )


def decode_hello(b: bytes) -> Hello:
    """The Hello encoded in `b`; FrameError("bad_payload") on any malformation."""
    r = _Reader(b)
    hello = _read_hello(r)
    r.finish()
    return hello


def encode_challenge(c: Challenge) -> bytes:
    """The canonical payload of `c`; ValueError/TypeError if a field is out of range."""
    out: list[bytes] = []
    _put_str(out, "sender", c.sender)
    _put_str(out, "receiver", c.receiver)
    _put_nonce(out, "nonce_echo", c.nonce_echo)
    _put_nonce(out, "nonce", c.nonce)
    _put_u32(out, "creation", c.creation)
    return b"".join(out)


def decode_challenge(b: bytes) -> Challenge:
    """The Challenge encoded in `b`; FrameError("bad_payload") on any malformation."""
    r = _Reader(b)
    challenge = Challenge(
        sender=r.text("sender"),
        receiver=r.text("receiver"),
        nonce_echo=r.nonce("nonce_echo"),
        nonce=r.nonce("nonce"),
        creation=r.u32("creation"),
    )
    r.finish()
    return challenge


def encode_ack(a: Ack) -> bytes:
    """The canonical payload of `a`; ValueError/TypeError if the nonce is not 16 bytes or a
    field of its Hello is out of range."""
    out: list[bytes] = []
    _put_nonce(out, "nonce_echo", a.nonce_echo)
    _put_hello(out, a.hello)
    return b"".join(out)


def decode_ack(b: bytes) -> Ack:
    """The Ack encoded in `b`; FrameError("bad_payload") on any malformation."""
    r = _Reader(b)
    ack = Ack(r.nonce("nonce_echo"), _read_hello(r))
    r.finish()
    return ack
