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
"""

from __future__ import annotations

import os
import sys

import zmq


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


def _leader(ctx: zmq.Context, router: zmq.Socket, fd: int) -> None:
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


def main() -> None:
    role, path = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    print(router.bind_to_random_port("tcp://127.0.0.1"), flush=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if role == "leader":
            _leader(ctx, router, fd)
        else:
            _follower(router, fd)
    finally:
        os.close(fd)
        ctx.destroy(linger=1000)  # a leader's stop still reaches its followers


if __name__ == "__main__":
    main()
