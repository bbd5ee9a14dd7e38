"""The only module that touches ZeroMQ sockets: one node's listening ROUTER, its outgoing
DEALERs, their monitors, and the I/O thread that polls them.

Rules of this module:
- It moves opaque frames. It knows nothing of cookies, pickles or processes: the handler
  (`LinkHandler`) authenticates and decodes, always on the I/O thread.
- Each outgoing channel is a DEALER connected to a peer's ROUTER. Any thread may `send` on
  it; a per-channel lock serialises senders, so frames leave in the order they were sealed.
  `send` never waits: at ZeroMQ's high-water mark it says FULL and the caller retries.
  While a channel is `reading` (its handshake), the I/O thread also polls and reads replies
  from it, and only the I/O thread sends on it: a ZeroMQ socket is not thread-safe, and a
  send on another thread can take the read signal the poll sleeps on (the distribution
  sends nothing of its own before the handshake is over). Afterwards only senders touch
  it, and the I/O thread watches only its monitor socket.
- Inbound frames arrive on the ROUTER as (identity, frame). A multipart message of another
  shape is dropped and counted.
- `ZMQ_MAXMSGSIZE` makes ZeroMQ refuse an oversized frame before buffering it: the
  offending connection is dropped by the library itself. It is per socket, not per
  connection, so the ROUTER's limit is `max_frame` for everyone. What a connection that has
  not authenticated can make us hold is bounded otherwise: a frame from an identity not in
  `trusted` (the handler's authenticated connections) is handed on alone, before the next
  one is read, and the handler drops it unhashed if it is over its own small limit; frames
  of trusted connections are read in rounds of at most `DRAIN_BYTES` (or 1,000 frames).
- A TCP connection that does not finish ZeroMQ's greeting within `HANDSHAKE_IVL_MS` is
  closed by ZeroMQ (idle connections must not pin descriptors for its default 30 s), and
  `start()` raises the process's open-file limit towards `NOFILE_WANTED`.
- With CURVE, the link answers ZeroMQ's ZAP requests itself (on the I/O thread): a client
  whose public key is not one of `CurveKeys.clients` (by default the cluster's own) is
  refused during ZeroMQ's handshake, before any frame of it reaches us.
- Polling is cheap in the steady state (no channel in its handshake): the poll watches only
  file descriptors with `select.poll`, namely the wake-up pipe and the ZMQ_FD of the ROUTER,
  the ZAP socket and each channel's monitor. A ZMQ_FD is edge-triggered: it signals new
  commands for its socket, not pending messages, and any operation on the socket may consume
  that signal. So every socket watched by its FD is read until it has nothing (EAGAIN, or
  EVENTS without POLLIN) before the poll sleeps again: a monitor or ZAP wake is drained to
  EAGAIN; the ROUTER is read until EVENTS says empty, and whenever that is not known (a
  `reply` sent on it, a round cut short by `DRAIN_BYTES`) it is `_router_unsure`, and the
  next round checks its EVENTS before sleeping; after each rebuild of the poll set every
  such socket is drained once (`_catch_up`). While a channel reads its handshake, the
  round uses `zmq.Poller` with the sockets themselves until every handshake is done.
- Other threads reach the I/O thread with `call_soon`, which queues a callable and wakes the
  poller through a pipe. `call_at` runs a callable on the role's holder once a time has
  come: the poll's wait ends at the earliest such time, so a short timer armed by work the
  role's holder runs (a Raft leader's deferred commit notice) wakes no other thread.
- A thread about to wait for a reply from another node may claim the role (`lead_until`):
  the keeper (the link's own leader) yields at the end of its round, the claimant polls
  and serves until it is woken. The reply then wakes its caller straight from the poll,
  with no hand-off between threads. The keeper takes the role back when it next finds it
  free (it checks every `KEEPER_NAP_S`), so between two claims of one caller nobody polls
  for at most that long; a claimant that leaves while other callers wait without polling
  (they "ride" along, see `lead_until`) wakes the keeper at once.
- "The I/O thread" is a role, not one thread (Leader/Followers). The leader polls, serves
  what arrives, then runs the handler's `after_poll` work (the processes its frames made
  runnable, in `actors._inline`) on the same thread, so no thread hand-off sits between a
  frame and its handler. Before that work can block, `handoff()` gives the role to a fresh
  (or parked) thread; a watchdog does the same when `after_poll` runs past `WATCH_LIMIT_S`,
  only if the run it timed is still going (a stale reading of a run that just ended would
  hand the sockets to a second thread while the leader polls them again).
  The old leader finishes its work, then parks as a spare: it never touches the sockets or
  the handler's I/O state again unless it is handed the role anew. Only `after_poll` can
  lose the role: serving frames, handshakes and timers always run on a leader.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
import os
import resource
import select
import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, cast

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger("transport.zmq_link")

SENT, FULL, CLOSED = "sent", "full", "closed"  # what `send` did with a frame
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)  # plain ints: enum arithmetic is slow
_RCVMORE, _NOBLOCK = int(zmq.RCVMORE), int(zmq.NOBLOCK)
WATCH_LIMIT_S = 0.005  # after_poll work longer than this loses the I/O role to a new thread
CLAIM_WAIT_S = 0.002  # a claimant waits this long for the role, then waits as usual
KEEPER_NAP_S = 0.001  # how often a keeper that lent its role checks whether it is free
_SPARES = 2  # former leaders kept parked for the next hand-off
_SPARE_IDLE_S = 30.0  # a spare not needed for this long exits
DRAIN_BYTES = 1 << 20  # the ROUTER is read in rounds of at most this many bytes (or 1,000 frames)
HANDSHAKE_IVL_MS = 2000  # ZeroMQ drops a connection whose greeting is not done by then
_ZAP_ENDPOINT = "inproc://zeromq.zap.01"
NOFILE_WANTED = 65536  # RLIMIT_NOFILE is raised towards this at start (each connection is an fd)


def raise_nofile_limit(wanted: int = NOFILE_WANTED) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (never above the hard limit,
    never lower): idle connections must not run a node out of descriptors at 1,024. Returns
    the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit to %d: %s", target, exc)
    return soft


class LinkHandler(Protocol):
    """What the I/O thread reports. Every method runs on the I/O thread."""

    def on_inbound(self, identity: bytes, frame: bytes) -> None: ...
    def on_outbound(self, channel: int, frame: bytes) -> None: ...
    def on_channel_lost(self, channel: int) -> None: ...
    def on_timer(self, now: float) -> None: ...
    def after_poll(self) -> None: ...
    def on_lead(self, leading: bool) -> None: ...


@dataclass(frozen=True)
class CurveKeys:
    """ZeroMQ CURVE encryption: one cluster-wide key pair (`zmq.curve_keypair()`), shared by
    every node, as Z85 bytes. Every connection is then encrypted; the cookie still
    authenticates. A node accepts connections only from the client public keys in `clients`
    (Z85), which defaults to the cluster's own `public`."""

    public: bytes
    secret: bytes = field(repr=False)
    clients: frozenset[bytes] = frozenset()

    def allowed(self) -> frozenset[bytes]:
        """The raw 32-byte client keys this node accepts."""
        return frozenset(z85.decode(key) for key in (self.clients or {self.public}))


class _Spare:
    """A parked former leader, waiting on `wake` to be handed the I/O role."""

    __slots__ = ("generation", "wake")

    def __init__(self) -> None:
        self.generation = -1
        self.wake = threading.Lock()
        self.wake.acquire()


@dataclass
class _Channel:
    socket: zmq.Socket
    monitor: zmq.Socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    reading: bool = True
    connected: bool = False
    open: bool = True


class ZmqLink:
    """A node's sockets. `start()` binds and starts the I/O thread; `close()` ends both."""

    def __init__(self, handler: LinkHandler, *, bind: str = "tcp://127.0.0.1:0",
                 max_frame: int, timer_ms: int, curve: CurveKeys | None = None,
                 name: str = "node", trusted: Container[bytes] = frozenset()) -> None:
        self._handler = handler
        self._trusted = trusted  # the handler's authenticated connection identities (live)
        self._max_frame = max_frame
        self._timer_s = timer_ms / 1000.0
        self._curve = curve
        self._name = name
        self._ctx = zmq.Context(io_threads=1)
        self._zap: zmq.Socket | None = None
        self._zap_allowed: frozenset[bytes] = frozenset()
        self.zap_refused = 0
        if curve is not None:  # the ZAP handler must exist before the ROUTER binds
            self._zap_allowed = curve.allowed()
            self._zap = self._ctx.socket(zmq.REP)
            self._zap.linger = 0
            self._zap.bind(_ZAP_ENDPOINT)
        self._router = self._ctx.socket(zmq.ROUTER)
        self._configure(self._router)
        self._router.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_IVL_MS)
        if curve is not None:
            self._router.zap_domain = b"erlpy"
            self._router.curve_server = True
            self._router.curve_secretkey = curve.secret
            self._router.curve_publickey = curve.public
        self._router.bind(bind)
        self._router_fd = cast(int, self._router.getsockopt(zmq.FD))
        self._zap_fd = None if self._zap is None else cast(int, self._zap.getsockopt(zmq.FD))
        self._router_unsure = True  # the ROUTER may hold frames its FD will not announce
        self._unsure = True  # the same for the ZAP socket and the monitors (after a rebuild)
        self.address = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._channels: dict[int, _Channel] = {}
        self._next_channel = 1
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._timed: list[tuple[float, int, Callable[[], None]]] = []  # `call_at`, a heap
        self._timed_lock = threading.Lock()
        self._timed_seq = itertools.count()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._running = True
        self._dirty = True
        self.dropped_shapes = 0
        self._role_lock = threading.Lock()
        self._generation = 0  # bumped at each hand-off: a leader leads while it matches
        self._leader_ident: int | None = None
        self._busy_since = 0.0  # when the leader entered after_poll (0: it is not in it)
        self._busy_run = 0  # counts the leader's after_poll runs (the watchdog's token)
        self._spares: list[_Spare] = []
        self._io_free = threading.Lock()  # held by the role: keeper or claimant
        self._io_free.acquire()
        self._claims = 0  # threads waiting for, or holding, the role as claimants
        self._keeper_yielding = False
        self._keeper_called = False  # `_keeper_wake` was released for this yield
        self._keeper_wake = threading.Lock()  # released to end a keeper's nap early
        self._keeper_wake.acquire()
        self._claimant_polls = False  # a claimant holds the role now
        self._riders = 0  # callers waiting for a reply while a claimant polls
        self._next_timer = time.monotonic() + self._timer_s
        self._poller: zmq.Poller | select.poll = zmq.Poller()
        self._watched: dict[zmq.Socket | int, tuple[int, bool]] = {}
        self._thread = threading.Thread(target=self._lead, args=(0,),
                                        name=f"zmq-link-{name}", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"zmq-watch-{name}",
                                          daemon=True)

    def _configure(self, sock: zmq.Socket) -> None:
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, self._max_frame)
        sock.sndhwm = 100_000
        sock.rcvhwm = 100_000

    def start(self) -> None:
        raise_nofile_limit()
        self._thread.start()
        self._watchdog.start()

    # -- any thread -------------------------------------------------------------------------

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn()` on the I/O thread soon."""
        self._calls.append(fn)
        self._wake()

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        """Run `fn()` on the thread that holds the I/O role once `time.monotonic()` has
        reached `when`, after the poll round in which it falls due (calls due together run
        in the order of `when`, then of their arming)."""
        with self._timed_lock:
            heapq.heappush(self._timed, (when, next(self._timed_seq), fn))
        if not self.on_io_thread():
            self._wake()  # the holder may sleep past `when`: it must look again

    def _run_timed(self, now: float) -> None:
        """The role's holder: run every `call_at` callable due by `now`."""
        timed = self._timed
        while True:
            with self._timed_lock:
                if not timed or timed[0][0] > now:
                    return
                fn = heapq.heappop(timed)[2]
            self._guard(fn)

    def _wake(self) -> None:
        """Make the role's holder return from its poll."""
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (a wake-up is pending) or closed (shutting down)

    wake = _wake

    def send(self, channel: int, frame: bytes) -> str:
        """Queue `frame` on an outgoing channel, never waiting: SENT, FULL (ZeroMQ's queue for
        the channel is at its high-water mark: try again later) or CLOSED (the channel is
        gone). Back-pressure is the caller's business."""
        ch = self._channels.get(channel)
        if ch is None:
            return CLOSED
        with ch.lock:
            if not ch.open:
                return CLOSED
            try:
                ch.socket.send(frame, zmq.NOBLOCK, copy=len(frame) < 65536)
                return SENT
            except zmq.Again:
                return FULL
            except zmq.ZMQError:
                return CLOSED

    def on_io_thread(self) -> bool:
        """True on the thread that holds the I/O role now."""
        return threading.get_ident() == self._leader_ident

    def handoff(self) -> None:
        """From the leader, in `after_poll`: give the I/O role to another thread now, because
        the caller is about to block. A no-op on any other thread, and on a leader that the
        watchdog has just replaced (its generation, read with its identity, is stale)."""
        with self._role_lock:
            if threading.get_ident() != self._leader_ident:
                return
            generation = self._generation
        self._pass_role(generation)

    def _pass_role(self, generation: int, busy_run: int | None = None) -> None:
        """Give the role of `generation` to a parked or new thread; with `busy_run` (the
        watchdog), only while that after_poll run of the leader's is still going."""
        with self._role_lock:
            if generation != self._generation or not self._running:
                return
            if busy_run is not None and (busy_run != self._busy_run or not self._busy_since):
                return  # that run ended: the leader polls again, the sockets are its own
            self._generation = generation = generation + 1
            self._leader_ident = None
            self._busy_since = 0.0
            spare = self._spares.pop() if self._spares else None
        self._handler.on_lead(False)
        if spare is not None:
            spare.generation = generation
            spare.wake.release()
            return
        thread = threading.Thread(target=self._lead, args=(generation,),
                                  name=f"zmq-link-{self._name}", daemon=True)
        self._thread = thread
        thread.start()

    def _watch(self) -> None:
        """Hand the I/O role on when the leader's after_poll work runs too long."""
        while self._running:
            time.sleep(WATCH_LIMIT_S)
            with self._role_lock:
                busy, run, generation = self._busy_since, self._busy_run, self._generation
            if busy and time.monotonic() - busy > WATCH_LIMIT_S:
                self._pass_role(generation, run)

    # -- I/O thread only --------------------------------------------------------------------

    def open_channel(self, address: str, server_key: bytes | None = None) -> int:
        """Connect a new DEALER to `address`. The channel starts `reading` (for its handshake)."""
        sock = self._ctx.socket(zmq.DEALER)
        self._configure(sock)
        sock.reconnect_ivl = 100
        if self._curve is not None:
            sock.curve_secretkey = self._curve.secret
            sock.curve_publickey = self._curve.public
            sock.curve_serverkey = server_key or self._curve.public
        monitor = sock.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED)
        sock.connect(address)
        channel = self._next_channel
        self._next_channel += 1
        self._channels[channel] = _Channel(sock, monitor)
        self._dirty = True
        return channel

    def stop_reading(self, channel: int) -> None:
        """The handshake is over: from now on only senders use the channel's socket."""
        ch = self._channels.get(channel)
        if ch is not None:
            ch.reading = False
            self._dirty = True

    def reply(self, identity: bytes, frame: bytes) -> None:
        """Send on the ROUTER to the connection `identity` (handshake replies)."""
        self._router_unsure = True  # a send may consume the ROUTER's read signal
        try:
            self._router.send_multipart([identity, frame], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # that peer is gone or too slow: the handshake will time out

    def close_channel(self, channel: int) -> None:
        ch = self._channels.pop(channel, None)
        if ch is None:
            return
        self._dirty = True
        ch.open = False
        with ch.lock:
            ch.socket.disable_monitor()
            ch.monitor.close(0)
            ch.socket.close(0)

    def close(self) -> None:
        """Stop the I/O thread and close every socket (from any thread but the I/O one)."""
        if not self._running:
            return
        with self._role_lock:
            self._running = False
            spares, self._spares = self._spares, []
            if self._keeper_yielding and not self._keeper_called:
                self._keeper_called = True
                self._keeper_wake.release()
        for spare in spares:
            spare.wake.release()  # generation -1: it exits
        self.call_soon(lambda: None)
        thread = self._thread
        if thread.is_alive() and threading.current_thread() is not thread:
            thread.join(2.0)
        for channel in list(self._channels):
            self.close_channel(channel)
        self._router.close(0)
        if self._zap is not None:
            self._zap.close(0)
        self._ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _lead(self, generation: int) -> None:
        """A thread's life: lead while its generation holds, then park as a spare."""
        while generation >= 0:
            self._loop(generation)
            generation = self._park()

    def _park(self) -> int:
        """A former leader waits to be handed the role again; -1 when it should exit."""
        spare = _Spare()
        with self._role_lock:
            if not self._running or len(self._spares) >= _SPARES:
                return -1
            self._spares.append(spare)
        if spare.wake.acquire(True, _SPARE_IDLE_S):
            return spare.generation
        with self._role_lock:
            if spare in self._spares:
                self._spares.remove(spare)
                return -1
        spare.wake.acquire()  # handed the role just as we timed out
        return spare.generation

    def _loop(self, generation: int) -> None:
        with self._role_lock:
            if generation != self._generation or not self._running:
                return
            self._leader_ident = threading.get_ident()
            self._thread = threading.current_thread()
        self._handler.on_lead(True)
        while self._running:
            self._round(self._next_timer)
            with self._role_lock:
                self._busy_run += 1
                self._busy_since = time.monotonic()
            self._guard(self._handler.after_poll)
            with self._role_lock:
                if generation != self._generation:
                    return  # handed off while in after_poll: the sockets are not ours now
                self._busy_since = 0.0
                if not self._claims:
                    continue
                self._keeper_yielding = True
                self._leader_ident = None
            self._yield_to_claimants()

    def _round(self, until: float) -> None:
        """One poll round by the role's holder: wait for I/O until `until` at the latest,
        serve what came, and fire the timer when due."""
        if self._dirty:
            self._poller, self._watched = self._make_poller()
        wake_at = min(until, self._next_timer)
        if self._timed:
            wake_at = min(wake_at, self._timed[0][0])
        wait_ms = max(0.0, (wake_at - time.monotonic()) * 1000.0)
        if type(self._poller) is not zmq.Poller and self._catch_up():
            wait_ms = 0.0  # it served something: whoever waits on it must look first
            if self._dirty:
                return  # a channel closed: its descriptor must leave the poll set first
        try:
            # rounded up: a wait under 1 ms must sleep, not spin through zero-timeout polls
            ready = self._poller.poll(math.ceil(wait_ms))
        except zmq.ZMQError:
            if not self._running:
                return
            raise
        for sock, _ in ready:
            self._serve(sock, self._watched)
        now = time.monotonic()
        if self._timed and self._timed[0][0] <= now:
            self._run_timed(now)
        if now >= self._next_timer:
            self._next_timer = now + self._timer_s
            self._guard(lambda: self._handler.on_timer(now))

    def _yield_to_claimants(self) -> None:
        """The keeper lends the I/O role to the threads that claimed it. It is not woken
        when they are done (unless others wait without polling, see `lead_until`): it naps,
        and takes the role back the first time it finds it free, so back-to-back claims (a
        caller's sequential calls) cost it no wake-up."""
        self._io_free.release()
        while True:
            self._keeper_wake.acquire(True, KEEPER_NAP_S)
            if self._io_free.acquire(False):
                break
            if not self._running:
                return
        with self._role_lock:
            self._keeper_yielding = False
            self._keeper_called = False
            self._leader_ident = threading.get_ident()
        self._keeper_wake.acquire(False)  # a call that came as it woke anyway

    # -- claimants: a thread that waits for a reply polls for it itself ----------------------

    def lead_until(self, woken: Callable[[], bool], deadline: float | None) -> str:
        """Poll and serve on the calling thread until `woken()` or `deadline` (monotonic),
        so the frame that wakes it needs no thread hand-off. Returns "polled"; or "ride"
        when another claimant polls already (the caller waits as usual, and calls
        `ride_done()` after); or "no" when the role could not be had within `CLAIM_WAIT_S`
        (the caller waits as usual). Not for a thread that holds the role already."""
        with self._role_lock:
            if not self._running or threading.get_ident() == self._leader_ident:
                return "no"
            if self._claimant_polls:
                self._riders += 1
                return "ride"
            self._claims += 1
        polled = False
        try:
            if not self._io_free.acquire(False):  # the keeper holds it: ask it to yield
                self._wake()
                if not self._acquire_role(woken):
                    return "no"
            polled = True
            with self._role_lock:
                self._leader_ident = threading.get_ident()
                self._claimant_polls = True
            try:
                while self._running and not woken():
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    self._round(deadline if deadline is not None else self._next_timer)
            finally:
                with self._role_lock:
                    self._leader_ident = None
                    self._claimant_polls = False
                self._io_free.release()
            return "polled"
        finally:
            with self._role_lock:
                self._claims -= 1
                call_keeper = polled and self._riders > 0 and self._keeper_yielding and not (
                    self._keeper_called)
                if call_keeper:
                    self._keeper_called = True
            if call_keeper:  # others wait for replies that nobody would poll for
                self._keeper_wake.release()

    def ride_done(self) -> None:
        """A caller that got "ride" from `lead_until` is done waiting."""
        with self._role_lock:
            self._riders -= 1

    def _acquire_role(self, woken: Callable[[], bool]) -> bool:
        give_up = time.monotonic() + CLAIM_WAIT_S
        while not self._io_free.acquire(True, 0.0002):
            if woken() or time.monotonic() > give_up or not self._running:
                return False
        return True

    def _catch_up(self) -> bool:
        """Before a descriptor poll sleeps: read whatever the sockets watched by their ZMQ_FD
        may hold unannounced (see the module's rules). True when it read anything or
        could not tell."""
        served = False
        if self._unsure:
            self._unsure = self._router_unsure = served = True
            if self._zap is not None:
                self._serve_zap()
            for channel, ch in list(self._channels.items()):
                if self._channels.get(channel) is ch:
                    self._drain_monitor(channel, ch.monitor)
            self._unsure = False
        if self._router_unsure:
            self._router_unsure = False
            if cast(int, self._router.getsockopt(_EVENTS)) & _POLLIN:
                self._drain_router()
                served = True
        return served

    def _make_poller(self) -> tuple[zmq.Poller | select.poll,
                                    dict[zmq.Socket | int, tuple[int, bool]]]:
        self._dirty = False
        watched: dict[zmq.Socket | int, tuple[int, bool]] = {}
        if not any(ch.reading for ch in self._channels.values()):
            fds = select.poll()
            for fd in (self._wake_r, self._router_fd, self._zap_fd):
                if fd is not None:
                    fds.register(fd, select.POLLIN)
            for channel, ch in self._channels.items():
                fd = cast(int, ch.monitor.getsockopt(zmq.FD))
                fds.register(fd, select.POLLIN)
                watched[fd] = (channel, True)
            self._unsure = True
            return fds, watched
        poller = zmq.Poller()
        poller.register(self._wake_r, zmq.POLLIN)
        poller.register(self._router, zmq.POLLIN)
        if self._zap is not None:
            poller.register(self._zap, zmq.POLLIN)
        for channel, ch in self._channels.items():
            poller.register(ch.monitor, zmq.POLLIN)
            watched[ch.monitor] = (channel, True)
            if ch.reading:
                poller.register(ch.socket, zmq.POLLIN)
                watched[ch.socket] = (channel, False)
        return poller, watched

    def _serve(self, sock: zmq.Socket | int,
               watched: dict[zmq.Socket | int, tuple[int, bool]]) -> None:
        if sock is self._router or sock == self._router_fd:
            self._drain_router()
        elif sock == self._wake_r:
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
            while self._calls:
                self._guard(self._calls.popleft())
        elif sock is self._zap or (sock == self._zap_fd and self._zap_fd is not None):
            self._serve_zap()
        elif sock in watched:
            channel, is_monitor = watched[sock]
            ch = self._channels.get(channel)
            if ch is not None:  # (a descriptor of a closed channel may have been reused)
                if is_monitor:
                    self._drain_monitor(channel, ch.monitor)
                else:
                    self._drain_channel(channel, ch.socket)

    def _drain_router(self) -> None:
        """Read what is there first, then hand it on: while reading, no process is woken,
        so the threads that frames wake compete for the GIL once per batch, not per frame.
        Called when the ROUTER has (or may have) input: it reads first, and checks EVENTS
        only after each frame (EVENTS is cheaper than catching zmq.Again). It stops when
        the ROUTER is empty, or at a bound, and then leaves it `_router_unsure`."""
        batch = []
        router, trusted = self._router, self._trusted
        on_inbound = self._handler.on_inbound
        get = cast("Callable[[int], int]", router.get)  # EVENTS and RCVMORE are int options
        recv = cast("Callable[[int], bytes]", router.recv)
        size = 0
        for _ in range(1000):
            try:
                identity = recv(_NOBLOCK)
            except zmq.Again:
                break
            # a ROUTER puts the sender's routing id before the message's parts, and a
            # message's parts arrive together: its first part is there
            frame = recv(_NOBLOCK)
            if get(_RCVMORE):  # ours are one part: drop the rest
                while get(_RCVMORE):
                    recv(_NOBLOCK)
                self.dropped_shapes += 1
            elif identity in trusted:
                size += len(frame)
                batch.append((identity, frame))
            else:  # not authenticated: handled (and dropped) before the next one is read
                self._guard(partial(on_inbound, identity, frame))
                del frame
            if not get(_EVENTS) & _POLLIN:
                break
            if size > DRAIN_BYTES:
                self._router_unsure = True
                break
        else:
            self._router_unsure = True
        for identity, frame in batch:
            try:
                on_inbound(identity, frame)
            except Exception:
                log.exception("node %s: error in the distribution handler", self._name)

    def _serve_zap(self) -> None:
        """Answer ZeroMQ's authentication requests (ZAP, RFC 27): CURVE clients whose key
        is allowed get 200, everything else 400."""
        zap = self._zap
        assert zap is not None
        while True:
            try:
                request = zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            ok = (len(request) >= 7 and request[0] == b"1.0" and request[5] == b"CURVE"
                  and request[6] in self._zap_allowed)
            if not ok:
                self.zap_refused += 1
            version = request[0] if request else b"1.0"
            request_id = request[1] if len(request) > 1 else b""
            zap.send_multipart([version, request_id, b"200" if ok else b"400",
                                b"OK" if ok else b"client key not allowed", b"", b""])

    def _drain_channel(self, channel: int, sock: zmq.Socket) -> None:
        ch = self._channels[channel]
        while ch.reading and ch.open:
            with ch.lock:
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.ZMQError:
                    return
            if len(parts) != 1:
                self.dropped_shapes += 1
                continue
            self._guard(partial(self._handler.on_outbound, channel, parts[0]))

    def _drain_monitor(self, channel: int, monitor: zmq.Socket) -> None:
        """Read the monitor until EAGAIN (its FD is edge-triggered), or until the channel
        closes (which closes the monitor)."""
        ch = self._channels[channel]
        while ch.open:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.ZMQError:
                return
            kind = event["event"]
            if kind == zmq.EVENT_CONNECTED:
                ch.connected = True
            elif (kind == zmq.EVENT_DISCONNECTED and ch.connected) or (
                    kind == zmq.EVENT_CONNECT_RETRIED and ch.reading):
                # a peer that went away, or one that refuses its handshake's connection
                self._guard(lambda: self._handler.on_channel_lost(channel))

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("node %s: error in the distribution handler", self._name)
