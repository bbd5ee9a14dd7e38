"""What the distribution keeps per node and per peer: its configuration, the record of
each peer (its `transport.connection.Connection` and the I/O around it), and the table of
peers. Plain data, guarded as `_dist` says."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from transport import codec
from transport.connection import Connection
from transport.zmq_link import CurveKeys


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
class Peer:
    """One peer: its connection's state machine, and the sockets and queues around it."""

    name: str
    conn: Connection
    address: str | None = None
    channel: int | None = None  # our half: our DEALER to the peer's ROUTER
    identity: bytes | None = None  # their half: its connection on our ROUTER
    creation: int | None = None  # their half: the incarnation of the peer that dialed it
    replaced_at: float | None = None  # made by replacing a connection (monotonic time)
    unsent: deque[bytes] = field(default_factory=deque)  # sealed frames ZeroMQ had no room for
    flush_scheduled: bool = False
    last_send: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def up(self) -> bool:
        return self.conn.up

    @property
    def down(self) -> bool:
        return self.conn.down

    @property
    def out_up(self) -> bool:
        return self.conn.out_up


@dataclass
class PeerTable:
    """The peers of one node, found by name, by their half's identity or by our channel.
    `lock` guards `by_name` and `blocked`; `inbound` and `by_channel` are the I/O thread's."""

    by_name: dict[str, Peer] = field(default_factory=dict)
    inbound: dict[bytes, Peer] = field(default_factory=dict)  # their halves, by identity
    by_channel: dict[int, Peer] = field(default_factory=dict)  # our halves, by channel
    blocked: set[str] = field(default_factory=set)  # partitioned away (see `block`)
    lock: threading.Lock = field(default_factory=threading.Lock)
