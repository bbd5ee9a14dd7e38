"""Distribution: one node's connections to other nodes, the I/O shell around
`transport.connection` (which holds the protocol: handshake, session, order, ticks, batches).

Rules of this module:
- It owns the `ZmqLink` and the peer table, feeds each peer's `Connection` the frames and
  the time, and acts on the events it returns: sealed frames to send, `Up`, `Data` to
  unpickle and deliver, `Down`, and frames dropped (counted in `rejected`).
- A connection to a peer is two halves, one per direction. Our half is our DEALER to the
  peer's ROUTER; theirs is the reverse. The peer is in `nodes()`, and "nodeup" is told,
  once both halves are up; nothing from a peer is delivered before, as in Erlang.
- A peer goes down exactly once (`_down`): when our DEALER loses its connection (a killed
  peer, detected by the socket at once), when its connection says so (silence for
  `net_ticktime` ms, setup over `setup_time`, frames deleted or replayed on the path), or
  on `disconnect`. The node then turns the loss into noconnection exits and DOWNs
  (`_remote.nodedown`).
- Nothing is unpickled that the connection did not deliver as `Data`.
- Sends are batched only when it costs no latency. A send flushes the peer's queue at once
  (in the sender's thread) unless the previous send to that peer was under `BURST_NS` ago:
  then it only queues, and the I/O thread flushes the whole burst as one frame. A "lazy"
  control (a demonitor) just waits for the next flush or tick.
- Every call that seals frames (`queue`/`flush`, `receive_reply`, `tick`, `close`) runs
  under the peer's lock, and its frames are handed to ZeroMQ before the lock is released,
  so frames leave in seal order. Everything else runs on the link's I/O thread.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transport import codec, epmd
from transport.connection import Connection, Data, Down, Dropped, Event, Local, Refused, Send, Up
from transport.zmq_link import CLOSED, FULL, SENT, ZmqLink

from . import _inline, _thread
from ._dist_handshake import Handshake
from ._dist_pickle import dumps
from ._dist_records import DistConfig, Peer, PeerTable
from ._inline import InlineRunner
from ._terms import Error

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("actors.dist")

BURST_NS = 40_000  # a send this soon after the previous one to a peer joins a batch
MAX_MESSAGE = 64 * 1024 * 1024  # the biggest pickled message a node sends or accepts


class Distribution:
    """The distribution of one node. `start()` binds, registers with epmd and starts I/O.
    Frames from the link go to its `Handshake` part, whose methods are bound onto it."""

    def __init__(self, node: Node, config: DistConfig) -> None:
        self.node = node
        self.config = config
        self.name = node.name
        self.creation = node.creation
        self._table = table = PeerTable()
        self._lock = table.lock
        self._peers = table.by_name
        self._inbound = table.inbound  # their halves, by connection identity
        self._by_channel = table.by_channel  # our halves, by channel
        self._blocked = table.blocked
        self.rejected: Counter[str] = Counter()
        self._link = ZmqLink(self, bind=config.listen, max_frame=config.max_frame,
                             timer_ms=max(5, config.net_ticktime // 8),
                             curve=config.curve, name=node.name, trusted=self._inbound)
        self.address = config.advertise or self._advertised(self._link.address)
        self._local = Local(self.name, self.address, self.creation, config.cookie,
                            codec.handshake_key(config.cookie), os.urandom(32),
                            max_frame=config.max_frame, max_message=MAX_MESSAGE,
                            setup_s=config.setup_time / 1000.0,
                            ticktime_s=config.net_ticktime / 1000.0)
        self._registration: epmd.Registration | None = None
        self._runner: InlineRunner | None = None  # the leading thread's (see `_inline`)
        handshake = Handshake(self.name, self._link, table, self._local, self.rejected,
                              act=self._act, locked=self._locked, down=self._down,
                              new_peer=self._new_peer)
        self._open = handshake.open
        self.on_outbound = handshake.on_outbound
        self.on_inbound = handshake.on_inbound
        self.on_channel_lost = handshake.on_channel_lost
        self._release_held = handshake.release_held
        self.held_answers = handshake.held_answers

    def _advertised(self, bound: str) -> str:
        host = self.name.split("@", 1)[1]
        if "://0.0.0.0:" in bound or "://*:" in bound:
            return f"tcp://{host}:{bound.rsplit(':', 1)[1]}"
        return bound

    def start(self) -> None:
        if self.config.epmd:
            host = self.name.split("@", 1)[1]
            port = epmd.ensure_running(self.config.epmd_port)
            try:
                self._registration = epmd.register(self.name, self.address, port)
            except epmd.EpmdError as exc:
                self._link.close()
                raise Error(("name_in_use" if exc.reason == "taken" else "epmd", self.name,
                             host)) from None
        self._link.start()

    def stop(self) -> None:
        for peer in list(self._peers.values()):
            self._link.call_soon(functools.partial(self._down, peer, "disconnect"))
        self._link.close()
        if self._registration is not None:
            self._registration.close()

    # -- what the node asks -----------------------------------------------------------------

    def nodes(self) -> list[str]:
        with self._lock:
            return sorted(name for name, peer in self._peers.items() if peer.up)

    def is_up(self, name: str) -> bool:
        peer = self._peers.get(name)
        return peer is not None and peer.up

    def send(self, name: str, control: Any, *, autoconnect: bool = True,
             lazy: bool = False) -> None:
        """Send one control tuple to node `name`, in order with every other send to it.

        Connects first if needed (frames wait until the connection is up). If the peer is or
        becomes unreachable, the frames are dropped and the node's nodedown sweep turns its
        links and monitors into noconnection signals."""
        payload = dumps(control)
        if len(payload) > MAX_MESSAGE:
            log.error("node %s: a message to %s of %d bytes is over %d bytes: not sent",
                      self.name, name, len(payload), MAX_MESSAGE)
            raise Error(("badarg", ("message_too_large", len(payload))))
        if name in self._blocked:  # a cut cable: the frame is lost
            if autoconnect and ((known := self._peers.get(name)) is None or known.down):
                self.connect(name)  # fails at once, so new links and monitors get noconnection
            return
        peer = self._peers.get(name)
        if peer is None or peer.down:
            if not autoconnect:
                return
            peer = self.connect(name)
        schedule = False
        state = SENT
        conn = peer.conn
        with peer.lock:
            if conn.down:
                return
            conn.queue(payload)
            if lazy or not conn.out_up:
                return
            now = time.perf_counter_ns()
            if now - peer.last_send < BURST_NS:
                schedule = not peer.flush_scheduled
                peer.flush_scheduled = True
            else:
                state = self._push_locked(peer, conn.flush())
            peer.last_send = now
        if schedule:
            self._link.call_soon(lambda: self._flush(peer))
        if state == FULL:
            _inline.before_block()  # a process run on the I/O thread: hand the role on
            if not self._link.on_io_thread():
                self._wait_for_room(peer)

    def _wait_for_room(self, peer: Peer) -> None:
        """Back-pressure, as a busy dist port: the sender waits (not holding the peer's lock)
        until ZeroMQ takes the frames left over, or the peer is down."""
        while not peer.down:
            time.sleep(0.001)
            with peer.lock:
                if peer.down or self._push_locked(peer, ()) != FULL:
                    return

    def _flush(self, peer: Peer) -> None:
        """I/O thread: flush a burst. It never waits: a full queue waits for the next try."""
        with peer.lock:
            peer.flush_scheduled = False
            state = self._push_locked(peer, peer.conn.flush()) if peer.out_up else SENT
        if state == CLOSED:
            self._down(peer, "connection_closed")

    def _push_locked(self, peer: Peer, frames: list[bytes] | tuple[bytes, ...]) -> str:
        """With `peer.lock` held: hand `frames` to ZeroMQ after those left over, in order,
        while it takes them; SENT, FULL or CLOSED."""
        unsent, send, channel = peer.unsent, self._link.send, peer.channel
        if channel is None:
            return CLOSED
        if not unsent:
            for i, frame in enumerate(frames):
                state = send(channel, frame)
                if state != SENT:
                    unsent.extend(frames[i:])
                    return state
            return SENT
        unsent.extend(frames)
        while unsent:
            state = send(channel, unsent[0])
            if state != SENT:
                return state
            unsent.popleft()
        return SENT

    def _locked(self, peer: Peer, step: Callable[[], list[Event]]) -> list[Event]:
        """Run a sealing step of the peer's connection under its lock, hand its frames to
        ZeroMQ before releasing it, and return the other events (a failed push adds Down)."""
        with peer.lock:
            events = step()
            rest: list[Event] = []
            for event in events:
                if type(event) is Send:
                    if self._push_locked(peer, event.frames) == CLOSED:
                        rest.extend(peer.conn.close("connection_closed"))
                else:
                    rest.append(event)
            if peer.conn.down:
                peer.unsent.clear()
        return rest

    def connect(self, name: str) -> Peer:
        """Start connecting to `name` unless a connection exists. Returns its peer record;
        `peer.done` is set once it is up (peer.up) or has failed (peer.down)."""
        with self._lock:
            peer = self._peers.get(name)
            if peer is not None and not peer.down:
                return peer
            peer = self._new_peer(name, None)
        blocked = name in self._blocked
        address = None if blocked else self._address_of(name)
        if address is None:
            reason = "blocked" if blocked else "unreachable"
            self._link.call_soon(lambda: self._down(peer, reason))
        else:
            peer.address = address
            self._link.call_soon(lambda: self._open(peer))
        return peer

    def _new_peer(self, name: str, address: str | None) -> Peer:
        """With `self._lock` held: a new peer record, listed under its name."""
        peer = Peer(name, Connection(self._local, name, time.monotonic()), address=address)
        self._peers[name] = peer
        return peer

    def connect_wait(self, name: str) -> bool:
        """net_kernel:connect_node: True once connected, False if it cannot be."""
        if name == self.name:
            return True
        peer = self.connect(name)
        peer.done.wait(self.config.setup_time / 1000.0 + 1.0)
        return peer.up

    def disconnect(self, name: str) -> bool:
        peer = self._peers.get(name)
        if peer is None or not peer.up:
            return False
        self._link.call_soon(lambda: self._down(peer, "disconnect"))
        peer.done.wait(2.0)
        return True

    def block(self, names: list[str]) -> None:
        """Partition injection: drop every frame to and from these nodes until `unblock`."""
        with self._lock:
            self._blocked.update(names)

    def unblock(self, names: list[str] | None = None) -> None:
        """Mend the cable to `names` (all if None): handshakes it caught within the setup
        time go on (see `_dist_handshake`)."""
        with self._lock:
            if names is None:
                self._blocked.clear()
            else:
                self._blocked.difference_update(names)
        self._link.call_soon(self._release_held)

    def _address_of(self, name: str) -> str | None:
        if name in self.config.seeds:
            return self.config.seeds[name]
        if "@" not in name:
            return None
        host = name.split("@", 1)[1]
        try:
            return epmd.lookup(name, self.config.epmd_port, host=host)
        except epmd.EpmdError:
            return None

    # -- acting on the connection's events (I/O thread) -------------------------------------

    def _act(self, peer: Peer, events: list[Event]) -> None:
        """Carry out what a peer's connection asked for, in order (no Send here: `_locked`)."""
        for event in events:
            kind = type(event)
            if kind is Data:
                self._deliver(peer.name, event.parts)  # type: ignore[union-attr]
            elif kind is Up:
                self._on_up(peer)
            elif kind is Down:
                self._on_down(peer, event)  # type: ignore[arg-type]
            elif kind is Dropped:
                self.rejected[event.reason] += 1  # type: ignore[union-attr]
                log.debug("node %s: dropped a frame from %s: %s %s", self.name, peer.name,
                          event.reason, event.detail)  # type: ignore[union-attr]
            elif kind is Refused:
                log.error("node %s: %s refused our connection: %s", self.name, peer.name,
                          event.reason)  # type: ignore[union-attr]

    def _deliver(self, sender: str, parts: list[bytes]) -> None:
        """Unpickle and handle each control of a DATA payload, in order. Consecutive sends
        to one process are delivered together (one lock, one wake-up)."""
        handle = self.node.remote.handle
        run_id: Any = None
        run: list[Any] = []
        for part in parts:
            try:
                control = pickle.loads(part)
            except Exception as exc:
                self.rejected["unpicklable"] += 1
                log.error("node %s: dropped a message from %s that does not unpickle: %r",
                          self.name, sender, exc)
                continue
            if type(control) is tuple and len(control) == 3 and control[0] == "send":
                if control[1] != run_id:
                    self._deliver_run(run_id, run)
                    run_id, run = control[1], []
                run.append(control[2])
            else:
                self._deliver_run(run_id, run)
                run_id, run = None, []
                try:
                    handle(sender, control)
                except Exception:  # one bad control must not cost the rest of the frame
                    log.exception("node %s: error handling a control from %s", self.name,
                                  sender)
        self._deliver_run(run_id, run)

    def _deliver_run(self, pid_id: Any, msgs: list[Any]) -> None:
        if msgs:
            proc = self.node.lookup_id(pid_id)
            if proc is not None:
                proc.deliver_many(msgs)

    def _on_up(self, peer: Peer) -> None:
        peer.done.set()
        log.debug("node %s: %s is up", self.name, peer.name)
        self.node.remote.nodeup(peer.name)
        mesh = [(p.name, p.address) for p in self._peers.values()
                if p.up and p is not peer and p.address]
        if mesh:
            self.send(peer.name, ("mesh", mesh), autoconnect=False)

    def learn_mesh(self, peers: list[tuple[str, str]]) -> None:
        """Connect to the nodes a new peer is connected to: the cluster stays a full mesh."""
        for name, address in peers:
            if name == self.name or name in self._blocked:
                continue
            with self._lock:
                known = self._peers.get(name)
                if known is not None and not known.down:
                    continue
                peer = self._new_peer(name, address)
            self._open(peer)

    def _down(self, peer: Peer, reason: str) -> None:
        """Take the peer down (once), whatever its state."""
        self._act(peer, self._locked(peer, lambda: peer.conn.close(reason)))

    def _on_down(self, peer: Peer, down: Down) -> None:
        with self._lock:
            if self._peers.get(peer.name) is peer:
                del self._peers[peer.name]
        if peer.channel is not None:
            self._by_channel.pop(peer.channel, None)
            self._link.close_channel(peer.channel)
        if peer.identity is not None:
            self._inbound.pop(peer.identity, None)
        peer.done.set()
        if down.was_up:
            log.info("node %s: %s is down: %s", self.name, peer.name, down.reason)
        elif down.reason not in ("disconnect", "reconnected", "blocked"):
            log.warning("node %s: could not connect to %s: %s", self.name, peer.name,
                        down.reason)
        self.node.remote.nodedown(peer.name, down.was_up)

    def on_lead(self, leading: bool) -> None:
        """The link's I/O role came to this thread (True), or left its holder (False)."""
        if leading:
            self._runner = _thread.state.inline = InlineRunner(self.node.pool,
                                                                 self._link.handoff)
        elif self._runner is not None:
            self._runner.abandon()

    def after_poll(self) -> None:
        """The leader, after a poll round: run the processes its frames made runnable."""
        runner = self._runner
        if runner is not None:
            runner.run()

    def poll_until(self, woken: Callable[[], bool], deadline: float | None) -> str:
        """A process thread waiting for a reply from another node polls the link itself
        until `woken()` (see `ZmqLink.lead_until`, whose answer this is). While it polls it
        runs as no process, as the I/O thread does."""
        state = _thread.state
        process, inline = state.process, state.inline
        state.process = state.inline = None
        try:
            return self._link.lead_until(woken, deadline)
        finally:
            state.process, state.inline = process, inline

    def ride_done(self) -> None:
        self._link.ride_done()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run `fn()` on the thread that holds the link's I/O role in `delay_s` seconds
        (`ZmqLink.call_at`): no timer thread is involved."""
        self._link.call_at(time.monotonic() + delay_s, fn)

    def wake_poller(self) -> None:
        """Make a thread that polls the link for a reply look at its mailbox (a no-op on
        that thread itself: it looks after each round anyway)."""
        if not self._link.on_io_thread():
            self._link.wake()

    def on_timer(self, now: float) -> None:
        for peer in list(self._peers.values()):
            quiet = peer.name in self._blocked
            self._act(peer, self._locked(
                peer, lambda p=peer, q=quiet: p.conn.tick(now, quiet=q)))  # type: ignore[misc]
