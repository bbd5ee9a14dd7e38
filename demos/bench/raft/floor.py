"""The floor under the Raft targets: a command's and a consistent read's messages over raw
pyzmq, with the same fdatasyncs, and no Raft, no pickling, no authentication.

Three OS processes (`demos.bench.raft.floor_node`), one thread each, and a DEALER in this
process as the client:
- a command: client -> leader; leader -> both followers; each follower and the leader
  append the frame to a file and fdatasync it; the leader answers once its own write and
  one follower's answer are in. Four one-way hops and a durable write on the path, as in a
  Raft command (ra's and pysyncobj's alike);
- a consistent read: client -> leader -> both followers -> the first answer -> client. Two
  round trips, as a ReadIndex read (one heartbeat round plus the client's hop);
- a plain round trip: client -> a follower -> client (DEALER to ROUTER; as fast as REQ/REP),
  taken in turns with the read, so that their ratio does not depend on the moment: a raw
  round trip here drifts from ~50 to ~170 us with the machine's load.

Whatever an implementation does on top of these messages costs more than this, in time
and in CPU (ZeroMQ's I/O threads, the system calls, the fdatasyncs); so each row's ratio
is the least that any implementation over ZeroMQ, in Python on this machine,
could show against the same run's peer.

`FloorCluster(root, sealed=True)` runs the same model with the work every message of ours
must have, and only that: each hop pickles a term of the shape ours sends and seals it,
and the receiver checks its tag and order before it unpickles it (see `floor_node`). Its
figures are the least an implementation that authenticates and pickles its messages, as
the runtime must, could show.
"""

from __future__ import annotations

import contextlib
import pickle
import secrets
import subprocess
import sys
import time
from pathlib import Path

import zmq

from transport import codec

from ._common import cpu_seconds

_NODE = [sys.executable, "-m", "demos.bench.raft.floor_node"]


class FloorCluster:
    """A leader and two followers of the floor model, their files under `root`."""

    def __init__(self, root: Path, sealed: bool = False) -> None:
        self.root = root
        self.sealed = sealed
        self.key = secrets.token_bytes(32)
        self.sealer, self.opener = codec.Sealer(self.key), codec.Opener(self.key)
        self.procs: list[subprocess.Popen[str]] = []
        self.ctx = zmq.Context()
        self.client = self.ctx.socket(zmq.DEALER)
        self.client.setsockopt(zmq.LINGER, 0)
        self.client.setsockopt(zmq.RCVTIMEO, 10_000)
        self.direct = self.ctx.socket(zmq.DEALER)  # to a follower, for the plain round trip
        self.direct.setsockopt(zmq.LINGER, 0)
        self.direct.setsockopt(zmq.RCVTIMEO, 10_000)
        self.sent = 0

    def _spawn(self, role: str, name: str) -> int:
        mode = ["sealed"] if self.sealed else []
        proc = subprocess.Popen([*_NODE, role, str(self.root / name), *mode],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline())
        if self.sealed:  # the key on stdin: other local users can read arguments
            proc.stdin.write(self.key.hex() + "\n")
            proc.stdin.flush()
        return port

    def start(self) -> None:
        prefix = "sealed_floor" if self.sealed else "floor"
        followers = [self._spawn("follower", f"{prefix}{i}.log") for i in (1, 2)]
        leader = self._spawn("leader", f"{prefix}0.log")
        stdin = self.procs[-1].stdin
        assert stdin is not None
        stdin.write(" ".join(map(str, followers)) + "\n")
        stdin.flush()
        self.client.connect(f"tcp://127.0.0.1:{leader}")
        self.direct.connect(f"tcp://127.0.0.1:{followers[0]}")
        self.command_latencies(20)  # every connection up before anything is timed
        if not self.sealed:  # a sealed follower takes only its leader's frames
            self.round_trip_latencies(20)

    def _latencies(self, kind: bytes, n: int, client: zmq.Socket | None = None) -> list[int]:
        if self.sealed:
            return self._sealed_latencies(kind, n)
        clock, samples, client = time.perf_counter_ns, [], client or self.client
        for _ in range(n):
            self.sent += 1
            frame = kind + b"%010d" % self.sent + b"x" * 53  # 64 bytes
            t0 = clock()
            client.send(frame)
            client.recv()
            samples.append(clock() - t0)
        return samples

    def _sealed_latencies(self, kind: bytes, n: int) -> list[int]:
        """As ours: the caller pickles and seals a call, opens and unpickles the reply."""
        clock, samples, client = time.perf_counter_ns, [], self.client
        seal, open_ = self.sealer.seal, self.opener.open
        request = ("$ra_command", ("incr", 1)) if kind == b"c" else \
            ("$ra_consistent_query", "counter")
        for _ in range(n):
            self.sent += 1
            t0 = clock()
            client.send(seal(codec.Kind.DATA, pickle.dumps(
                ("call", 7, self.sent, "member", request), 5)))
            pickle.loads(open_(client.recv()).payload)
            samples.append(clock() - t0)
        return samples

    def command_latencies(self, n: int) -> list[int]:
        return self._latencies(b"c", n)

    def read_latencies(self, n: int) -> list[int]:
        return self._latencies(b"r", n)

    def round_trip_latencies(self, n: int) -> list[int]:
        return self._latencies(b"r", n, self.direct)

    def cpu_per_command(self, n: int) -> float:
        """µs of CPU (user + system, all threads) summed over the three processes, per
        command, over n sequential commands (as `ra_side.cpu_per_command_ours`)."""
        os_pids = [proc.pid for proc in self.procs]
        before = cpu_seconds(os_pids)
        self.command_latencies(n)
        return (cpu_seconds(os_pids) - before) / n * 1e6

    def stop(self) -> None:
        with contextlib.suppress(zmq.ZMQError):
            self.client.send(b"stop", zmq.NOBLOCK)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        self.procs.clear()
        self.client.close()
        self.direct.close()
        self.ctx.term()
