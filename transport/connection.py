"""A connection to one peer node, as a state machine without I/O (sans-I/O, like h11).

Rules of this module:
- No sockets, threads, clocks, pickle or randomness. Time comes in as `now` (seconds of
  any monotonic clock), nonces and the node's ticket key come in as bytes, payloads are
  opaque bytes. The caller (`actors._dist`) owns the sockets, the clock and the pickles.
- Input from the network never raises: whatever the bytes, a method returns a list of
  events, and a bad frame is `Dropped(reason)`. Bad arguments from our own side are
  programming errors (ValueError/TypeError).
- Nothing is delivered (`Data`) that was not authenticated under the session key of the
  peer's half, in order (seq exactly last + 1), and nothing before both halves are up.
- A frame that authenticates but is not the next in sequence (deleted, replayed or
  reordered on the path: ZeroMQ over one TCP connection loses nothing by itself) ends the
  connection. One that fails its tag is only dropped: it may be noise from anyone.
- One `Connection` per peer holds both halves: ours (we dial the peer, we send) and
  theirs (the peer dials us, we receive). The peer is up (`Up`) once both are; it goes
  down (`Down`) exactly once, and down is final: a new connection is a new object.
- Not thread-safe. `queue` and `flush` may run on any thread; the caller serialises them
  with `receive_reply`, `tick` and `close` (which also seal frames) by one lock, and must
  push the frames of each `Send` before releasing it, so frames leave in seal order. The
  receive side (`receive`, `attach`) is the caller's I/O thread's alone.
- The acceptor keeps no state before a verified ACK (`accept` is a pure function), so a
  replayed HELLO costs one CHALLENGE and leaves nothing behind; the caller dials back
  (its own half) only once an ACK is `Accepted`.
- Events are frozen dataclasses, except `Data`, a named tuple: one is made per frame.

Theory of operation (A dials B; each half runs this once, so B also dials A):
    A -> B  HELLO(A, B, nonce_a, A's address, creation)       sealed by handshake_key(cookie)
    B -> A  CHALLENGE(B, A, nonce_a, nonce_b, creation)       sealed by handshake_key(cookie)
    A -> B  ACK(nonce_b, the HELLO again), seq 1, then DATA, MORE and TICK, seq 2, 3, ...
                                                              sealed by the A->B session key
    nonce_b is a ticket: a u32 stamp (B's clock, ms) and a 12-byte BLAKE2b MAC, keyed by B's
    random ticket key, of the stamp, the connection's identity and the HELLO. On an ACK from
    a connection B does not know, B checks the size (2 KB), the ticket (its MAC, and an age
    of at most `setup_s`), then derives the session key and checks the tag. A replayed ACK
    fails on another connection (the identity differs) or once the ticket is old.
    A DATA payload is a batch of parts, each prefixed by its u32 BE length. A part too big
    for one frame is cut into MORE frames (each a slice of the payload) and a last DATA one;
    the receiver joins them, up to `Local.max_message` bytes.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import NamedTuple

from . import codec
from .codec import Frame, FrameError, Kind

__all__ = [
    "MAX_HANDSHAKE_FRAME",
    "Accepted",
    "Connection",
    "Data",
    "Down",
    "Dropped",
    "Event",
    "Local",
    "Refused",
    "Reply",
    "Send",
    "Up",
    "accept",
    "split_parts",
]

MAX_HANDSHAKE_FRAME = 2048  # a HELLO or an ACK is under 1.2 KB: anything bigger is refused unhashed
BATCH_BYTES = 256 * 1024  # the most one DATA frame carries when several parts share it
_LENGTH = struct.Struct(">I")
_STAMP = struct.Struct(">I")
_TICKET_MAC = codec.NONCE_SIZE - _STAMP.size
FRAME_OVERHEAD = codec.HEADER_SIZE + codec.TAG_SIZE
_DATA, _TICK = Kind.DATA, Kind.TICK  # (a module constant is cheaper than an enum lookup)


@dataclass(frozen=True)
class Local:
    """This node, as the connections see it. Times are seconds."""

    name: str
    address: str
    creation: int
    cookie: str | bytes = field(repr=False)
    handshake_key: bytes = field(repr=False)  # codec.handshake_key(cookie), computed once
    ticket_key: bytes = field(repr=False)  # random, per node start: keys the acceptor's tickets
    max_frame: int = codec.DEFAULT_MAX_FRAME
    max_message: int = 64 * 1024 * 1024  # one part (a pickled message), after reassembly
    setup_s: float = 3.0
    ticktime_s: float = 0.8


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Frames for our half's channel, in order."""

    frames: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """From `accept`: a frame to send back on the connection the input came from."""

    frame: bytes
    to: str  # the node the frame answers (the claimed sender), "" if unknown


@dataclass(frozen=True, slots=True)
class Accepted:
    """From `accept`: a verified ACK. `opener` receives the rest of that connection."""

    hello: codec.Hello
    opener: codec.Opener = field(compare=False)


@dataclass(frozen=True, slots=True)
class Up:
    """Both halves are up: the peer may be listed."""


class Data(NamedTuple):
    """Authenticated parts, in the order they were queued by the peer. (A named tuple, not
    a frozen dataclass as the other events: one is made for every frame received, and a
    tuple costs a third as much to make.)"""

    parts: list[bytes]


@dataclass(frozen=True, slots=True)
class Down:
    """The connection is over (once). `was_up`: the peer had been listed (`Up`)."""

    reason: str
    was_up: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """The peer refused our half; the reason is unauthenticated: log it, trust nothing."""

    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame was dropped: count it by reason."""

    reason: str
    detail: str = ""


Event = Send | Reply | Accepted | Up | Data | Down | Refused | Dropped


def split_parts(payload: bytes) -> list[bytes] | None:
    """The length-prefixed parts of a DATA payload; None if they do not tile it exactly."""
    end = len(payload)
    unpack = _LENGTH.unpack_from
    if end >= 4 and unpack(payload, 0)[0] == end - 4:
        return [payload[4:]]  # the common case: one part
    parts = []
    at = 0
    while at < end:
        if end - at < 4:
            return None
        size = unpack(payload, at)[0]
        at += 4
        if size > end - at:
            return None
        parts.append(payload[at:at + size])
        at += size
    return parts


# --- the acceptor: no state before the ACK -----------------------------------------------------


def _ticket(local: Local, identity: bytes, stamp: int, hello: bytes) -> bytes:
    mac = blake2b(key=local.ticket_key, digest_size=_TICKET_MAC)
    mac.update(_LENGTH.pack(len(identity)) + identity + _STAMP.pack(stamp))
    mac.update(hello)
    return _STAMP.pack(stamp) + mac.digest()


def accept(local: Local, identity: bytes, data: bytes, now: float) -> list[Event]:
    """A frame from a connection (`identity`) that has no Connection yet: a HELLO gets a
    CHALLENGE (`Reply`), a good ACK becomes `Accepted`; the rest is `Dropped` (a bad
    cookie and a wrong node name also get a REJECT)."""
    try:
        if len(data) > MAX_HANDSHAKE_FRAME:
            raise FrameError("too_big", f"a handshake frame of {len(data)} bytes")
        kind = codec.peek_kind(data)
        if kind == Kind.HELLO:
            return _on_hello(local, identity, data, now)
        if kind == Kind.ACK:
            return _on_ack(local, identity, data, now)
        raise FrameError("unknown_connection", f"a {kind.name} before any handshake")
    except FrameError as exc:
        return [Dropped(exc.reason, exc.detail)]


def _on_hello(local: Local, identity: bytes, data: bytes, now: float) -> list[Event]:
    try:
        frame = codec.open_frame(local.handshake_key, data, MAX_HANDSHAKE_FRAME)
    except FrameError as exc:
        if exc.reason == "bad_tag":
            return [Dropped("bad_tag", "a HELLO: wrong cookie"), Reply(codec.reject_frame(
                "bad_cookie"), "")]
        raise
    hello = codec.decode_hello(frame.payload)
    if hello.receiver != local.name or hello.sender == local.name:
        return [Dropped("wrong_node", hello.receiver),
                Reply(codec.reject_frame("wrong_node"), hello.sender)]
    stamp = int(now * 1000) & 0xFFFFFFFF
    nonce_b = _ticket(local, identity, stamp, frame.payload)
    challenge = codec.Challenge(local.name, hello.sender, hello.nonce, nonce_b, local.creation)
    return [Reply(codec.seal(local.handshake_key, Kind.CHALLENGE, 0,
                             codec.encode_challenge(challenge)), hello.sender)]


def _on_ack(local: Local, identity: bytes, data: bytes, now: float) -> list[Event]:
    # The payload is read before the tag is checked, because it names the key; nothing in it
    # is used before the ticket, keyed by our secret, proves we issued it for this HELLO.
    ack = codec.decode_ack(data[codec.HEADER_SIZE:-codec.TAG_SIZE])
    hello = ack.hello
    stamp = _STAMP.unpack_from(ack.nonce_echo)[0]
    want = _ticket(local, identity, stamp, codec.encode_hello(hello))
    if not hmac.compare_digest(want, ack.nonce_echo):
        raise FrameError("bad_ticket")
    if (int(now * 1000) - stamp) & 0xFFFFFFFF > local.setup_s * 1000:
        raise FrameError("stale_ticket")
    if hello.receiver != local.name or hello.sender == local.name:
        raise FrameError("wrong_node", hello.receiver)
    key = codec.session_key(local.handshake_key, hello.nonce, ack.nonce_echo, hello.sender,
                            local.name)
    opener = codec.Opener(key, local.max_frame)
    if opener.open(data).kind != Kind.ACK:
        raise FrameError("bad_kind", "expected ACK")
    return [Accepted(hello, opener)]


# --- one peer, both halves ---------------------------------------------------------------------


class Connection:
    """Both halves of the connection to `peer`. See the module's rules."""

    def __init__(self, local: Local, peer: str, now: float) -> None:
        self.local = local
        self.peer = peer
        self.started = now
        self.last_heard = now
        self.last_tick = now
        self.out_up = False  # our half: the peer answered our HELLO; we may send
        self.up = False  # both halves: the peer may be listed
        self.down = False
        self._hello: codec.Hello | None = None
        self._sealer: codec.Sealer | None = None
        self._opener: codec.Opener | None = None
        self._outbox: list[bytes] = []  # length-prefixed parts not yet sealed
        self._early: list[list[bytes]] = []  # DATA received before `up`
        self._pending: list[bytes] = []  # MORE fragments of a payload not yet complete
        self._pending_size = 0
        self._room = min(BATCH_BYTES, local.max_frame - FRAME_OVERHEAD)
        self._max_message = local.max_message

    @property
    def in_up(self) -> bool:
        """Their half is proven (its ACK verified)."""
        return self._opener is not None

    # -- our half -------------------------------------------------------------------------------

    def start(self, nonce: bytes) -> bytes:
        """The HELLO that opens our half (`nonce`: 16 fresh random bytes)."""
        local = self.local
        self._hello = codec.Hello(local.name, self.peer, nonce, local.address, local.creation)
        return codec.seal(local.handshake_key, Kind.HELLO, 0, codec.encode_hello(self._hello))

    def receive_reply(self, data: bytes, now: float) -> list[Event]:
        """A frame from the peer on our half's channel: its CHALLENGE or REJECT."""
        if self.down or self.out_up or self._hello is None:
            return [Dropped("unexpected", "a frame on our half after its handshake")]
        try:
            if codec.peek_kind(data) == Kind.REJECT:
                reason = codec.open_reject(data)
                return [Refused(reason), *self.close(reason)]
            frame = codec.open_frame(self.local.handshake_key, data, MAX_HANDSHAKE_FRAME)
            if frame.kind != Kind.CHALLENGE:
                raise FrameError("bad_kind", "expected CHALLENGE")
            challenge = codec.decode_challenge(frame.payload)
        except FrameError as exc:
            return [Dropped(exc.reason, exc.detail), *self.close("bad_cookie")]
        hello = self._hello
        if (challenge.nonce_echo != hello.nonce or challenge.sender != self.peer
                or challenge.receiver != self.local.name):
            return [Dropped("bad_challenge")]
        key = codec.session_key(self.local.handshake_key, hello.nonce, challenge.nonce,
                                self.local.name, self.peer)
        self._sealer = codec.Sealer(key)
        ack = self._sealer.seal(Kind.ACK, codec.encode_ack(codec.Ack(challenge.nonce, hello)))
        self.out_up = True
        return [Send((ack, *self.flush())), *self._maybe_up()]

    def queue(self, part: bytes) -> None:
        """Queue one part (opaque bytes, at most `Local.max_message`) for the next flush."""
        if len(part) > self._max_message:
            raise ValueError(f"a part of {len(part)} bytes is over {self._max_message}")
        self._outbox.append(_LENGTH.pack(len(part)) + part)

    def flush(self) -> list[bytes]:
        """Seal what is queued into frames to send in order; none until our half is up.
        Parts share a DATA frame up to BATCH_BYTES; a part over a frame is cut (MORE)."""
        sealer, outbox = self._sealer, self._outbox
        if sealer is None or not outbox or self.down:
            return []
        self._outbox = []
        if len(outbox) == 1 and len(outbox[0]) <= self._room:
            return [sealer.seal(_DATA, outbox[0])]
        frames: list[bytes] = []
        room = self.local.max_frame - FRAME_OVERHEAD
        start = 0
        while start < len(outbox):
            end, size = start + 1, len(outbox[start])
            while end < len(outbox) and size + len(outbox[end]) <= BATCH_BYTES:
                size += len(outbox[end])
                end += 1
            payload = b"".join(outbox[start:end])
            view = memoryview(payload)
            while len(view) > room:
                frames.append(sealer.seal(Kind.MORE, bytes(view[:room])))
                view = view[room:]
            frames.append(sealer.seal(Kind.DATA, bytes(view)))
            start = end
        return frames

    # -- their half ----------------------------------------------------------------------------

    def attach(self, accepted: Accepted, now: float) -> list[Event]:
        """Their half, proven by `accept`. A second one is refused: the caller replaces the
        whole connection when a peer reconnects."""
        if self.down or self._opener is not None or accepted.hello.sender != self.peer:
            return [Dropped("unexpected", "a second half from the same peer")]
        self._opener = accepted.opener
        self.last_heard = now
        return self._maybe_up()

    def receive(self, data: bytes, now: float) -> list[Event]:
        """A frame on their half, after its ACK."""
        opener = self._opener
        if opener is None or self.down:
            return [Dropped("unknown_connection")]
        try:
            frame = opener.open(data)
        except FrameError as exc:
            if exc.reason in ("replay", "seq_gap"):  # authentic, so someone on the path
                return [Dropped(exc.reason, exc.detail), *self.close(exc.reason)]
            return [Dropped(exc.reason, exc.detail)]
        self.last_heard = now
        kind, payload = frame.kind, frame.payload
        if kind is _DATA and not self._pending:
            size = len(payload) - 4  # the common case, one part, without a loop
            parts = ([payload[4:]] if size >= 0 and _LENGTH.unpack_from(payload)[0] == size
                     else split_parts(payload))
        elif kind is _TICK:
            return []
        else:
            return self._unusual(frame)
        return self._arrived(parts)

    def _unusual(self, frame: Frame) -> list[Event]:
        """A fragment, the end of a fragmented payload, or an authentic frame out of place."""
        if frame.kind is Kind.MORE or frame.kind is Kind.DATA:
            self._pending.append(frame.payload)
            self._pending_size += len(frame.payload)
            if self._pending_size > self.local.max_message + 4:
                return [Dropped("too_big", "a fragmented payload"), *self.close("too_big")]
            if frame.kind is Kind.MORE:
                return []
            payload = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            return self._arrived(split_parts(payload))
        return [Dropped("bad_kind", frame.kind.name), *self.close("bad_kind")]

    def _arrived(self, parts: list[bytes] | None) -> list[Event]:
        """A whole payload's parts (None: a malformed batch): delivered once the connection
        is up, kept in order until then."""
        if parts is None:
            return [Dropped("bad_batch"), *self.close("bad_batch")]
        if self.up:
            return [Data(parts)]
        self._early.append(parts)
        return []

    # -- both --------------------------------------------------------------------------------

    def _maybe_up(self) -> list[Event]:
        if self.up or self.down or not self.out_up or self._opener is None:
            return []
        self.up = True
        early, self._early = self._early, []
        return [Up(), *(Data(parts) for parts in early)]

    def tick(self, now: float, *, quiet: bool = False) -> list[Event]:
        """Timers: `Down` after `ticktime_s` of silence (once up) or `setup_s` (before),
        else a TICK (or the queued parts) every ticktime/4 unless `quiet` (a cut cable)."""
        local = self.local
        if self.down:
            return []
        if self.up and now - self.last_heard > local.ticktime_s:
            return self.close("net_tick_timeout")
        if not self.up and now - self.started > local.setup_s:
            return self.close("setup_timeout")
        if (self._sealer is None or quiet
                or now - self.last_tick < local.ticktime_s / 4 - 0.001):
            return []
        self.last_tick = now
        frames = self.flush() or [self._sealer.seal(Kind.TICK)]
        return [Send(tuple(frames))]

    def close(self, reason: str) -> list[Event]:
        """End the connection: `Down(reason)` the first time, nothing after."""
        if self.down:
            return []
        was_up = self.up
        self.down = True
        self.up = self.out_up = False
        self._outbox, self._early, self._pending = [], [], []
        return [Down(reason, was_up)]
