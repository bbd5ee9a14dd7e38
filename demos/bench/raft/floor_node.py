"""One process of the floor model (`demos.bench.raft.floor`): raw pyzmq, one thread, no Raft.

`python -m demos.bench.raft.floor_node leader|follower FILE` binds a ROUTER on a free
loopback port and prints it. A leader then reads its followers' ports from one stdin line
and connects a DEALER to each.

- A follower answers each frame on its ROUTER with the frame itself: a command (`c...`)
  after appending it to FILE and fdatasync'ing, a read (`r...`) at once. Clients number
  their frames, so the leader tells a late answer to an earlier frame from a new one.
- The leader, on a client's frame, sends it to every follower first; for a command it then
  appends it to its own FILE and fdatasyncs. It answers the client once its own write (for
  a command) and the first follower's answer are in: a majority of three. Answers of the
  other follower that come later are read and dropped.
- `stop` ends a process (the leader passes it on).

With a third argument `sealed`, every hop also does what our nodes must do to any message,
and nothing else: the sender pickles a term of the shape ours sends (a call control, an
AppendEntries with its entry, an AppendResult, a Heartbeat and its answer, a reply) and
seals it (`transport.codec`: sequence number and keyed BLAKE2b tag, one sealer per
direction); the receiver checks the tag and order, then unpickles it. A follower writes the
entries pickled, as a WAL record. The key comes first on stdin (never in the arguments: a
process that unpickles must not be forgeable by other local users).
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any

import zmq

from actors.raft import AppendEntries, AppendResult, Entry, Heartbeat, HeartbeatResult
from transport import codec

DATA = codec.Kind.DATA
TERM, LEADER = 1, ("member", "floor0")


def _durable(fd: int, data: bytes) -> None:
    os.write(fd, data)
    os.fdatasync(fd)


def _follower(router: zmq.Socket, fd: int) -> None:
    while True:
        ident, frame = router.recv_multipart()
        if frame == b"stop":
            return
        if frame[:1] == b"c":
            _durable(fd, frame)
        router.send_multipart([ident, frame])


def _connect_followers(ctx: zmq.Context,
                       router: zmq.Socket) -> tuple[list[zmq.Socket], zmq.Poller]:
    """A leader's DEALER to each follower port on its stdin line, and a poller over those
    and its own ROUTER."""
    followers = []
    for port in sys.stdin.readline().split():
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(f"tcp://127.0.0.1:{port}")
        followers.append(dealer)
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    for dealer in followers:
        poller.register(dealer, zmq.POLLIN)
    return followers, poller


def _leader(ctx: zmq.Context, router: zmq.Socket, fd: int) -> None:
    followers, poller = _connect_followers(ctx, router)
    client, current, answers = b"", b"", 0
    while True:
        for sock, _ in poller.poll():
            if sock is router:
                client, frame = router.recv_multipart()
                current, answers = frame, 0
                for dealer in followers:
                    dealer.send(frame)
                if frame == b"stop":
                    return
                if frame[:1] == b"c":
                    _durable(fd, frame)  # the followers' writes run meanwhile
            elif sock.recv() == current:  # not a late answer to an earlier frame
                answers += 1
                if answers == 1:
                    router.send_multipart([client, b"ok"])


class Link:
    """One connection's two directions: seal what goes out, open and unpickle what comes in."""

    def __init__(self, key: bytes) -> None:
        self.sealer, self.opener = codec.Sealer(key), codec.Opener(key)

    def seal(self, term: object) -> bytes:
        return self.sealer.seal(DATA, pickle.dumps(term, 5))

    def seal_pickled(self, data: bytes) -> bytes:
        return self.sealer.seal(DATA, data)

    def open(self, frame: bytes) -> Any:
        """Check the frame's tag and order, then unpickle it (never before)."""
        return pickle.loads(self.opener.open(frame).payload)


def _sealed_follower(router: zmq.Socket, fd: int, key: bytes, me: str) -> None:
    link = Link(key)
    while True:
        ident, frame = router.recv_multipart()
        if frame == b"stop":
            return
        _, _, (_, msg) = link.open(frame)
        if type(msg) is AppendEntries:
            _durable(fd, pickle.dumps(("uid", msg.prev_index + 1, msg.entries), 5))
            answer: object = AppendResult(TERM, ("member", me), True, msg.entries[-1].index)
        else:
            answer = HeartbeatResult(TERM, ("member", me), msg.read_ctx)
        router.send_multipart([ident, link.seal(("send", 3, ("$ra", answer)))])


def _sealed_leader(ctx: zmq.Context, router: zmq.Socket, fd: int, key: bytes) -> None:
    followers, poller = _connect_followers(ctx, router)
    links = {dealer: Link(key) for dealer in followers}
    client_link = Link(key)
    client, index, ctx_no, answers = b"", 0, 0, 0
    while True:
        for sock, _ in poller.poll():
            if sock is router:
                client, frame = router.recv_multipart()
                if frame == b"stop":
                    for dealer in followers:
                        dealer.send(b"stop")
                    return
                _, _, _, _, request = client_link.open(frame)
                answers = 0
                if request[0] == "$ra_command":
                    index += 1
                    entry = Entry(TERM, index, (index, request[1]))
                    ae = AppendEntries(TERM, LEADER, index - 1, TERM, (entry,), index - 1)
                    data = pickle.dumps(("send", 3, ("$ra", ae)), 5)  # once for both
                    for dealer in followers:
                        dealer.send(links[dealer].seal_pickled(data))
                    _durable(fd, pickle.dumps(("uid", index, ae.entries), 5))
                else:
                    ctx_no += 1
                    for dealer in followers:
                        hb = Heartbeat(TERM, LEADER, index, ctx_no)
                        dealer.send(links[dealer].seal(("send", 3, ("$ra", hb))))
            else:
                _, _, (_, msg) = links[sock].open(sock.recv())
                current = (msg.index == index if type(msg) is AppendResult
                           else msg.read_ctx == ctx_no)
                if current:  # not a late answer to an earlier request
                    answers += 1
                    if answers == 1:
                        reply = ("reply", 9, ("ok", index, LEADER))
                        router.send_multipart([client, client_link.seal(reply)])


def main() -> None:
    role, path = sys.argv[1], sys.argv[2]
    sealed = sys.argv[3:] == ["sealed"]
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    print(router.bind_to_random_port("tcp://127.0.0.1"), flush=True)
    key = bytes.fromhex(sys.stdin.readline().strip()) if sealed else b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if role == "leader":
            if sealed:
                _sealed_leader(ctx, router, fd, key)
            else:
                _leader(ctx, router, fd)
        elif sealed:
            _sealed_follower(router, fd, key, os.path.basename(path))
        else:
            _follower(router, fd)
    finally:
        os.close(fd)
        ctx.destroy(linger=1000)  # a leader's stop still reaches its followers


if __name__ == "__main__":
    main()
