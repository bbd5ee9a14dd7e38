"""The handshake of both halves of a connection, and the routing of inbound frames.

Rules of this module:
- Everything here runs on the link's I/O thread.
- Nothing is parsed before it is authenticated: a HELLO and a CHALLENGE by the cookie's
  key, an ACK and everything after it by the session key of that half.
- A HELLO proves nothing fresh (it may be a replay), so it changes no live connection;
  only a verified ACK replaces an old half of the same peer.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from transport import codec
from transport.codec import FrameError, Kind

from ._dist_records import MAX_HANDSHAKE_FRAME, MAX_PENDING_HANDSHAKES, InboundHalf, Peer

if TYPE_CHECKING:
    from ._dist import Distribution

log = logging.getLogger("actors.dist")


class Handshake:
    """Mixed into `Distribution`."""

    # -- our half: the handshake as initiator (I/O thread) ------------------------------------

    def _open(self: Distribution, peer: Peer) -> None:
        if peer.down:
            return
        assert peer.address is not None
        peer.nonce = codec.new_nonce()
        peer.channel = self._link.open_channel(peer.address)
        self._by_channel[peer.channel] = peer
        hello = codec.Hello(self.name, peer.name, peer.nonce, self.address, self.creation)
        frame = codec.seal(self._hs_key, Kind.HELLO, 0, codec.encode_hello(hello))
        self._link.send(peer.channel, frame)

    def on_outbound(self: Distribution, channel: int, data: bytes) -> None:
        peer = self._peer_of_channel(channel)
        if peer is None or peer.out_up or peer.name in self._blocked:
            return
        try:
            kind = codec.peek_kind(data)
            if kind == Kind.REJECT:
                reason = codec.open_reject(data)
                log.error("node %s: %s refused our connection: %s", self.name, peer.name, reason)
                self._down(peer, reason)
                return
            frame = codec.open_frame(self._hs_key, data, MAX_HANDSHAKE_FRAME)
            if frame.kind != Kind.CHALLENGE:
                raise FrameError("bad_kind", "expected CHALLENGE")
            challenge = codec.decode_challenge(frame.payload)
        except FrameError as exc:
            self._reject(exc, f"handshake reply from {peer.name}")
            log.error("node %s: connection to %s failed authentication (%s): check the cookie",
                      self.name, peer.name, exc.reason)
            self._down(peer, "bad_cookie")
            return
        if (challenge.nonce_echo != peer.nonce or challenge.sender != peer.name
                or challenge.receiver != self.name):
            self.rejected["bad_challenge"] += 1
            return
        key = codec.session_key(self.config.cookie, peer.nonce, challenge.nonce, self.name,
                                peer.name)
        with peer.lock:
            peer.sealer = codec.Sealer(key)
            self._link.stop_reading(channel)
            ack = peer.sealer.seal(Kind.ACK, codec.encode_ack(codec.Ack(challenge.nonce)))
            peer.unsent.append(ack)  # first, then whatever waited for the connection
            self._flush_locked(peer)
            peer.out_up = True
        self._maybe_up(peer)

    def _peer_of_channel(self: Distribution, channel: int) -> Peer | None:
        return self._by_channel.get(channel)

    def on_channel_lost(self: Distribution, channel: int) -> None:
        peer = self._peer_of_channel(channel)
        if peer is not None:
            self._down(peer, "connection_closed" if peer.out_up else "unreachable")

    # -- their half: the handshake as responder, and data (I/O thread) ----------------------

    def on_inbound(self: Distribution, identity: bytes, data: bytes) -> None:
        half = self._inbound.get(identity)
        if half is None:
            self._on_hello(identity, data)
            return
        if half.peer in self._blocked:
            return
        if half.opener is None:
            self._on_ack(half, data)
            return
        try:
            frame = half.opener.open(data)
        except FrameError as exc:
            self._reject(exc, f"frame from {half.peer}")
            return
        peer = self._peers.get(half.peer)
        if peer is None or peer.inbound is not half:
            return
        peer.last_heard = time.monotonic()
        if frame.kind == Kind.DATA:
            if peer.up:
                self._deliver(half.peer, frame)
            else:  # delivered once the peer is listed in nodes(), as in Erlang
                peer.early.append(frame)

    def _on_hello(self: Distribution, identity: bytes, data: bytes) -> None:
        """A new connection's first frame. It must be a HELLO sealed with the cookie. A HELLO
        proves nothing fresh (it could be a replay), so it changes no live connection: the
        new half only replaces an old one once its ACK proves it (`_on_ack`)."""
        try:
            if codec.peek_kind(data) != Kind.HELLO:
                raise FrameError("unknown_connection", "a frame before any HELLO")
            if len(data) > MAX_HANDSHAKE_FRAME:
                raise FrameError("too_big", f"a HELLO of {len(data)} bytes")
            frame = codec.open_frame(self._hs_key, data, MAX_HANDSHAKE_FRAME)
            hello = codec.decode_hello(frame.payload)
        except FrameError as exc:
            self._reject(exc, "a connection attempt")
            if exc.reason == "bad_tag":
                self._log_refusal()
                self._link.reply(identity, codec.reject_frame("bad_cookie"))
            return
        if hello.sender in self._blocked:
            return  # a cut cable
        if hello.receiver != self.name or hello.sender == self.name:
            self.rejected["wrong_node"] += 1
            self._link.reply(identity, codec.reject_frame("wrong_node"))
            return
        if len(self._inbound) >= MAX_PENDING_HANDSHAKES:
            self.rejected["too_many_handshakes"] += 1
            return
        nonce_b = codec.new_nonce()
        self._inbound[identity] = InboundHalf(identity, hello.sender, hello.nonce, nonce_b,
                                           time.monotonic(), hello.address)
        challenge = codec.Challenge(self.name, hello.sender, hello.nonce, nonce_b, self.creation)
        self._link.reply(identity, codec.seal(self._hs_key, Kind.CHALLENGE, 0,
                                              codec.encode_challenge(challenge)))
        self._dial_back(hello.sender, hello.address)

    def _dial_back(self: Distribution, name: str, address: str) -> Peer:
        """Our half towards a node that connects to us, unless we have one."""
        with self._lock:
            peer = self._peers.get(name)
            if peer is not None and not peer.down:
                return peer
            peer = Peer(name, address=address, started=time.monotonic())
            self._peers[name] = peer
        self._open(peer)
        return peer

    def _log_refusal(self: Distribution) -> None:
        """Log refused connections, at most one line a second (a flood must not flood logs)."""
        now = time.monotonic()
        self._refused_unlogged += 1
        if now - self._refusal_logged_at >= 1.0:
            log.error("node %s: refused %d connection attempt(s) that failed authentication: "
                      "wrong cookie or forged frames", self.name, self._refused_unlogged)
            self._refusal_logged_at = now
            self._refused_unlogged = 0

    def _on_ack(self: Distribution, half: InboundHalf, data: bytes) -> None:
        key = codec.session_key(self.config.cookie, half.nonce_a, half.nonce_b, half.peer,
                                self.name)
        opener = codec.Opener(key, self.config.max_frame)
        try:
            if len(data) > MAX_HANDSHAKE_FRAME:
                raise FrameError("too_big", f"an ACK of {len(data)} bytes")
            frame = opener.open(data)
            if frame.kind != Kind.ACK or codec.decode_ack(frame.payload).nonce_echo != half.nonce_b:
                raise FrameError("bad_ack")
        except FrameError as exc:
            self._reject(exc, f"handshake from {half.peer}")
            return
        peer = self._peers.get(half.peer)
        if peer is not None and peer.inbound is not None and not peer.down:
            self._down(peer, "reconnected")  # proven new: the peer restarted or gave us up
            peer = None
        if peer is None or peer.down:
            peer = self._dial_back(half.peer, half.address)
        half.opener = opener
        peer.inbound = half
        peer.last_heard = time.monotonic()
        self._maybe_up(peer)
