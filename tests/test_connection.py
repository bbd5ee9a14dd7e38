"""The sans-I/O connection (transport/connection.py): two Connections wired back to back by
a simulated network that the test controls (no sockets, no clock, no threads).

Invariants checked throughout:
- input from the network never raises, whatever the bytes; it gives events only;
- `Data` carries only parts the genuine peer queued, in order, without holes or repeats,
  and only after `Up`;
- a frame deleted, replayed or reordered on a live connection ends it (`Down`), once.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from transport import codec
from transport.codec import Kind
from transport.connection import (
    FRAME_OVERHEAD,
    MAX_HANDSHAKE_FRAME,
    Accepted,
    Connection,
    Data,
    Down,
    Dropped,
    Event,
    Local,
    Refused,
    Reply,
    Send,
    Up,
    accept,
    split_parts,
)

COOKIE = "test-cookie-0123456789"  # 16+ characters: no short-cookie warning
HS_KEY = codec.handshake_key(COOKIE)  # slow on purpose (scrypt): once per module


def local(name: str, **options: Any) -> Local:
    opts: dict[str, Any] = {"setup_s": 3.0, "ticktime_s": 0.8}
    opts.update(options)
    return Local(name, f"tcp://{name}:1", 1, COOKIE, HS_KEY, os.urandom(32), **opts)


@dataclass
class End:
    """One node's side of the pair: its Connection to the other, what it was given."""

    local: Local
    conn: Connection
    identity: bytes  # our half's connection identity on the other's ROUTER
    out: list[bytes] = field(default_factory=list)  # our half -> their ROUTER
    replies: list[bytes] = field(default_factory=list)  # their ROUTER -> our half
    attached: bool = False  # their half is attached to our conn
    delivered: list[bytes] = field(default_factory=list)
    queued: list[bytes] = field(default_factory=list)  # what we queued, in order
    ups: int = 0
    downs: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class Pair:
    """Nodes a and b, each with a Connection to the other, and the wire between them."""

    def __init__(self, now: float = 0.0, **options: Any) -> None:
        self.now = now
        la, lb = local("a@h", **options), local("b@h", **options)
        self.a = End(la, Connection(la, "b@h", now), b"\0A")
        self.b = End(lb, Connection(lb, "a@h", now), b"\0B")
        for end in (self.a, self.b):
            end.out.append(end.conn.start(os.urandom(16)))

    def other(self, end: End) -> End:
        return self.b if end is self.a else self.a

    def act(self, end: End, events: list[Event]) -> None:
        for event in events:
            assert isinstance(event, (Send, Up, Data, Down, Refused, Dropped)), event
            if isinstance(event, Send):
                end.out.extend(event.frames)
            elif isinstance(event, Up):
                assert end.ups == 0 and not end.downs
                end.ups += 1
            elif isinstance(event, Data):
                assert end.ups == 1, "data before up"
                end.delivered.extend(event.parts)
            elif isinstance(event, Down):
                assert not end.downs, "down twice"
                end.downs.append(event.reason)
            elif isinstance(event, Dropped):
                end.dropped.append(event.reason)

    def arrive(self, sender: End, frame: bytes) -> None:
        """`frame` from `sender`'s half reaches the other node's ROUTER."""
        receiver = self.other(sender)
        if receiver.attached:
            self.act(receiver, receiver.conn.receive(frame, self.now))
            return
        for event in accept(receiver.local, sender.identity, frame, self.now):
            if isinstance(event, Reply):
                sender.replies.append(event.frame)
            elif isinstance(event, Accepted):
                receiver.attached = True
                self.act(receiver, receiver.conn.attach(event, self.now))
            else:
                assert isinstance(event, Dropped), event
                receiver.dropped.append(event.reason)

    def step(self, end: End) -> bool:
        """Deliver one frame of `end`'s: its half's next frame, else its next reply."""
        if end.out:
            self.arrive(end, end.out.pop(0))
            return True
        if end.replies:
            self.act(end, end.conn.receive_reply(end.replies.pop(0), self.now))
            return True
        return False

    def settle(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not (self.step(self.a) or self.step(self.b)):
                return
        raise AssertionError("the wire did not settle")

    def send(self, end: End, part: bytes) -> None:
        end.conn.queue(part)
        end.queued.append(part)
        end.out.extend(end.conn.flush())


def up_pair(**options: Any) -> Pair:
    pair = Pair(**options)
    pair.settle()
    assert pair.a.conn.up and pair.b.conn.up and pair.a.ups == pair.b.ups == 1
    return pair


# --- the handshake -----------------------------------------------------------------------------


def test_two_connections_come_up_and_carry_data_in_order_both_ways() -> None:
    pair = up_pair()
    for i in range(5):
        pair.send(pair.a, f"a{i}".encode())
        pair.send(pair.b, f"b{i}".encode())
    pair.settle()
    assert pair.b.delivered == pair.a.queued and pair.a.delivered == pair.b.queued
    assert pair.a.dropped == pair.b.dropped == []


def test_nothing_is_delivered_before_both_halves_are_up() -> None:
    pair = Pair()
    pair.send(pair.a, b"early")  # queued: our half is not up yet
    assert pair.a.conn.flush() == []
    pair.step(pair.a)  # a's HELLO reaches b
    pair.step(pair.a)  # b's CHALLENGE reaches a: a sends ACK and the queued part
    assert pair.a.conn.out_up and not pair.a.conn.up
    pair.step(pair.a)  # ACK: b attaches a's half; b's own half is not up
    pair.step(pair.a)  # the DATA: b keeps it
    assert pair.b.conn.in_up and not pair.b.conn.up and pair.b.delivered == []
    pair.settle()
    assert pair.b.delivered == [b"early"] and pair.b.ups == 1


def test_a_replayed_hello_gets_a_challenge_and_leaves_nothing() -> None:
    b = local("b@h")
    hello = Connection(local("a@h"), "b@h", 0.0).start(os.urandom(16))
    for i in range(100):
        events = accept(b, i.to_bytes(5, "big"), hello, float(i))
        assert len(events) == 1 and isinstance(events[0], Reply)
        assert codec.peek_kind(events[0].frame) is Kind.CHALLENGE


def test_an_ack_is_bound_to_its_connection_and_expires() -> None:
    la, lb = local("a@h"), local("b@h", setup_s=2.0)
    a = Connection(la, "b@h", 0.0)
    [reply] = accept(lb, b"id-1", a.start(os.urandom(16)), 10.0)
    assert isinstance(reply, Reply)
    [send, *_] = a.receive_reply(reply.frame, 10.0)
    assert isinstance(send, Send)
    ack = send.frames[0]
    assert accept(lb, b"id-2", ack, 10.0) == [Dropped("bad_ticket")]  # another connection
    assert accept(lb, b"id-1", ack, 12.5) == [Dropped("stale_ticket")]  # too late
    assert accept(local("b@h"), b"id-1", ack, 10.0) == [Dropped("bad_ticket")]  # b restarted
    [accepted] = accept(lb, b"id-1", ack, 11.9)
    assert isinstance(accepted, Accepted) and accepted.hello.sender == "a@h"


def test_session_keys_come_from_the_slow_handshake_key_not_the_cookie() -> None:
    """A captured ACK or DATA frame must cost a guesser one scrypt per guess, as a captured
    HELLO does: the session keys are keyed by handshake_key(cookie), never by the cookie."""
    pair = Pair()
    hello = codec.decode_hello(codec.open_frame(HS_KEY, pair.a.out[0]).payload)
    pair.step(pair.a)  # the HELLO reaches b; its CHALLENGE comes back to a
    challenge = codec.decode_challenge(codec.open_frame(HS_KEY, pair.a.replies[0]).payload)
    pair.step(pair.a)  # a answers with its ACK
    ack = pair.a.out[0]
    slow = codec.session_key(HS_KEY, hello.nonce, challenge.nonce, "a@h", "b@h")
    fast = codec.session_key(COOKIE, hello.nonce, challenge.nonce, "a@h", "b@h")
    assert codec.Opener(slow).open(ack).kind == Kind.ACK
    with pytest.raises(codec.FrameError):
        codec.Opener(fast).open(ack)


def test_the_wrong_cookie_gets_a_reject_and_the_initiator_goes_down() -> None:
    other = Local("a@h", "tcp://a:1", 1, "other", codec.handshake_key("other"), b"t" * 32)
    a = Connection(other, "b@h", 0.0)
    events = accept(local("b@h"), b"id", a.start(os.urandom(16)), 0.0)
    assert events[0] == Dropped("bad_tag", "a HELLO: wrong cookie")
    assert isinstance(events[1], Reply)
    assert a.receive_reply(events[1].frame, 0.0) == [Refused("bad_cookie"), Down("bad_cookie")]
    assert a.down and a.receive_reply(events[1].frame, 0.0)[0].reason == "unexpected"


def test_a_hello_to_another_node_is_refused() -> None:
    hello = Connection(local("a@h"), "c@h", 0.0).start(os.urandom(16))
    events = accept(local("b@h"), b"id", hello, 0.0)
    assert events[0] == Dropped("wrong_node", "c@h")
    assert codec.open_reject(events[1].frame) == "wrong_node"  # type: ignore[union-attr]


def test_handshake_frames_over_2_kb_are_refused_unhashed() -> None:
    big = codec.seal(HS_KEY, Kind.HELLO, 0, bytes(MAX_HANDSHAKE_FRAME))
    assert accept(local("b@h"), b"id", big, 0.0)[0].reason == "too_big"  # type: ignore[union-attr]


# --- the session -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop", "duplicate", "swap"])
def test_a_frame_deleted_replayed_or_reordered_on_the_path_ends_the_connection(
        fault: str) -> None:
    pair = up_pair()
    for i in range(4):
        pair.send(pair.a, bytes([i]))
    frames = pair.a.out
    if fault == "drop":
        del frames[1]  # the relay of issue 13 finding 2: [1, 2, 4, 5] is no longer accepted
    elif fault == "duplicate":
        frames.insert(2, frames[1])
    else:
        frames[1], frames[2] = frames[2], frames[1]
    pair.settle()
    assert pair.b.delivered in ([b"\0"], [b"\0", b"\1"])
    assert pair.b.downs == ["seq_gap" if fault != "duplicate" else "replay"]
    assert pair.b.dropped[0] in ("seq_gap", "replay")


def test_a_tampered_frame_is_dropped_and_the_session_goes_on() -> None:
    pair = up_pair()
    pair.send(pair.a, b"one")
    good = pair.a.out.pop()
    pair.arrive(pair.a, good[:-1] + bytes([good[-1] ^ 1]))
    pair.arrive(pair.a, good)
    assert pair.b.delivered == [b"one"] and pair.b.dropped == ["bad_tag"] and not pair.b.downs


def test_parts_are_batched_and_big_parts_fragmented() -> None:
    pair = up_pair(max_frame=4096)
    parts = [os.urandom(n) for n in (0, 1, 100, 4095, 4096 * 3 + 7, 10, 50_000)]
    for part in parts:
        pair.a.conn.queue(part)
        pair.a.queued.append(part)
    frames = pair.a.conn.flush()
    assert all(len(f) <= 4096 for f in frames)
    assert {codec.peek_kind(f) for f in frames} == {Kind.DATA, Kind.MORE}
    pair.a.out.extend(frames)
    pair.settle()
    assert pair.b.delivered == parts


def test_a_fragmented_payload_over_max_message_ends_the_connection() -> None:
    pair = up_pair(max_frame=4096, max_message=10_000)
    with pytest.raises(ValueError):
        pair.a.conn.queue(bytes(10_001))
    sealer = pair.a.conn._sealer  # a peer that ignores its own limit
    assert sealer is not None
    for _ in range(4):
        pair.a.out.append(sealer.seal(Kind.MORE, bytes(4000)))
    pair.settle()
    assert pair.b.downs == ["too_big"] and pair.b.delivered == []


def test_ticks_keep_a_quiet_connection_up_and_silence_takes_it_down() -> None:
    pair = up_pair()
    for t in range(1, 20):  # 1.9 s of ticks every 0.1 s: ticks go out every 0.2 s
        pair.now = t / 10
        for end in (pair.a, pair.b):
            pair.act(end, end.conn.tick(pair.now))
        pair.settle()
    assert not pair.a.downs and not pair.b.downs
    assert pair.a.conn.tick(pair.now + 0.05) == []  # not yet time for the next tick
    pair.now += 0.81
    for end in (pair.a, pair.b):
        pair.act(end, end.conn.tick(pair.now))
    assert pair.a.downs == pair.b.downs == ["net_tick_timeout"]


def test_a_connection_not_up_within_setup_time_goes_down() -> None:
    conn = Connection(local("a@h", setup_s=1.0), "b@h", 5.0)
    conn.start(os.urandom(16))
    assert conn.tick(5.9) == []
    assert conn.tick(6.1) == [Down("setup_timeout", False)]
    assert conn.tick(7.0) == [] and conn.close("again") == []


def test_split_parts_refuses_payloads_that_do_not_tile() -> None:
    assert split_parts(b"") == []
    assert split_parts(b"\0\0\0\1x\0\0\0\0") == [b"x", b""]
    for bad in (b"\0", b"\0\0\0\2x", b"\0\0\0\1xy"):
        assert split_parts(bad) is None


# --- fuzzing -----------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0 and data:
        return data[:rng.randrange(len(data))]  # truncated
    if choice == 1 and data:
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if choice == 2:
        return data + os.urandom(rng.randint(1, 8))
    return os.urandom(rng.randint(0, 120))


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8), st.integers(0, 2**32))
def test_fuzz_junk_and_mutated_frames_give_only_events_and_never_unauthenticated_data(
        junk: list[bytes], seed: int) -> None:
    rng = random.Random(seed)
    pair = Pair()
    valid: list[bytes] = []
    for _ in range(50):  # the handshake, then some data, recording every valid frame
        end = pair.a if rng.random() < 0.5 else pair.b
        if end.out:
            valid.append(end.out[0])
        if not pair.step(end) and not pair.step(pair.other(end)):
            if pair.a.conn.up and pair.b.conn.up and len(pair.a.queued) < 6:
                pair.send(pair.a, os.urandom(rng.randint(0, 40)))
            else:
                break
    attacks = junk + [_mutate(rng.choice(valid), rng) for _ in range(20) if valid]
    for data in attacks:
        target = rng.choice([pair.a, pair.b])
        if rng.random() < 0.5:
            pair.arrive(pair.other(target), data)  # on the ROUTER, a known connection
        else:
            pair.act(target, target.conn.receive_reply(data, pair.now))
        for event in accept(target.local, os.urandom(5), data, pair.now):  # a new connection
            assert isinstance(event, (Reply, Dropped))
    pair.settle()
    for end in (pair.a, pair.b):
        got, sent = end.delivered, pair.other(end).queued
        assert got == sent[:len(got)], "delivered something the peer did not send, in order"


@FUZZ
@given(st.binary(max_size=300), st.binary(max_size=16))
def test_fuzz_accept_never_raises(data: bytes, identity: bytes) -> None:
    for event in accept(local("b@h"), identity, data, 1.0):
        assert isinstance(event, (Reply, Dropped))


# --- two connections back to back over a faulty network ---------------------------------------


class BackToBack(RuleBasedStateMachine):
    """Random sends, ticks, deliveries, drops, duplicates and swaps on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair(max_frame=512)
        self.tampered = False
        self.counter = 0

    def end(self, which: bool) -> End:
        return self.pair.a if which else self.pair.b

    @rule(which=st.booleans(), size=st.integers(0, 1500))
    def send(self, which: bool, size: int) -> None:
        end = self.end(which)
        if not end.conn.down:
            self.counter += 1
            self.pair.send(end, self.counter.to_bytes(4, "big") + bytes(size))

    @rule(which=st.booleans())
    def deliver(self, which: bool) -> None:
        self.pair.step(self.end(which))

    @rule(which=st.booleans(), fault=st.sampled_from(["drop", "duplicate", "swap"]))
    def fault(self, which: bool, fault: str) -> None:
        wire = self.end(which).out
        if len(wire) < 2:
            return
        self.tampered = True
        if fault == "drop":
            wire.pop(0)
        elif fault == "duplicate":
            wire.insert(0, wire[0])
        else:
            wire[0], wire[1] = wire[1], wire[0]

    @rule(dt=st.floats(0.0, 0.3))
    def tick(self, dt: float) -> None:
        self.pair.now += dt
        for end in (self.pair.a, self.pair.b):
            self.pair.act(end, end.conn.tick(self.pair.now))

    @precondition(lambda self: not self.tampered)
    @rule()
    def settle(self) -> None:
        self.pair.settle()
        a, b = self.pair.a, self.pair.b
        if not a.downs and not b.downs:  # a clean wire brings both up and delivers all
            assert a.conn.up and b.conn.up
            assert b.delivered == a.queued and a.delivered == b.queued

    @invariant()
    def only_what_was_sent_in_order(self) -> None:
        for end in (self.pair.a, self.pair.b):
            got, sent = end.delivered, self.pair.other(end).queued
            assert got == sent[:len(got)]
            assert len(end.downs) <= 1 and end.ups <= 1
            assert end.conn.up == (end.ups == 1 and not end.downs)


BackToBack.TestCase.settings = settings(max_examples=500, stateful_step_count=40,
                                        deadline=None)
test_back_to_back = BackToBack.TestCase

assert FRAME_OVERHEAD == codec.HEADER_SIZE + codec.TAG_SIZE
