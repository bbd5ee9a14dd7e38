"""What the distribution keeps per node and per peer: its configuration, and the records
of each peer's two connection halves. Plain data, guarded as `_dist` says."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from transport import codec
from transport.zmq_link import CurveKeys

MAX_HANDSHAKE_FRAME = 2048  # a HELLO is at most ~830 bytes: anything bigger is refused unhashed
MAX_PENDING_HANDSHAKES = 1024  # unanswered CHALLENGEs kept at once (expire after setup_time)


@dataclass
class DistConfig:
    """How a node joins a cluster. Times are milliseconds."""

    cookie: str = field(repr=False)  # a secret: never in a repr or a log line
    listen: str = "tcp://127.0.0.1:0"
    advertise: str | None = None  # the address peers dial; defaults to `listen`'s real one
    net_ticktime: int = 800  # a peer silent this long is down
    setup_time: int = 3000  # a connection not up within this is given up
    max_frame: int = codec.DEFAULT_MAX_FRAME
    epmd: bool = True  # register with (and start) the host's port mapper
    epmd_port: int | None = None
    seeds: dict[str, str] = field(default_factory=dict)  # node name -> address, no lookup
    curve: CurveKeys | None = field(default=None, repr=False)  # holds the secret key


@dataclass
class InboundHalf:
    """The peer's half: frames it sends to our ROUTER from one connection identity."""

    identity: bytes
    peer: str
    nonce_a: bytes
    nonce_b: bytes
    created: float
    address: str
    opener: codec.Opener | None = None


@dataclass
class Peer:
    name: str
    address: str | None = None
    channel: int | None = None
    nonce: bytes = b""
    sealer: codec.Sealer | None = None
    out_up: bool = False
    inbound: InboundHalf | None = None
    up: bool = False  # both halves: the peer is in nodes()
    down: bool = False
    started: float = 0.0
    last_heard: float = 0.0
    outbox: list[bytes] = field(default_factory=list)  # controls not yet sealed
    unsent: deque[bytes] = field(default_factory=deque)  # sealed frames ZeroMQ had no room for
    early: list[codec.Frame] = field(default_factory=list)  # DATA that came before `up`
    flush_scheduled: bool = False
    last_send: int = 0
    last_tick: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
