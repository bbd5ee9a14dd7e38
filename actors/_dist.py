"""Distribution: one node's authenticated connections to other nodes.

Rules of this module:
- A connection to a peer is two halves, one per direction. Our half is our DEALER to the
  peer's ROUTER; theirs is the reverse. Each half has its own handshake and session key, so
  each direction has its own sequence numbers and a frame replayed into another session
  fails authentication.
- Handshake of one half (we are A, the peer B), every step authenticated before parsing:
    A -> B  HELLO(A, B, nonce_a, A's address, creation)      keyed by the cookie
    B -> A  CHALLENGE(B, A, nonce_a, nonce_b, creation)      keyed by the cookie
    A -> B  ACK(nonce_b), then DATA and TICK frames          keyed by the session key
  A peer that fails the cookie gets an unauthenticated REJECT carrying only a reason to
  log. B dials back to A's address if it has no half of its own yet.
- We may send once our half is up (what is sent before waits in `outbox`). The peer is in
  `nodes()`, and "nodeup" is told, once both halves are up. DATA that arrives on their half
  before ours is up waits in `early`, so nothing from a peer is delivered before the peer is
  listed, as in Erlang.
- A peer goes down exactly once (`_down`): when our DEALER loses its connection (a killed
  peer, detected by the socket at once), when nothing at all is heard from it for
  `net_ticktime` ms (a hung or cut-off peer; ticks go out every net_ticktime/4 and silence
  is checked every net_ticktime/8, so detection takes 0.75 to 1.125 x net_ticktime), when the
  setup takes longer than `setup_time`, or on `disconnect`. The node then turns the loss into
  noconnection exits and DOWNs (`_remote.nodedown`).
- A DATA frame carries one or more pickled control tuples (see `_remote`), each prefixed
  with its u32 length. Nothing is unpickled before its frame has been authenticated.
  Rejected frames are dropped and counted in `rejected`.
- Sends are batched only when it costs no latency. A send flushes the peer's outbox at once
  (in the sender's thread) unless the previous send to that peer was under `BURST_NS` ago:
  then it only queues, and the I/O thread flushes the whole burst as one frame. A "lazy"
  control (a demonitor) just waits in the outbox for the next flush or tick. Every flush
  happens under the peer's lock, so controls leave in the order they were sent.
- All handshake and receive work runs on the link's I/O thread. `send` runs on any thread.
"""

from __future__ import annotations

import logging
import pickle
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cloudpickle

from transport import codec, epmd
from transport.codec import Frame, FrameError, Kind
from transport.zmq_link import CLOSED, FULL, SENT, ZmqLink

from . import _context
from ._dist_handshake import Handshake
from ._dist_records import DistConfig, InboundHalf, Peer
from ._inline import InlineRunner
from ._terms import Error

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("actors.dist")

BURST_NS = 40_000  # a send this soon after the previous one to a peer joins a batch
BATCH_BYTES = 256 * 1024  # the most one DATA frame carries when several controls share it
_LENGTH = struct.Struct(">I")
_FRAME_OVERHEAD = codec.HEADER_SIZE + codec.TAG_SIZE + _LENGTH.size


def dumps(control: Any) -> bytes:
    """Pickle a control tuple with plain pickle, falling back to cloudpickle for what plain
    pickle refuses (lambdas, closures). A spawn's function is pickled apart, by
    `dumps_fun`, so a peer that cannot load it still gets the spawn."""
    try:
        return pickle.dumps(control, 5)
    except Exception:
        try:
            return cloudpickle.dumps(control, 5)
        except Exception as exc:
            raise Error(("badarg", f"cannot send {type(exc).__name__}: {exc}")) from None


def dumps_fun(fun: Any, args: tuple[Any, ...]) -> bytes:
    """A spawn's function and arguments, with cloudpickle: closures and functions of the
    sender's `__main__` travel by value, functions of importable modules by reference (the
    peer must be able to import them)."""
    try:
        return cloudpickle.dumps((fun, args), 5)
    except Exception as exc:
        raise Error(("badarg", f"cannot send {type(exc).__name__}: {exc}")) from None


class Distribution(Handshake):
    """The distribution of one node. `start()` binds, registers with epmd and starts I/O."""

    def __init__(self, node: Node, config: DistConfig) -> None:
        self.node = node
        self.config = config
        self.name = node.name
        self.creation = node.creation
        self._hs_key = codec.handshake_key(config.cookie)
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        self._inbound: dict[bytes, InboundHalf] = {}
        self._by_channel: dict[int, Peer] = {}
        self._blocked: set[str] = set()
        self._refusal_logged_at = -1e9
        self._refused_unlogged = 0
        self.rejected: Counter[str] = Counter()
        self._link = ZmqLink(self, bind=config.listen, max_frame=config.max_frame,
                             timer_ms=max(5, config.net_ticktime // 8),
                             curve=config.curve, name=node.name)
        self.address = config.advertise or self._advertised(self._link.address)
        self._registration: epmd.Registration | None = None
        self._runner: InlineRunner | None = None  # the leading thread's (see `_inline`)

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
            self._link.call_soon(lambda p=peer: self._down(p, "disconnect"))
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
        if len(payload) > self.config.max_frame - _FRAME_OVERHEAD:
            log.error("node %s: a message to %s of %d bytes is over max_frame (%d): not sent",
                      self.name, name, len(payload), self.config.max_frame)
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
        with peer.lock:
            if peer.down:
                return
            peer.outbox.append(_LENGTH.pack(len(payload)) + payload)
            if lazy or not peer.out_up:
                return
            now = time.perf_counter_ns()
            if now - peer.last_send < BURST_NS:
                schedule = not peer.flush_scheduled
                peer.flush_scheduled = True
            else:
                state = self._flush_locked(peer)
            peer.last_send = now
        if schedule:
            self._link.call_soon(lambda: self._flush(peer))
        if state == FULL:
            runner = _context._state.inline
            if runner is not None and not runner.abandoned:
                runner.before_block()  # a process run on the I/O thread: hand the role on
            if not self._link.on_io_thread():
                self._wait_for_room(peer)

    def _wait_for_room(self, peer: Peer) -> None:
        """Back-pressure, as a busy dist port: the sender waits (not holding the peer's lock)
        until ZeroMQ takes the frames left over, or the peer is down."""
        while not peer.down:
            time.sleep(0.001)
            with peer.lock:
                if peer.down or self._push_locked(peer) != FULL:
                    return

    def _flush(self, peer: Peer) -> None:
        """I/O thread: flush a burst. It never waits: a full queue waits for the next try."""
        with peer.lock:
            peer.flush_scheduled = False
            state = self._flush_locked(peer) if peer.out_up else SENT
        if state == CLOSED:
            self._down(peer, "connection_closed")

    def _push_locked(self, peer: Peer) -> str:
        """With `peer.lock` held: hand sealed frames to ZeroMQ, in order, while it takes them."""
        unsent = peer.unsent
        while unsent:
            state = self._link.send(peer.channel, unsent[0])  # type: ignore[arg-type]
            if state != SENT:
                return state
            unsent.popleft()
        return SENT

    def _flush_locked(self, peer: Peer) -> str:
        """With `peer.lock` held: seal the outbox into frames of at most BATCH_BYTES (a
        bigger control goes alone) and push them; SENT, FULL or CLOSED."""
        outbox, peer.outbox = peer.outbox, []
        start = 0
        while start < len(outbox):
            end, size = start + 1, len(outbox[start])
            while end < len(outbox) and size + len(outbox[end]) <= BATCH_BYTES:
                size += len(outbox[end])
                end += 1
            payload = b"".join(outbox[start:end])
            peer.unsent.append(peer.sealer.seal(Kind.DATA, payload))  # type: ignore[union-attr]
            start = end
        return self._push_locked(peer)

    def connect(self, name: str) -> Peer:
        """Start connecting to `name` unless a connection exists. Returns its peer record;
        `peer.done` is set once it is up (peer.up) or has failed (peer.down)."""
        with self._lock:
            peer = self._peers.get(name)
            if peer is not None and not peer.down:
                return peer
            peer = Peer(name, started=time.monotonic())
            self._peers[name] = peer
        blocked = name in self._blocked
        address = None if blocked else self._address_of(name)
        if address is None:
            reason = "blocked" if blocked else "unreachable"
            self._link.call_soon(lambda: self._down(peer, reason))
        else:
            peer.address = address
            self._link.call_soon(lambda: self._open(peer))
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
        with self._lock:
            if names is None:
                self._blocked.clear()
            else:
                self._blocked.difference_update(names)

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

    def _deliver(self, sender: str, frame: Frame) -> None:
        """Unpickle and handle each control of a DATA frame, in order. Consecutive sends to
        one process are delivered together (one lock, one wake-up)."""
        data = frame.payload
        handle = self.node.remote.handle
        run_id: Any = None
        run: list[Any] = []
        at, end = 0, len(data)
        while at < end:
            if end - at < 4 or _LENGTH.unpack_from(data, at)[0] > end - at - 4:
                self.rejected["bad_batch"] += 1  # authenticated, so only a bug of ours
                break
            size = _LENGTH.unpack_from(data, at)[0]
            at += 4
            try:
                control = pickle.loads(data[at:at + size])
            except Exception as exc:
                self.rejected["unpicklable"] += 1
                log.error("node %s: dropped a message from %s that does not unpickle: %r",
                          self.name, sender, exc)
                control = None
            at += size
            if type(control) is tuple and len(control) == 3 and control[0] == "send":
                if control[1] != run_id:
                    self._deliver_run(run_id, run)
                    run_id, run = control[1], []
                run.append(control[2])
            elif control is not None:
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

    def _reject(self, exc: FrameError, what: str) -> None:
        self.rejected[exc.reason] += 1
        log.debug("node %s: dropped %s: %s %s", self.name, what, exc.reason, exc.detail)

    # -- up, down and ticks (I/O thread) ----------------------------------------------------

    def _maybe_up(self, peer: Peer) -> None:
        if peer.up or peer.down or not peer.out_up or peer.inbound is None:
            return
        peer.up = True
        peer.done.set()
        log.debug("node %s: %s is up", self.name, peer.name)
        self.node.remote.nodeup(peer.name)
        early, peer.early = peer.early, []
        for frame in early:  # what the peer sent before its connection was listed
            self._deliver(peer.name, frame)
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
                peer = Peer(name, address=address, started=time.monotonic())
                self._peers[name] = peer
            self._open(peer)

    def _down(self, peer: Peer, reason: str) -> None:
        with peer.lock:
            if peer.down:
                return
            peer.down = True
            peer.out_up = False
            peer.outbox.clear()
            peer.early.clear()
            peer.unsent.clear()
        was_up = peer.up
        peer.up = False
        with self._lock:
            if self._peers.get(peer.name) is peer:
                del self._peers[peer.name]
        if peer.channel is not None:
            self._by_channel.pop(peer.channel, None)
            self._link.close_channel(peer.channel)
        if peer.inbound is not None:
            self._inbound.pop(peer.inbound.identity, None)
        peer.done.set()
        if was_up:
            log.info("node %s: %s is down: %s", self.name, peer.name, reason)
        elif reason not in ("disconnect", "reconnected", "blocked"):
            log.warning("node %s: could not connect to %s: %s", self.name, peer.name, reason)
        self.node.remote.nodedown(peer.name, was_up)

    def on_lead(self, leading: bool) -> None:
        """The link's I/O role came to this thread (True), or left its holder (False)."""
        if leading:
            self._runner = _context._state.inline = InlineRunner(self.node.pool,
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
        state = _context._state
        process, inline = state.process, state.inline
        state.process = state.inline = None
        try:
            return self._link.lead_until(woken, deadline)
        finally:
            state.process, state.inline = process, inline

    def ride_done(self) -> None:
        self._link.ride_done()

    def wake_poller(self) -> None:
        """Make a thread that polls the link for a reply look at its mailbox (a no-op on
        that thread itself: it looks after each round anyway)."""
        if not self._link.on_io_thread():
            self._link.wake()

    def on_timer(self, now: float) -> None:
        ticktime = self.config.net_ticktime / 1000.0
        setup = self.config.setup_time / 1000.0
        for peer in list(self._peers.values()):
            if peer.up and now - peer.last_heard > ticktime:
                self._down(peer, "net_tick_timeout")
            elif not peer.up and now - peer.started > setup:
                self._down(peer, "setup_timeout")
            elif (peer.out_up and peer.name not in self._blocked
                  and now - peer.last_tick >= ticktime / 4 - 0.001):
                peer.last_tick = now
                with peer.lock:
                    if not peer.out_up:
                        state = SENT
                    elif peer.outbox or peer.unsent:  # waiting frames: each is a tick too
                        state = self._flush_locked(peer)
                    else:
                        state = self._link.send(
                            peer.channel, peer.sealer.seal(Kind.TICK))  # type: ignore[union-attr,arg-type]
                if state == CLOSED:
                    self._down(peer, "connection_closed")
        stale = now - setup
        for identity, half in list(self._inbound.items()):
            if half.opener is None and half.created < stale:
                del self._inbound[identity]  # a handshake that never finished
