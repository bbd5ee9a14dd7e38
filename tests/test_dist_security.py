"""Distribution security on real nodes: what an attacker on the network can and cannot do.

The attacker knows the wire protocol (transport/codec.py) but not the cookie. It speaks raw
ZeroMQ (a DEALER to the node's ROUTER: one single-part message = one frame) or raw TCP to
the node's listening port. Every rejected frame must be counted in `node.dist.rejected`
and never unpickled, and the node must keep serving its good peers, losing nothing.
The codec itself is fuzzed in tests/test_codec.py, the connection in tests/test_connection.py.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pickle
import random
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from actors import _context, _dist, _process, erlang, net_kernel, peer, rpc
from actors.node import Node
from tests.conftest import COOKIE
from tests.helpers import no_message, recv, wait_until
from transport import codec, zmq_link
from transport.codec import Kind
from transport.zmq_link import SENT, CurveKeys, ZmqLink

REPO = Path(__file__).resolve().parents[1]
_ids = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_ids)}x{os.getpid()}@127.0.0.1"


def _rejected(n: Node) -> int:
    assert n.dist is not None
    return sum(n.dist.rejected.values())


def _port(n: Node) -> int:
    assert n.dist is not None
    return int(n.dist.address.rsplit(":", 1)[1])


def _hello(sender: str, receiver: str, key: bytes, address: str = "tcp://127.0.0.1:1") -> bytes:
    hello = codec.Hello(sender, receiver, codec.new_nonce(), address, 1)
    return codec.seal(key, Kind.HELLO, 0, codec.encode_hello(hello))


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def start_node() -> Iterator[Callable[..., Node]]:
    """`start(prefix, cookie=COOKIE, **DistConfig options) -> Node`: extra in-process nodes,
    stopped at the end."""
    started: list[Node] = []

    def start(prefix: str = "n", cookie: str = COOKIE, **options: Any) -> Node:
        n = net_kernel.start_node(_unique(prefix), cookie=cookie, **options)
        started.append(n)
        return n

    yield start
    for n in reversed(started):
        n.stop()


class Raw:
    """The attacker's raw sockets: ZeroMQ DEALERs (no MAXMSGSIZE) and plain TCP sockets."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self._zsocks: list[zmq.Socket] = []
        self._tcp: list[socket.socket] = []

    def dealer(self, address: str, **options: Any) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.sndtimeo = 5000  # a send that cannot go out fails the test instead of hanging it
        for name, value in options.items():
            setattr(sock, name, value)
        sock.connect(address)
        self._zsocks.append(sock)
        return sock

    def monitor(self, sock: zmq.Socket) -> zmq.Socket:
        mon = sock.get_monitor_socket()
        self._zsocks.insert(0, mon)
        return mon

    def router(self) -> tuple[zmq.Socket, str]:
        """A silent ROUTER (a dial-back address that never answers)."""
        sock = self.ctx.socket(zmq.ROUTER)
        sock.linger = 0
        sock.bind("tcp://127.0.0.1:0")
        self._zsocks.append(sock)
        return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def tcp(self, port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._tcp.append(sock)
        return sock

    def close(self) -> None:
        for s in self._tcp:
            s.close()
        for z in self._zsocks:
            z.close(0)
        self.ctx.term()


@pytest.fixture
def raw() -> Iterator[Raw]:
    r = Raw()
    yield r
    r.close()


class Unpickled:
    """What the distribution unpickled, by node (in-process nodes share the module; each
    node's frames are unpickled on its own I/O thread)."""

    def __init__(self) -> None:
        self._by_thread: dict[str, list[bytes]] = {}

    def record(self, data: Any) -> None:
        self._by_thread.setdefault(threading.current_thread().name, []).append(bytes(data))

    def of(self, n: Node) -> list[bytes]:
        return list(self._by_thread.get(f"zmq-link-{n.name}", []))

    def within(self, n: Node, frame: bytes) -> int:
        """How many of the node's unpickled byte strings came from `frame` (a DATA frame
        carries one or more length-prefixed pickles)."""
        body = frame[codec.HEADER_SIZE:-codec.TAG_SIZE]
        return sum(1 for pickled in self.of(n) if pickled and pickled in body)


@pytest.fixture
def unpickled(monkeypatch: pytest.MonkeyPatch) -> Unpickled:
    """Records every payload `pickle.loads` is called on by `actors._dist`."""
    seen = Unpickled()

    class RecordingPickle:
        def __getattr__(self, name: str) -> Any:
            return getattr(pickle, name)

        def loads(self, data: Any, *args: Any, **kwargs: Any) -> Any:
            seen.record(data)
            return pickle.loads(data, *args, **kwargs)

    monkeypatch.setattr(_dist, "pickle", RecordingPickle())
    return seen


@dataclass
class Wire:
    """Frames as they cross the wire: every frame any in-process node sends on an outgoing
    channel, and (for watched nodes) every frame their ROUTER receives, with its identity."""

    sent: list[tuple[ZmqLink, bytes]] = field(default_factory=list)
    inbound: dict[str, list[tuple[bytes, bytes]]] = field(default_factory=dict)

    def sent_by(self, n: Node, kind: Kind, marker: bytes = b"") -> list[bytes]:
        assert n.dist is not None
        return [f for link, f in list(self.sent)
                if link is n.dist._link and f[3] == kind and marker in f]

    def identity_of(self, n: Node, frame: bytes) -> bytes:
        for identity, f in list(self.inbound[n.name]):
            if f == frame:
                return identity
        raise AssertionError("frame not received")

    def inject(self, n: Node, identity: bytes, frame: bytes) -> None:
        """Feed `frame` into the node's inbound path as if it came from `identity`."""
        dist = n.dist
        assert dist is not None
        dist._link.call_soon(lambda: dist.on_inbound(identity, frame))


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Wire, Callable[[Node], None]]]:
    w = Wire()
    real_send = ZmqLink.send

    def send(self: ZmqLink, channel: int, frame: bytes, *args: Any, **kwargs: Any) -> bool:
        w.sent.append((self, frame))
        return real_send(self, channel, frame, *args, **kwargs)

    monkeypatch.setattr(ZmqLink, "send", send)

    def watch(n: Node) -> None:
        dist = n.dist
        assert dist is not None
        real = dist.on_inbound
        frames = w.inbound.setdefault(n.name, [])

        def on_inbound(identity: bytes, frame: bytes) -> None:
            frames.append((identity, frame))
            real(identity, frame)

        monkeypatch.setattr(dist, "on_inbound", on_inbound)

    yield w, watch


def _report_node(to: Any, token: str) -> None:
    """Runs on a remote node (shipped by spawn): says which node it runs on."""
    erlang.send(to, ("running_on", token, erlang.node()))


def _serves(victim: Node, good: Node) -> None:
    """`good` can connect to `victim`, both can message each other, spawn a function on the
    other and rpc.call it."""
    token = os.urandom(6).hex()
    with victim.bound():
        me = erlang.self()
    with good.bound():
        assert net_kernel.connect_node(victim.name) is True
        buddy = erlang.self()
        erlang.send(me, ("ping", token))
        erlang.spawn(victim.name, _report_node, buddy, token)
        recv(lambda m: m == ("running_on", token, victim.name))
        assert rpc.call(victim.name, "erlang", "node", [], 5000) == victim.name
    with victim.bound():
        recv(lambda m: m == ("ping", token))
        erlang.send(buddy, ("pong", token))
        erlang.spawn(good.name, _report_node, me, token)
        recv(lambda m: m == ("running_on", token, good.name))
        assert rpc.call(good.name, "erlang", "node", [], 5000) == good.name
        assert good.name in erlang.nodes()
    with good.bound():
        recv(lambda m: m == ("pong", token))


def _log_lines(caplog: pytest.LogCaptureFixture, node_name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "actors.dist" and r.getMessage().startswith(f"node {node_name}:")]


# -- 1. wrong cookie ---------------------------------------------------------------------------


def test_wrong_cookie_in_process_neither_side_connects(
        dist_node: Node, start_node: Callable[..., Node], caplog: pytest.LogCaptureFixture,
        unpickled: Unpickled) -> None:
    caplog.set_level(logging.INFO, logger="actors.dist")
    victim = dist_node
    assert victim.dist is not None
    evil = start_node("evil", cookie="not-the-cookie")
    assert evil.dist is not None

    with evil.bound():
        assert net_kernel.connect_node(victim.name) is False
        assert erlang.nodes() == []
    assert erlang.nodes() == []
    assert victim.dist.rejected == Counter({"bad_tag": 1})
    assert victim.dist._inbound == {} and victim.dist._peers == {}
    assert any("refused our connection: bad_cookie" in line
               for line in _log_lines(caplog, evil.name))
    assert any("connection attempt(s) that failed authentication" in line
               for line in _log_lines(caplog, victim.name))

    # the other direction too
    assert net_kernel.connect_node(evil.name) is False
    assert erlang.nodes() == [] and evil.nodes() == []
    assert evil.dist.rejected == Counter({"bad_tag": 1})
    assert any("refused our connection: bad_cookie" in line
               for line in _log_lines(caplog, victim.name))
    assert any("connection attempt(s) that failed authentication" in line
               for line in _log_lines(caplog, evil.name))
    assert unpickled.of(victim) == [] and unpickled.of(evil) == []


_WRONG_COOKIE_NODE = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
from actors import erlang, net_kernel
name, cookie, target = sys.argv[1:4]
net_kernel.start(name, cookie)
print("READY", flush=True)
print("CONNECT", net_kernel.connect_node(target), erlang.nodes(), flush=True)
sys.stdin.read()
print("NODES", erlang.nodes(), flush=True)
os._exit(0)
"""


def _read_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                continue
            line = proc.stdout.readline()
            assert line, f"the node exited before printing {prefix}"
            if line.startswith(prefix):
                return line.strip()
    raise AssertionError(f"no {prefix} line within {timeout} s")


def test_wrong_cookie_real_node_neither_side_connects(
        dist_node: Node, caplog: pytest.LogCaptureFixture, unpickled: Unpickled,
        tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="actors.dist")
    assert dist_node.dist is not None
    name = _unique("wrongcookie")
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRONG_COOKIE_NODE, name, "not-the-cookie", dist_node.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, text=True,
            cwd=REPO, start_new_session=True)
    try:
        _read_line(proc, "READY")
        # the real node dials us with its cookie
        assert _read_line(proc, "CONNECT") == "CONNECT False []"
        # and we dial it with ours
        assert net_kernel.connect_node(name) is False
        assert erlang.nodes() == []
        assert dist_node.dist.rejected == Counter({"bad_tag": 1})
        assert unpickled.of(dist_node) == []
        assert proc.stdin is not None
        proc.stdin.close()
        assert _read_line(proc, "NODES") == "NODES []"
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    ours = _log_lines(caplog, dist_node.name)
    assert any("connection attempt(s) that failed authentication" in line for line in ours)
    assert any(f"{name} refused our connection: bad_cookie" in line for line in ours)
    theirs = log_path.read_text()
    assert "connection attempt(s) that failed authentication" in theirs
    assert f"{dist_node.name} refused our connection: bad_cookie" in theirs


def test_peer_with_another_cookie_does_not_start(dist_node: Node) -> None:
    """peer.start passes our cookie; a later --cookie overrides it: the peer boots, but the
    connection is refused, so peer.start reports it and halts the child."""
    assert peer.start(_unique("othercookie").split("@")[0],
                      args=["--cookie", "other-cookie"]) == ("error", "noconnection")
    assert erlang.nodes() == []


# -- 2. forged frames -------------------------------------------------------------------------


def test_a_relay_that_deletes_a_message_takes_the_connection_down(
        dist_node: Node, start_node: Callable[..., Node],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13, finding 2: a relay without the cookie deleted one frame, the receiver got
    [1, 2, 4, 5] and the connection stayed up. Now a gap in the sequence ends it: nothing
    after the gap is delivered, and the peer's monitors fire with noconnection."""
    victim = dist_node
    a = start_node("a")
    me = erlang.self()
    with a.bound():
        watched = erlang.self()
    net_kernel.monitor_nodes(True)
    assert net_kernel.connect_node(a.name) is True
    ref = erlang.monitor("process", watched)
    assert a.dist is not None
    relayed = a.dist._link
    real_send = ZmqLink.send

    def relay(self: ZmqLink, channel: int, frame: bytes) -> str:
        if self is relayed and b"relay-3" in frame:
            return SENT  # deleted on the path
        return real_send(self, channel, frame)

    monkeypatch.setattr(ZmqLink, "send", relay)
    with a.bound():
        for i in range(1, 6):
            erlang.send(me, ("relayed", i, f"relay-{i}"))
            time.sleep(0.001)  # pacing, so most go in frames of their own (a burst shares one)
    recv(lambda m: m == ("nodedown", a.name))
    assert recv(lambda m: type(m) is tuple and m[0] == "DOWN") == (
        "DOWN", ref, "process", watched, "noconnection")
    got = []
    while (m := erlang.receive(lambda m: type(m) is tuple and m[0] == "relayed", 100)) is not \
            erlang.TIMEOUT and len(got) < 5:
        got.append(m[1])
    assert got == list(range(1, len(got) + 1)) and 3 not in got
    assert victim.dist is not None and victim.dist.rejected["seq_gap"] == 1


def test_forged_handshake_and_data_frames_are_dropped_and_counted(
        dist_node: Node, raw: Raw, unpickled: Unpickled) -> None:
    victim = dist_node
    assert victim.dist is not None
    me = erlang.self()

    # a HELLO sealed with a guessed cookie: REJECT bad_cookie, no state, no dial-back
    d = raw.dealer(victim.dist.address)
    d.send(_hello("mallory@127.0.0.1", victim.name, codec.handshake_key("guess")))
    assert d.poll(3000), "no REJECT"
    assert codec.open_reject(d.recv()) == "bad_cookie"
    assert victim.dist.rejected == Counter({"bad_tag": 1})
    assert victim.dist._inbound == {} and victim.dist._peers == {}

    # frames of every other kind on a fresh connection (no handshake): dropped, no reply
    forged = codec.Sealer(os.urandom(32))
    payload = pickle.dumps(("send", me, "forged"), 5)
    d2 = raw.dealer(victim.dist.address)
    for kind in (Kind.DATA, Kind.TICK, Kind.CHALLENGE, Kind.REJECT, Kind.MORE):
        d2.send(forged.seal(kind, payload))
    d2.send(codec.reject_frame("bad_cookie"))
    wait_until(lambda: victim.dist.rejected["unknown_connection"] == 6)
    # an ACK is read for its ticket (the acceptor kept nothing): this one has none
    d2.send(forged.seal(Kind.ACK, payload))
    wait_until(lambda: victim.dist.rejected["bad_payload"] == 1)
    assert d2.poll(100) == 0
    # a HELLO with a valid shape but a forged tag of the right length
    hello = _hello("mallory@127.0.0.1", victim.name, b"k")
    d2.send(hello[:-codec.TAG_SIZE] + os.urandom(codec.TAG_SIZE))
    assert d2.poll(3000) and codec.open_reject(d2.recv()) == "bad_cookie"
    assert victim.dist.rejected == Counter(
        {"bad_tag": 2, "unknown_connection": 6, "bad_payload": 1})
    no_message(lambda m: m == "forged")
    assert unpickled.of(victim) == []
    assert victim.dist._inbound == {} and victim.dist._peers == {}


def test_frames_sealed_for_another_session_are_dropped(
        dist_node: Node, start_node: Callable[..., Node], wire: tuple[Wire, Any],
        unpickled: Unpickled) -> None:
    """A frame with a valid HMAC for one session is refused on any other: another peer's
    connection, the reverse direction (a reflection), or with its seq rewritten."""
    w, watch = wire
    victim = dist_node
    assert victim.dist is not None
    watch(victim)
    a, c = start_node("a"), start_node("c")
    me = erlang.self()
    with a.bound():
        buddy_a = erlang.self()
        erlang.send(me, ("from_a", "token-a1"))
    with c.bound():
        erlang.send(me, ("from_c", "token-c1"))
    recv(lambda m: m == ("from_a", "token-a1"))
    recv(lambda m: m == ("from_c", "token-c1"))
    erlang.send(buddy_a, ("to_a", "token-v1"))
    with a.bound():
        recv(lambda m: m == ("to_a", "token-v1"))

    [frame_a] = w.sent_by(a, Kind.DATA, b"token-a1")
    [frame_c] = w.sent_by(c, Kind.DATA, b"token-c1")
    [frame_v] = w.sent_by(victim, Kind.DATA, b"token-v1")
    id_a, id_c = w.identity_of(victim, frame_a), w.identity_of(victim, frame_c)
    assert id_a != id_c
    loads_a = unpickled.within(victim, frame_a)
    assert loads_a >= 1 and unpickled.within(victim, frame_v) == 0

    w.inject(victim, id_c, frame_a)  # A's frame on C's connection
    w.inject(victim, id_a, frame_v)  # our own frame to A, reflected back at us as A's
    seq = struct.unpack_from(">Q", frame_a, 4)[0]
    bumped = frame_a[:4] + struct.pack(">Q", seq + 1000) + frame_a[12:]
    w.inject(victim, id_a, bumped)  # A's frame with a "fresh" seq: the tag no longer fits
    wait_until(lambda: victim.dist.rejected["bad_tag"] == 3)
    no_message(lambda m: type(m) is tuple and m[0] == "from_a")
    assert unpickled.within(victim, frame_a) == loads_a  # only its one real delivery
    assert unpickled.within(victim, frame_v) == 0

    # both sessions are intact: the rejected frames changed nothing (a bumped seq did not
    # advance the replay window, so A's next real frames are still accepted)
    with a.bound():
        erlang.send(me, ("from_a", "token-a2"))
    with c.bound():
        erlang.send(me, ("from_c", "token-c2"))
    recv(lambda m: m == ("from_a", "token-a2"))
    recv(lambda m: m == ("from_c", "token-c2"))
    assert erlang.nodes() == sorted([a.name, c.name])
    assert victim.dist.rejected == Counter({"bad_tag": 3})


# -- 3. replayed frames -----------------------------------------------------------------------


def test_replayed_data_frames_are_refused(
        dist_node: Node, start_node: Callable[..., Node], wire: tuple[Wire, Any], raw: Raw,
        unpickled: Unpickled) -> None:
    w, watch = wire
    victim = dist_node
    assert victim.dist is not None
    watch(victim)
    a = start_node("a")
    me = erlang.self()
    with a.bound():
        for i in range(5):
            erlang.send(me, ("msg", i, f"replay-token-{i}"))
    for i in range(5):
        assert recv(lambda m: type(m) is tuple and m[0] == "msg")[1] == i
    # (sends in a quick burst may share a frame)
    frames = list(dict.fromkeys(w.sent_by(a, Kind.DATA, f"replay-token-{i}".encode())[0]
                                for i in range(5)))
    identity = w.identity_of(victim, frames[0])
    loads = [unpickled.within(victim, f) for f in frames]
    n = len(frames)

    # from a new raw connection: an unknown connection
    d = raw.dealer(victim.dist.address)
    for f in frames:
        d.send(f)
    wait_until(lambda: victim.dist.rejected["unknown_connection"] == n)
    assert erlang.nodes() == [a.name]
    # on the same connection: only someone on the path can do that, so the connection ends
    # at the first replay (a nodedown, so links and monitors fire), and what follows it on
    # that connection is from a connection we no longer know
    net_kernel.monitor_nodes(True)
    with a.bound():
        net_kernel.monitor_nodes(True)
    for f in frames:
        w.inject(victim, identity, f)
    recv(lambda m: m == ("nodedown", a.name))
    with a.bound():  # a hears nothing more from us: down after net_ticktime
        recv(lambda m: m == ("nodedown", victim.name))
    # (and a's ticks, until a gives us up, come from that connection too)
    wait_until(lambda: victim.dist.rejected["unknown_connection"] >= 2 * n - 1)
    no_message(lambda m: type(m) is tuple and m[0] == "msg", 200)
    assert [unpickled.within(victim, f) for f in frames] == loads
    assert set(victim.dist.rejected) == {"replay", "unknown_connection"}
    assert victim.dist.rejected["replay"] == 1

    # a new connection serves
    with a.bound():
        erlang.send(me, ("msg", 5, "replay-token-5"))
    assert recv(lambda m: type(m) is tuple and m[0] == "msg")[1] == 5
    assert erlang.nodes() == [a.name]


def test_hello_replayed_to_another_node_is_refused(
        dist_node: Node, start_node: Callable[..., Node], wire: tuple[Wire, Any],
        raw: Raw) -> None:
    """A HELLO captured on its way to one node names that node as receiver: replayed at
    another node it is refused as wrong_node, and creates no state there."""
    w, _ = wire
    a, other = start_node("a"), start_node("other")
    with a.bound():
        assert net_kernel.connect_node(dist_node.name) is True
    [hello] = w.sent_by(a, Kind.HELLO)
    assert other.dist is not None
    d = raw.dealer(other.dist.address)
    d.send(hello)
    assert d.poll(3000) and codec.open_reject(d.recv()) == "wrong_node"
    assert other.dist.rejected == Counter({"wrong_node": 1})
    assert other.dist._inbound == {} and other.dist._peers == {}
    assert other.nodes() == [] and erlang.nodes() == [a.name]


def test_replayed_hello_does_not_disconnect_a_live_peer(
        dist_node: Node, start_node: Callable[..., Node], wire: tuple[Wire, Any],
        raw: Raw) -> None:
    w, _ = wire
    victim = dist_node
    assert victim.dist is not None
    a = start_node("a")
    net_kernel.monitor_nodes(True)
    with a.bound():
        assert net_kernel.connect_node(victim.name) is True
        remote = erlang.spawn(erlang.receive)  # a process on A, waiting forever
    recv(lambda m: m == ("nodeup", a.name))
    ref = erlang.monitor("process", remote)
    [hello] = w.sent_by(a, Kind.HELLO)  # sniffed off the wire: A -> victim

    d = raw.dealer(victim.dist.address)
    rejected = _rejected(victim)
    d.send(hello)
    d.send(b"sentinel")  # same connection, so handled after the HELLO; always refused
    wait_until(lambda: _rejected(victim) > rejected)
    no_message(lambda m: m == ("nodedown", a.name)
               or (type(m) is tuple and m[0] == "DOWN" and m[1] == ref), 300)
    assert erlang.nodes() == [a.name]


# -- 4. truncated frames, random bytes, raw TCP junk ---------------------------------------


def _junk_frames(seed: int, hello: bytes, data: bytes) -> list[bytes]:
    rng = random.Random(seed)
    frames: list[bytes] = []
    for _ in range(120):  # random bytes
        frames.append(rng.randbytes(rng.randrange(0, 160)))
    for _ in range(60):  # a plausible header, then random bytes
        kind = rng.choice([0, *list(Kind), 7, 255])
        header = struct.pack(">2sBBQ", codec.MAGIC, rng.choice([1, 1, 1, 0, 2]), kind,
                             rng.randrange(1 << 64))
        frames.append(header + rng.randbytes(rng.randrange(0, 200)))
    for cut in range(0, len(hello), 3):  # truncated handshakes and data frames
        frames.append(hello[:cut])
    for cut in range(0, len(data), 5):
        frames.append(data[:cut])
    for _ in range(40):  # one flipped bit in a real HELLO / DATA frame
        base = bytearray(rng.choice([hello, data]))
        base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
        frames.append(bytes(base))
    return frames


def test_random_and_truncated_frames_are_counted_and_the_node_keeps_serving(
        dist_node: Node, start_node: Callable[..., Node], wire: tuple[Wire, Any], raw: Raw,
        unpickled: Unpickled) -> None:
    w, watch = wire
    victim = dist_node
    assert victim.dist is not None
    watch(victim)
    a = start_node("a")
    me = erlang.self()
    with a.bound():
        erlang.send(me, ("real", 0))
    recv(lambda m: m == ("real", 0))
    [hello] = w.sent_by(a, Kind.HELLO)
    [data] = w.sent_by(a, Kind.DATA, b"real")
    identity = w.identity_of(victim, data)
    loads_before = len(unpickled.of(victim))
    frames = _junk_frames(20240601, hello, data)

    # over the wire, from a connection that never did a handshake
    d = raw.dealer(victim.dist.address)
    for f in frames:
        d.send(f)
    for _ in range(5):
        d.send_multipart([b"two", b"parts"])  # not a single frame: dropped by the link
    wait_until(lambda: _rejected(victim) == len(frames), 10)
    wait_until(lambda: victim.dist._link.dropped_shapes == 5)
    # and inside A's established session: each is refused, the session is not disturbed
    mutated = [f for f in frames if f != data]
    for f in mutated:
        w.inject(victim, identity, f)
    wait_until(lambda: _rejected(victim) == len(frames) + len(mutated), 10)
    # nothing of the junk was unpickled (only A's background traffic may have been)
    junk = b"".join(f for f in frames if f != data)
    assert not any(p in junk for p in unpickled.of(victim)[loads_before:])
    assert victim.dist._inbound.keys() == {identity}
    assert list(victim.dist._peers) == [a.name] and erlang.nodes() == [a.name]

    # raw TCP: not ZMTP at all, a greeting cut short, a greeting followed by junk
    rng = random.Random(7)
    greeting = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + bytes(32)
    for payload in (rng.randbytes(4096), greeting[:11], greeting + rng.randbytes(2048),
                    b"\x00" * 64, rng.randbytes(100_000)):
        s = raw.tcp(_port(victim))
        try:
            s.sendall(payload)
        except OSError:
            pass  # ZeroMQ hung up on us first: fine

    with a.bound():
        erlang.send(me, ("real", 1))
    recv(lambda m: m == ("real", 1))
    _serves(victim, a)
    _serves(victim, start_node("b"))
    assert victim.dist._peers.keys() == {a.name} | set(erlang.nodes())


# -- 5. oversized frames ----------------------------------------------------------------------


def test_oversized_frames_are_refused_by_zeromq_without_buffering(
        start_node: Callable[..., Node], raw: Raw, unpickled: Unpickled) -> None:
    victim = start_node("small", max_frame=64 * 1024)
    assert victim.dist is not None
    big = os.urandom(1 << 20)
    d = raw.dealer(victim.dist.address, reconnect_ivl=10)
    mon = raw.monitor(d)
    rss_before = _rss_kib()
    peak = rss_before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, _rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for _ in range(50):
            d.send(big, copy=False)  # one buffer, 50 frames: the attacker's side stays small
        # A DEALER keeps order: once a probe is seen, the 50 MB have gone out. A probe in
        # flight behind a big frame is lost with its connection, so send another.
        probes = 0
        while victim.dist.rejected["too_short"] == 0:
            assert probes < 40, "no probe got through"
            d.send(b"probe")
            probes += 1
            deadline = time.monotonic() + 0.5
            while victim.dist.rejected["too_short"] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        done.set()
        sampler.join()
    events = []
    while mon.poll(0):
        events.append(recv_monitor_message(mon)["event"])
    assert zmq.EVENT_DISCONNECTED in events  # ZeroMQ hung up on the oversized frames
    # the big frames never got in
    assert set(victim.dist.rejected) == {"too_short"}
    assert victim.dist.rejected["too_short"] <= probes
    assert victim.dist._link.dropped_shapes == 0
    assert unpickled.of(victim) == []
    assert peak - rss_before < 16 * 1024, (rss_before, peak)  # 50 MB went over the wire
    _serves(victim, start_node("good"))


def test_a_legit_message_over_the_peer_max_frame_is_lost_with_a_nodedown(
        start_node: Callable[..., Node]) -> None:
    """What happens (documented): the receiver's ZeroMQ drops the sender's connection when
    the frame exceeds its max_frame. Nothing is delivered, neither the big message nor what
    follows it on that connection; both sides see the other go down (the sender at once, as
    its DEALER is disconnected; the receiver after net_ticktime of silence), exactly as a
    lost connection; the sender survives and can reconnect and send small messages."""
    victim = start_node("small", max_frame=64 * 1024)
    sender = start_node("sender")
    with victim.bound():
        me = erlang.self()
        net_kernel.monitor_nodes(True)
    with sender.bound():
        net_kernel.monitor_nodes(True)
        assert net_kernel.connect_node(victim.name) is True
        recv(lambda m: m == ("nodeup", victim.name))
        ref = erlang.monitor("process", me)
        erlang.send(me, ("big", b"x" * (256 * 1024)))
        erlang.send(me, ("after", 1))
        recv(lambda m: m == ("nodedown", victim.name))
        assert recv(lambda m: type(m) is tuple and m[0] == "DOWN") == (
            "DOWN", ref, "process", me, "noconnection")
    with victim.bound():
        recv(lambda m: m == ("nodeup", sender.name))
        recv(lambda m: m == ("nodedown", sender.name))
        no_message(lambda m: type(m) is tuple and m[0] in ("big", "after"))
    _serves(victim, sender)
    with victim.bound():
        no_message(lambda m: type(m) is tuple and m[0] in ("big", "after"))


def test_an_oversized_hello_is_refused_before_hashing(dist_node: Node, raw: Raw) -> None:
    assert dist_node.dist is not None
    hello_kind = struct.pack(">2sBBQ", codec.MAGIC, codec.VERSION, Kind.HELLO, 0)
    d = raw.dealer(dist_node.dist.address)
    d.send(hello_kind + bytes(1 << 20) + bytes(codec.TAG_SIZE))
    wait_until(lambda: _rejected(dist_node) == 1)
    assert dist_node.dist.rejected["bad_tag"] == 0  # refused without computing its tag


# -- 6. connections that never send ------------------------------------------------------------


def test_idle_connections_do_not_block_good_peers(
        dist_node: Node, start_node: Callable[..., Node], raw: Raw) -> None:
    victim = dist_node
    assert victim.dist is not None
    idle_tcp = [raw.tcp(_port(victim)) for _ in range(50)]
    idle_zmq = [raw.dealer(victim.dist.address) for _ in range(20)]
    _serves(victim, start_node("good"))
    _serves(victim, start_node("good"))
    assert len(erlang.nodes()) == 2
    assert victim.dist._inbound.keys() == {
        p.identity for p in victim.dist._peers.values() if p.identity is not None}
    assert _rejected(victim) == 0
    # (the idle TCP ones are closed after HANDSHAKE_IVL_MS: see the test of that below)
    assert len(idle_tcp) == 50 and len(idle_zmq) == 20


# -- 7. a flood of connections -----------------------------------------------------------------


def test_a_flood_of_bad_hellos_is_refused_and_leaves_no_state(
        start_node: Callable[..., Node], raw: Raw, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="actors.dist")
    victim = start_node("victim", setup_time=500)
    good = start_node("good")
    assert victim.dist is not None
    key = codec.handshake_key("guess")
    dealers: list[zmq.Socket] = []
    flooding = threading.Event()

    def flood() -> None:
        flooding.set()
        for i in range(300):
            d = raw.dealer(victim.dist.address)  # type: ignore[union-attr]
            d.send(_hello(f"m{i}@127.0.0.1", victim.name, key))
            dealers.append(d)

    started = time.monotonic()
    flooder = threading.Thread(target=flood)
    flooder.start()
    flooding.wait(5)
    _serves(victim, good)  # while the flood is on
    flooder.join(20)
    assert not flooder.is_alive()
    wait_until(lambda: victim.dist.rejected["bad_tag"] == 300, 20)
    assert time.monotonic() - started < 20
    assert victim.dist._inbound.keys() == {victim.dist._peers[good.name].identity}
    assert list(victim.dist._peers) == [good.name]
    # every attacker got its REJECT
    poller = zmq.Poller()
    for d in dealers:
        poller.register(d, zmq.POLLIN)
    answered: set[zmq.Socket] = set()
    deadline = time.monotonic() + 10
    while len(answered) < len(dealers) and time.monotonic() < deadline:
        for sock, _ in poller.poll(100):
            assert codec.open_reject(sock.recv()) == "bad_cookie"
            answered.add(sock)
            poller.unregister(sock)
    assert len(answered) == 300
    refusals = [line for line in _log_lines(caplog, victim.name)
                if "failed authentication" in line]
    # refusals are logged at most once a second, with a count: a flood cannot flood the log
    assert 1 <= len(refusals) <= 5
    _serves(victim, good)


def test_a_replayed_hello_leaves_no_state_and_locks_no_one_out(
        start_node: Callable[..., Node], raw: Raw) -> None:
    """Issue 13, finding 5: one captured HELLO, replayed on 1,100 connections, used to fill
    the node-wide table of 1,024 pending handshakes, so a new node could not connect. Now
    the acceptor keeps nothing before a verified ACK: each replay costs one CHALLENGE (whose
    ticket only a cookie holder can use), leaves no state and makes no dial-back."""
    victim = start_node("victim")
    assert victim.dist is not None
    raw.ctx.max_sockets = 4096
    _silent, ghost_address = raw.router()
    hello = _hello("ghost@127.0.0.1", victim.name, codec.handshake_key(COOKIE), ghost_address)
    dealers = []
    for _ in range(1100):
        d = raw.dealer(victim.dist.address)
        d.send(hello)
        dealers.append(d)
    wait_until(lambda: all(d.poll(0) for d in dealers), 60)  # all CHALLENGEd
    assert all(codec.peek_kind(d.recv()) == Kind.CHALLENGE for d in dealers)
    assert victim.dist._inbound == {} and victim.dist._peers == {}
    assert _rejected(victim) == 0
    _serves(victim, start_node("newcomer"))  # a node never seen before gets in at once
    assert victim.dist._inbound.keys() == {p.identity for p in victim.dist._peers.values()}


def test_a_replayed_ack_is_refused_on_another_connection(
        dist_node: Node, start_node: Callable[..., Node], wire: tuple[Wire, Any],
        raw: Raw) -> None:
    """A captured ACK is bound (by its ticket) to the connection its HELLO came on."""
    w, watch = wire
    victim = dist_node
    assert victim.dist is not None
    watch(victim)
    a = start_node("a")
    _serves(victim, a)
    ack = w.sent_by(a, Kind.ACK)[0]
    d = raw.dealer(victim.dist.address)
    d.send(ack)
    wait_until(lambda: victim.dist.rejected["bad_ticket"] == 1)
    assert d.poll(100) == 0
    assert erlang.nodes() == [a.name] and list(victim.dist._peers) == [a.name]


# -- 8. losing nothing under attack ------------------------------------------------------------


def _send_numbered(target: Any, count: int) -> None:
    """Runs on the peer: numbered messages to `target`, then a marker."""
    for i in range(count):
        erlang.send(target, ("num", i))
    erlang.send(target, ("num_done", count))


def _attack(address: str, port: int, victim: str, stop: threading.Event,
            sent: list[int]) -> None:
    """Garbage at the victim until `stop` (bounded): random bytes, forged handshakes and data
    from many connections, raw TCP junk."""
    rng = random.Random(4242)
    ctx = zmq.Context()
    socks = []
    try:
        for _ in range(8):
            d = ctx.socket(zmq.DEALER)
            d.linger = 0
            d.connect(address)
            socks.append(d)
        bad_key = codec.handshake_key("guess")
        forged = codec.Sealer(os.urandom(32))
        for i in range(30_000):
            if stop.is_set():
                break
            d = socks[i % len(socks)]
            roll = rng.random()
            if roll < 0.4:
                frame = rng.randbytes(rng.randrange(0, 200))
            elif roll < 0.7:
                frame = forged.seal(Kind.DATA, rng.randbytes(64))
            else:
                frame = _hello(f"m{i}@127.0.0.1", victim, bad_key)
            d.send(frame)
            sent[0] += 1
            if i % 500 == 0:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.sendall(rng.randbytes(512))
                except OSError:
                    pass
            if i % 50 == 0:
                time.sleep(0.001)  # let the GIL go: the flood shares the test's process
    finally:
        for s in socks:
            s.close(0)
        ctx.term()


def test_no_message_is_lost_while_garbage_floods_the_node(
        dist_node: Node, peers: Callable[..., tuple[Any, str]]) -> None:
    victim = dist_node
    assert victim.dist is not None
    _ppid, pnode = peers()
    me = erlang.self()
    count = 2000
    stop = threading.Event()
    sent = [0]
    attacker = threading.Thread(target=_attack, args=(
        victim.dist.address, _port(victim), victim.name, stop, sent))
    attacker.start()
    net_kernel.monitor_nodes(True)
    try:
        wait_until(lambda: _rejected(victim) > 100, 10)  # the flood is on
        erlang.spawn(pnode, _send_numbered, me, count)
        for i in range(count):
            got = erlang.receive(lambda m: type(m) is tuple and m[0] == "num", 15000)
            assert got == ("num", i), (got, i, erlang.nodes(), victim.dist.rejected,
                                       erlang.receive(lambda m: m[0] == "nodedown", 0))
            if i == 0:
                at_first = _rejected(victim)
        recv(lambda m: m == ("num_done", count), 15000)
        # the flood was still on: more garbage is refused after the first numbered message
        # (on a loaded machine the attacker thread may be starved for the whole burst)
        wait_until(lambda: _rejected(victim) > at_first, 10)
        at_last = _rejected(victim)
    finally:
        stop.set()
        attacker.join(20)
    assert not attacker.is_alive()
    no_message(lambda m: type(m) is tuple and m[0] in ("num", "num_done"), 300)
    assert at_last > at_first  # garbage kept coming around the numbered messages
    assert sent[0] > 100
    assert erlang.nodes() == [pnode]
    assert rpc.call(pnode, "erlang", "node", [], 5000) == pnode


# -- 9. CURVE --------------------------------------------------------------------------------


def test_curve_nodes_talk_and_others_cannot_connect(
        start_node: Callable[..., Node], raw: Raw) -> None:
    keys = CurveKeys(*zmq.curve_keypair())
    c1 = start_node("curve", curve=keys, setup_time=1500)
    c2 = start_node("curve", curve=keys, setup_time=1500)
    _serves(c1, c2)
    _serves(c2, c1)

    plain = start_node("plain", setup_time=1500)
    with plain.bound():
        assert net_kernel.connect_node(c1.name) is False
    with c1.bound():
        assert net_kernel.connect_node(plain.name) is False
    other = start_node("othercurve", curve=CurveKeys(*zmq.curve_keypair()), setup_time=1500)
    with other.bound():
        assert net_kernel.connect_node(c1.name) is False
    assert c1.nodes() == [c2.name] and plain.nodes() == [] and other.nodes() == []

    # a raw attacker without the keys never gets a frame to the node
    assert c1.dist is not None
    d = raw.dealer(c1.dist.address)
    mon = raw.monitor(d)
    # the handshake fails, so the DEALER never has a peer: a blocking send would wait forever
    with contextlib.suppress(zmq.Again):
        d.send(_hello("mallory@127.0.0.1", c1.name, codec.handshake_key("guess")), zmq.NOBLOCK)
    deadline = time.monotonic() + 5
    failed = False
    while not failed and time.monotonic() < deadline:
        if mon.poll(100):
            event = recv_monitor_message(mon)["event"]
            failed = event in (zmq.EVENT_DISCONNECTED, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                               zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    assert failed
    assert _rejected(c1) == 0
    _serves(c1, c2)


# -- found on the way: remote spawn_monitor / spawn_link and a fast child's signal -------------


@pytest.mark.parametrize("kind", ["monitor", "link"])
def test_remote_spawn_keeps_a_fast_childs_signal(
        start_node: Callable[..., Node], monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Forces one legal interleaving: the child's DOWN (or EXIT) is handled by the caller
    node's I/O thread before the calling thread resumes from its spawn_reply. The monitor or
    link must already be in place (it once was set only by the resumed caller, so the signal
    was dropped: about a third of first rpc.calls between fresh nodes timed out)."""
    a, v = start_node("a"), start_node("v")
    signal_handled = threading.Event()
    real_handle = a.remote.handle

    def handle(sender: str, control: Any) -> None:
        real_handle(sender, control)
        if control[0] in ("down", "exit"):
            signal_handled.set()

    monkeypatch.setattr(a.remote, "handle", handle)
    with a.bound():
        assert net_kernel.connect_node(v.name) is True
        caller = _context.self_process()
        real_receive = _process.Process.receive

        def receive(self: Any, pred: Any, timeout: Any, *args: Any, **kwargs: Any) -> Any:
            msg = real_receive(self, pred, timeout, *args, **kwargs)
            if self is caller and type(msg) is tuple and msg[0] == "$spawn_reply":
                signal_handled.wait(3)  # the calling thread is slow to resume
            return msg

        monkeypatch.setattr(_process.Process, "receive", receive)
        if kind == "monitor":
            _pid, ref = erlang.spawn_monitor(v.name, erlang.node)
            recv(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref), 2000)
        else:
            erlang.process_flag("trap_exit", True)
            pid = erlang.spawn_link(v.name, erlang.exit, "boom")
            recv(lambda m: m == ("EXIT", pid, "boom"), 2000)


# -- issue 13: memory before authentication, descriptors, CURVE clients --------------------------


def _peak_rss_growth(action: Callable[[], None]) -> int:
    """KiB the process's RSS grew at its peak while `action` ran (sampled every 5 ms)."""
    before = peak = _rss_kib()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, _rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    return peak - before


@pytest.mark.parametrize("size", [60 << 20, codec.DEFAULT_MAX_FRAME - 64])
def test_big_frames_before_authentication_cost_little_memory(
        dist_node: Node, raw: Raw, size: int) -> None:
    """Issue 13, finding 4: eight connections that each sent three frames of 60 MiB made a
    node hold 1,113 MiB. Now the ROUTER refuses frames over max_frame (8 MiB by default)
    before buffering them, and a frame under it from a connection that has not
    authenticated is handled alone, before the next is read, and dropped unhashed as over
    the 2 KB handshake limit."""
    victim = dist_node
    assert victim.dist is not None
    big = b"EP" + bytes([codec.VERSION, Kind.HELLO]) + bytes(size - 4)
    dealers = [raw.dealer(victim.dist.address, reconnect_ivl=10) for _ in range(8)]

    def attack() -> None:
        for d in dealers:
            for _ in range(3):
                d.send(big, copy=False)  # one buffer shared by every frame
        if size <= codec.DEFAULT_MAX_FRAME:  # all get in, and each is dropped
            wait_until(lambda: victim.dist.rejected["too_big"] == 24, 60)  # type: ignore[union-attr]
            return
        # ZeroMQ drops each connection at its first frame; the DEALER reconnects. Probes
        # behind the big frames: once they are seen, the big frames have been dealt with
        for _ in range(40):
            for d in dealers:
                with contextlib.suppress(zmq.Again):
                    d.send(b"probe", zmq.NOBLOCK)
            deadline = time.monotonic() + 0.5
            while victim.dist.rejected["too_short"] < 8 and time.monotonic() < deadline:  # type: ignore[union-attr]
                time.sleep(0.01)
            if victim.dist.rejected["too_short"] >= 8:  # type: ignore[union-attr]
                return

    growth = _peak_rss_growth(attack)
    if size > codec.DEFAULT_MAX_FRAME:
        assert victim.dist.rejected["too_big"] == 0  # ZeroMQ refused them: we never saw one
    else:
        assert victim.dist.rejected["too_big"] == 24
    # 8 x 3 x size bytes went over the wire. Frames over max_frame cost nothing. Frames
    # under it are read by ZeroMQ before we see them (72-96 MiB of 192 at peak here, more on
    # a loaded machine): that is ZeroMQ's, up to what each connection has in flight, hence
    # the per-source limit in the README. Here we only check that the node holds no more.
    bound = 4 * 1024 if size > codec.DEFAULT_MAX_FRAME else 8 * 3 * size // 1024 + 32 * 1024
    assert growth < bound, f"{growth} KiB"
    _serves(victim, _extra_node())


def _extra_node() -> Node:
    n = net_kernel.start_node(_unique("good"), cookie=COOKIE)
    _EXTRA.append(n)
    return n


_EXTRA: list[Node] = []


@pytest.fixture(autouse=True)
def _stop_extra_nodes() -> Iterator[None]:
    yield
    while _EXTRA:
        _EXTRA.pop().stop()


def test_an_idle_tcp_connection_is_closed_after_the_handshake_interval(
        dist_node: Node, raw: Raw) -> None:
    """Issue 13, finding 6: ZeroMQ dropped a silent connection only after 30 s."""
    from transport.zmq_link import HANDSHAKE_IVL_MS

    sock = raw.tcp(_port(dist_node))
    started = time.monotonic()
    sock.settimeout(HANDSHAKE_IVL_MS / 1000 + 3)
    while sock.recv(4096):  # ZeroMQ's greeting, then the end of the connection
        pass
    assert time.monotonic() - started < HANDSHAKE_IVL_MS / 1000 + 2


_LOW_FD_NODE = """
import resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
from actors import net_kernel
n = net_kernel.start_node(sys.argv[1], cookie=sys.argv[2], epmd=False)
print("READY", n.dist.address, resource.getrlimit(resource.RLIMIT_NOFILE)[0], flush=True)
sys.stdin.read()
n.stop()
"""


def test_idle_connections_at_the_common_fd_limit_do_not_shut_out_good_peers(
        raw: Raw, tmp_path: Path) -> None:
    """Issue 13, finding 6: 1,100 idle connections to a node started with the common limit
    of 1,024 descriptors shut out good peers. The node now raises its soft limit at start,
    and ZeroMQ closes connections that stay silent for HANDSHAKE_IVL_MS."""
    import resource

    name = _unique("lowfd")
    with open(tmp_path / "node.log", "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-c", _LOW_FD_NODE, name, COOKIE],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log_file, text=True, cwd=REPO, start_new_session=True)
    try:
        _, address, limit = _read_line(proc, "READY").split()
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        assert int(limit) == min(zmq_link.NOFILE_WANTED, hard) > 1100
        port = int(address.rsplit(":", 1)[1])
        idle = [raw.tcp(port) for _ in range(1100)]
        good = _extra_node()
        good.dist.config.seeds[name] = address  # type: ignore[union-attr]
        with good.bound():
            assert net_kernel.connect_node(name) is True
            assert rpc.call(name, "erlang", "node", [], 5000) == name
        assert len(idle) == 1100
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_curve_refuses_a_client_key_that_is_not_the_clusters(
        start_node: Callable[..., Node], raw: Raw) -> None:
    """Issue 13, finding 12: any key pair, with the cluster's public key as the server key,
    got frames to a CURVE node. Now the node's ZAP handler accepts only the cluster's key."""
    keys = CurveKeys(*zmq.curve_keypair())
    c1 = start_node("curve", curve=keys)
    assert c1.dist is not None
    hello = _hello("mallory@127.0.0.1", c1.name, codec.handshake_key("guess"))

    def attempt(public: bytes, secret: bytes) -> tuple[bool, list[int]]:
        d = raw.dealer(c1.dist.address, curve_serverkey=keys.public,  # type: ignore[union-attr]
                       curve_publickey=public, curve_secretkey=secret)
        mon = raw.monitor(d)
        with contextlib.suppress(zmq.Again):
            d.send(hello, zmq.NOBLOCK)
        events: list[int] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if d.poll(50):
                return True, events  # an answer: our frame got in
            while mon.poll(0):
                events.append(recv_monitor_message(mon)["event"])
            if zmq.EVENT_HANDSHAKE_FAILED_AUTH in events:
                return False, events
        return False, events

    answered, events = attempt(*zmq.curve_keypair())
    assert not answered and zmq.EVENT_HANDSHAKE_FAILED_AUTH in events
    assert c1.dist._link.zap_refused >= 1 and _rejected(c1) == 0
    # the same attempt with the cluster's own key pair reaches the node (and gets a REJECT)
    answered, _ = attempt(keys.public, keys.secret)
    assert answered and c1.dist.rejected["bad_tag"] >= 1
    _serves(c1, start_node("curve", curve=keys))
