"""`transport.zmq_link` alone: the steady-state poll watches ZMQ_FDs, which are
edge-triggered, so these check that no frame and no channel loss waits for a signal that
never comes. The timer is set to a minute, so a missed wake-up shows as a timeout here
rather than being rescued by the next tick."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import zmq

from transport.zmq_link import ZmqLink

WAIT_S = 10.0


class _Handler:
    """Records what the link reports; optionally echoes inbound frames on the ROUTER."""

    def __init__(self, echo: bool = False) -> None:
        self.link: ZmqLink | None = None
        self.trusted: set[bytes] = set()
        self.inbound: list[bytes] = []
        self.outbound: list[bytes] = []
        self.lost: list[int] = []
        self.echo = echo
        self.changed = threading.Condition()

    def _note(self, fn: Callable[[], None]) -> None:
        with self.changed:
            fn()
            self.changed.notify_all()

    def on_inbound(self, identity: bytes, frame: bytes) -> None:
        self.trusted.add(identity)  # later frames of it are read in batches
        if self.echo and self.link is not None:
            self.link.reply(identity, frame)
        self._note(lambda: self.inbound.append(frame))

    def on_outbound(self, channel: int, frame: bytes) -> None:
        self._note(lambda: self.outbound.append(frame))

    def on_channel_lost(self, channel: int) -> None:
        self._note(lambda: self.lost.append(channel))

    def on_timer(self, now: float) -> None:
        pass

    def after_poll(self) -> None:
        pass

    def on_lead(self, leading: bool) -> None:
        pass

    def wait(self, condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        with self.changed:
            return self.changed.wait_for(condition, timeout)


def _link(handler: _Handler) -> ZmqLink:
    link = ZmqLink(handler, max_frame=1 << 20, timer_ms=60_000, trusted=handler.trusted)
    handler.link = link
    link.start()
    return link


def _on_io(link: ZmqLink, fn: Callable[[], Any]) -> Any:
    """Run `fn` on the link's I/O thread and return its result."""
    done = threading.Event()
    box: list[Any] = []
    link.call_soon(lambda: (box.append(fn()), done.set()))
    assert done.wait(WAIT_S), "the I/O thread did not run a call"
    return box[0]


@pytest.fixture
def pair() -> Any:
    a_handler, b_handler = _Handler(), _Handler()
    a, b = _link(a_handler), _link(b_handler)
    try:
        yield a, a_handler, b, b_handler
    finally:
        b.close()
        a.close()


def _steady_channel(b: ZmqLink, address: str) -> int:
    """A channel from b to `address`, past its handshake (b then polls descriptors only)."""
    channel = _on_io(b, lambda: b.open_channel(address))
    _on_io(b, lambda: b.stop_reading(channel))
    return channel


def test_steady_state_polls_descriptors_and_reads_every_frame_in_order(pair: Any) -> None:
    a, a_handler, b, _ = pair
    channel = _steady_channel(b, a.address)
    count, size = 4000, 600  # over DRAIN_BYTES and over 1,000 frames: rounds are cut short
    for i in range(count):
        frame = i.to_bytes(4, "big") + bytes(size)
        deadline = time.monotonic() + WAIT_S
        while b.send(channel, frame) != "sent":
            assert time.monotonic() < deadline, "the channel never took the frame"
            time.sleep(0.001)
    assert a_handler.wait(lambda: len(a_handler.inbound) >= count), (
        f"{len(a_handler.inbound)} of {count} frames arrived")
    assert [int.from_bytes(f[:4], "big") for f in a_handler.inbound] == list(range(count))
    assert _on_io(a, lambda: type(a._poller) is not zmq.Poller)
    assert _on_io(b, lambda: type(b._poller) is not zmq.Poller)


def test_replies_sent_on_the_router_do_not_hide_inbound_frames() -> None:
    """a echoes every frame with `reply` (a send on its ROUTER, which may consume the
    ROUTER's read signal) while b's next frame may already be queued: each ping must
    still be answered at once, not at a timer tick a minute later."""
    a_handler, b_handler = _Handler(echo=True), _Handler()
    a, b = _link(a_handler), _link(b_handler)
    try:
        channel = _on_io(b, lambda: b.open_channel(a.address))  # stays `reading`: echoes
        for i in range(300):
            # on b's I/O thread: a `reading` channel's socket is the poll's (module rules)
            assert _on_io(b, lambda i=i: (b.send(channel, b"ping %d" % i),
                                          b.send(channel, b"more %d" % i))) == ("sent", "sent")
            assert b_handler.wait(lambda n=2 * i + 2: len(b_handler.outbound) >= n, 5.0), (
                f"ping {i} was not answered")
        assert _on_io(a, lambda: type(a._poller) is not zmq.Poller)
    finally:
        b.close()
        a.close()


def test_channel_loss_is_seen_through_the_monitor_descriptor(pair: Any) -> None:
    a, a_handler, b, b_handler = pair
    channel = _steady_channel(b, a.address)
    assert b.send(channel, b"hello") == "sent"
    assert a_handler.wait(lambda: len(a_handler.inbound) == 1)
    a.close()
    assert b_handler.wait(lambda: channel in b_handler.lost), "the loss was not reported"


def test_the_watchdog_never_hands_the_sockets_of_a_leader_that_polls_again(pair: Any) -> None:
    """The watchdog reads when the leader's after_poll run began, then hands the role on if
    it has run too long. If that run ends in between, the leader is polling again: the
    hand-off must not happen, or a second thread would poll the same sockets (select.poll
    refuses a concurrent poll with RuntimeError, killing one of the two threads; ZeroMQ
    sockets are not thread-safe at all). The watchdog's call is made here with a reading of
    a run that has ended, which is the race's outcome."""
    a, a_handler, b, _ = pair
    channel = _steady_channel(b, a.address)
    assert b.send(channel, b"first") == "sent"
    assert a_handler.wait(lambda: a_handler.inbound == [b"first"])
    errors: list[BaseException | None] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        deadline = time.monotonic() + WAIT_S
        while a._busy_since:  # the leader is back in its poll (internals: the race's state)
            assert time.monotonic() < deadline
            time.sleep(0.001)
        generation, run = a._generation, a._busy_run
        a._pass_role(generation, run - 1)  # a run that has ended, as the watchdog saw it
        a._pass_role(generation, run)  # the latest run: ended too, the leader polls again
        assert a._generation == generation  # the role stayed with the polling leader
        for i in range(50):  # and it still serves, alone
            assert b.send(channel, b"%d" % i) == "sent"
        assert a_handler.wait(lambda: len(a_handler.inbound) == 51)
        assert a_handler.inbound[1:] == [b"%d" % i for i in range(50)]
    finally:
        threading.excepthook = previous_hook
    assert errors == []


def test_call_at_runs_on_the_role_holder_when_due_in_order_with_no_tick_to_rescue_it() -> None:
    """Armed on the I/O thread, a timed call ends the poll's sleep by itself (the timer is
    a minute away); armed from another thread, it wakes the poller. Calls run once, on the
    thread that holds the role, not before their time, in the order of their times."""
    handler = _Handler()
    link = _link(handler)
    try:
        ran: list[tuple[str, float, bool]] = []

        def note(tag: str, due: float) -> Callable[[], None]:
            return lambda: handler._note(lambda: ran.append(
                (tag, time.monotonic() - due, link.on_io_thread())))

        t0 = time.monotonic()
        _on_io(link, lambda: [link.call_at(t0 + d, note(tag, t0 + d))
                              for tag, d in (("late", 0.06), ("early", 0.02))])
        link.call_at(t0 + 0.04, note("from outside", t0 + 0.04))
        assert handler.wait(lambda: len(ran) == 3), ran
        assert [tag for tag, _, _ in ran] == ["early", "from outside", "late"]
        assert all(lag >= 0.0 and on_io for _, lag, on_io in ran), ran
        assert not handler.wait(lambda: len(ran) > 3, 0.1)  # each ran once
    finally:
        link.close()
