"""Routing frames from the link to the peers' connections, and opening our halves.

Rules of this module:
- Everything here runs on the link's I/O thread.
- The protocol (handshake, session, order, ticks) is `transport.connection`'s; this module
  only finds the `Connection` a frame belongs to, feeds it, and hands its events to the
  distribution (the callables it was given).
- A frame from a connection we do not know goes to `connection.accept`, which keeps no
  state: only a verified ACK creates anything (the peer's half, and our dial-back).
- A verified ACK from a peer whose half is already up replaces the whole connection: the
  peer restarted or gave us up. Two replacements that cross are settled by name
  (`_crossing`), or the two nodes would replace each other for ever.
- A cut cable (`block`) loses frames, but a handshake it catches is delayed, not lost, as
  TCP's retransmissions would deliver it: our answer to a blocked node's first step is
  held, and sent if the cable is mended within the setup time (`release_held`). Otherwise a
  node that dialled across a heal still in progress would wait out its setup time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable

from transport import codec
from transport.connection import Accepted, Dropped, Event, Local, Reply, accept
from transport.zmq_link import ZmqLink

from ._dist_records import Peer, PeerTable

log = logging.getLogger("actors.dist")


#: Carry out a connection's events, in order (`Distribution._act`).
Act = Callable[[Peer, list[Event]], None]
#: Run a sealing step under the peer's lock; the events other than Send (`_locked`).
Locked = Callable[[Peer, Callable[[], list[Event]]], list[Event]]
#: Take the peer down, once (`_down`).
Down = Callable[[Peer, str], None]
#: With the table's lock held: a new peer record, listed under its name (`_new_peer`).
NewPeer = Callable[[str, str | None], Peer]
#: Answers held for blocked nodes at most (the oldest go first): a bound on junk hellos.
HELD_MAX = 64


class Handshake:
    """Feeds each frame from the link to its peer's connection; opens our halves."""

    def __init__(self, name: str, link: ZmqLink, table: PeerTable, local: Local,
                 rejected: Counter[str], *, act: Act, locked: Locked, down: Down,
                 new_peer: NewPeer) -> None:
        self.name = name
        self._link = link
        self._table = table
        self._local = local
        self._rejected = rejected
        self._act = act
        self._locked = locked
        self._down = down
        self._new_peer = new_peer
        self._refusal_logged_at = -1e9
        self._refused_unlogged = 0
        # (when, to, identity, frame): answers to blocked nodes' first steps (`release_held`)
        self._held: deque[tuple[float, str, bytes, bytes]] = deque(maxlen=HELD_MAX)

    # -- our half (I/O thread) ----------------------------------------------------------------

    def open(self, peer: Peer) -> None:
        """Open our half towards `peer` (its address is known) and send the first step."""
        if peer.down:
            return
        assert peer.address is not None
        peer.channel = self._link.open_channel(peer.address)
        self._table.by_channel[peer.channel] = peer
        self._link.send(peer.channel, peer.conn.start(codec.new_nonce()))

    def on_outbound(self, channel: int, data: bytes) -> None:
        peer = self._table.by_channel.get(channel)
        if peer is None or peer.out_up or peer.name in self._table.blocked:
            return
        events = self._locked(peer, lambda: peer.conn.receive_reply(data, time.monotonic()))
        if peer.out_up:
            self._link.stop_reading(channel)
        for event in events:
            if type(event) is Dropped and event.reason != "bad_challenge":
                log.error("node %s: connection to %s failed authentication (%s): check the "
                          "cookie", self.name, peer.name, event.reason)
        self._act(peer, events)

    def on_channel_lost(self, channel: int) -> None:
        peer = self._table.by_channel.get(channel)
        if peer is not None:
            self._down(peer, "connection_closed" if peer.out_up else "unreachable")

    # -- their half, and data (I/O thread) ------------------------------------------------------

    def on_inbound(self, identity: bytes, data: bytes) -> None:
        peer = self._table.inbound.get(identity)
        if peer is None:
            self._on_new(identity, data)
        elif peer.name not in self._table.blocked:
            events = peer.conn.receive(data, time.monotonic())
            if events:
                self._act(peer, events)

    def _on_new(self, identity: bytes, data: bytes) -> None:
        """A frame from a connection with no peer yet: a handshake step, or junk."""
        for event in accept(self._local, identity, data, time.monotonic()):
            if type(event) is Reply:
                if event.to in self._table.blocked:
                    self._held.append((time.monotonic(), event.to, identity, event.frame))
                else:
                    self._link.reply(identity, event.frame)
            elif type(event) is Accepted:
                self._on_accepted(identity, event)
            elif type(event) is Dropped:
                self._rejected[event.reason] += 1
                log.debug("node %s: dropped a handshake frame: %s %s", self.name,
                          event.reason, event.detail)
                if event.reason == "bad_tag":
                    self._log_refusal()

    def held_answers(self) -> int:
        """How many answers to blocked nodes are held (any thread)."""
        return len(self._held)

    def release_held(self) -> None:
        """Send the held answers whose node is no longer blocked, if the dialler still waits
        (younger than the setup time); keep those still blocked."""
        now, blocked, keep = time.monotonic(), self._table.blocked, []
        while self._held:
            held = self._held.popleft()
            at, to, identity, frame = held
            if now - at >= self._local.setup_s:
                continue
            if to in blocked:
                keep.append(held)
            else:
                self._link.reply(identity, frame)
        self._held.extend(keep)

    def _on_accepted(self, identity: bytes, event: Accepted) -> None:
        name = event.hello.sender
        if name in self._table.blocked:
            return  # a cut cable
        peer = self._table.by_name.get(name)
        replacing = peer is not None and not peer.down and peer.conn.in_up
        if peer is not None and replacing:
            if self._crossing(peer, event):
                self._rejected["crossing"] += 1
                return
            self._down(peer, "reconnected")  # proven new: the peer restarted or gave us up
            peer = None
        if peer is None or peer.down:
            peer = self._dial_back(name, event.hello.address)
            if replacing:
                peer.replaced_at = time.monotonic()
        peer.identity = identity
        peer.creation = event.hello.creation
        self._table.inbound[identity] = peer
        self._act(peer, peer.conn.attach(event, time.monotonic()))

    def _crossing(self, peer: Peer, event: Accepted) -> bool:
        """Both nodes replacing their connection at once. Each replacement dials back, and
        its dial-back reaches the other node's own fresh replacement, whose peer half is up:
        replaced in turn, that one dials back too, and so on for ever. So a new half that
        meets a replacement younger than the setup time, from the same incarnation of the
        peer, is dropped by the node with the greater name; the other node replaces as
        before. The dropped half's node then hears nothing on the half it kept from us
        (we gave it up), takes the connection down after net_ticktime like any silent one,
        and dials a plain connection, which our replacement accepts."""
        return (peer.replaced_at is not None
                and time.monotonic() - peer.replaced_at < self._local.setup_s
                and event.hello.creation == peer.creation
                and self.name > event.hello.sender)

    def _dial_back(self, name: str, address: str) -> Peer:
        """Our half towards a node that connects to us, unless we have one."""
        with self._table.lock:
            peer = self._table.by_name.get(name)
            if peer is not None and not peer.down:
                return peer
            peer = self._new_peer(name, address)
        self.open(peer)
        return peer

    def _log_refusal(self) -> None:
        """Log refused connections, at most one line a second (a flood must not flood logs)."""
        now = time.monotonic()
        self._refused_unlogged += 1
        if now - self._refusal_logged_at >= 1.0:
            log.error("node %s: refused %d connection attempt(s) that failed authentication: "
                      "wrong cookie or forged frames", self.name, self._refused_unlogged)
            self._refusal_logged_at = now
            self._refused_unlogged = 0
