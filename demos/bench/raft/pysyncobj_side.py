"""The peer side of `python -m demos.bench raft`: pysyncobj in three OS processes.

Three `demos.bench.raft.pysyncobj_node` processes on loopback, made durable as group commit, driven
from the benchmark's process over loopback TCP, one line per command, many in flight (the
setup in full: `demos.bench.raft.run`).

It holds `PsoCluster` (of `PsoMember`s, each driven through a `_Line`) and the peer's
measurements: `seq_latencies_peer`, `pipelined_rate_peer` and `pipelined_rate_peer_batched`
(pysyncobj's batching on at the leader: its throughput setting), `local_rate_peer`
(`counter.get()` in a member's own process) and `failover_peer` (a new leader's
`onStateChanged` stamp, pushed on the member's watch line).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from demos.lab import free_port

from ._common import ROOT, WINDOW, cpu_seconds


class _Line:
    """A control connection to one pysyncobj member."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def read(self) -> str:
        line = self.reader.readline()
        if not line:
            raise ConnectionError("pysyncobj member closed its control connection")
        return line.decode().strip()

    def ask(self, line: str) -> str:
        self.send(line)
        return self.read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


class PsoMember:
    """One pysyncobj member: its OS process, its dir, a control line and a watch line."""

    def __init__(self, index: int, addrs: list[str], root: Path,
                 extra: Sequence[str] = (), password: str = "") -> None:
        self.password = password or secrets.token_hex(16)  # the cluster's, by the env
        self.index = index
        self.extra = list(extra)
        self.addr = addrs[index]
        self.partners = [a for a in addrs if a != self.addr]
        self.dir = root / f"pso{index}"
        self.dir.mkdir(exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl: _Line | None = None
        self.watch: _Line | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "demos.bench.raft.pysyncobj_node", "--self", self.addr,
               "--journal", str(self.dir / "journal"), "--dump", str(self.dir / "dump")]
        for p in self.partners:
            cmd += ["--partner", p]
        cmd += self.extra
        with open(self.dir / "stderr.log", "ab") as errors:  # pysyncobj logs a lot
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=errors,
                                         start_new_session=True,
                                         env={**os.environ, "ERLPY_PSO_PASSWORD": self.password})
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().split()
        if len(ready) != 2 or ready[0] != b"READY":
            raise RuntimeError(f"pysyncobj member {self.addr} did not start: {ready!r}")
        port = int(ready[1])
        self.ctl = _Line(port)
        self.watch = _Line(port)
        if self.watch.ask("watch") != "watching":
            raise RuntimeError("pysyncobj watch")

    def status(self) -> dict[str, Any]:
        assert self.ctl is not None
        return json.loads(self.ctl.ask("status"))  # type: ignore[no-any-return]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        for line in (self.ctl, self.watch):
            if line is not None:
                line.close()
        self.ctl = self.watch = None
        if self.proc is not None:
            with contextlib.suppress(OSError):
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


class PsoCluster:
    """Three `PsoMember`s on free loopback ports, each the others' partner."""

    def __init__(self, root: Path, extra: Sequence[str] = ()) -> None:
        addrs = [f"127.0.0.1:{free_port()}" for _ in range(3)]
        password = secrets.token_hex(16)  # random per run: pysyncobj unpickles its traffic
        self.members = [PsoMember(i, addrs, root, extra, password) for i in range(3)]

    def start(self) -> None:
        for m in self.members:
            m.start()
        self.wait_whole()

    def leader(self, timeout_s: float = 20.0) -> PsoMember:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in self.members:
                if m.proc is not None and m.status()["state"] == 2:
                    return m
            time.sleep(0.02)
        raise RuntimeError("the pysyncobj cluster has no leader")

    def wait_whole(self, timeout_s: float = 30.0) -> None:
        """Every member follows one leader and has applied what it committed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            views = [m.status() for m in self.members]
            leaders = {v["leader"] for v in views}
            states = sorted(v["state"] for v in views)
            applied = {v["last_applied"] for v in views}
            if len(leaders) == 1 and None not in leaders and states == [0, 0, 2] and \
                    len(applied) == 1:
                self._drain_watch()
                return
            time.sleep(0.05)
        raise RuntimeError("the pysyncobj cluster did not become whole")

    def _drain_watch(self) -> None:
        for m in self.members:
            assert m.watch is not None
            m.watch.sock.setblocking(False)
            try:
                while True:
                    ready, _, _ = select.select([m.watch.sock], [], [], 0)
                    if not ready:
                        break
                    m.watch.reader.readline()
            except (BlockingIOError, OSError):
                pass
            finally:
                m.watch.sock.setblocking(True)

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def log_summary(self) -> list[str]:
        """What the members wrote to stderr, as counts of distinct lines (numbers elided)."""
        counts: dict[str, int] = {}
        for m in self.members:
            path = m.dir / "stderr.log"
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    key = re.sub(r"\d+", "N", line.strip())[:100]
                    counts[key] = counts.get(key, 0) + 1
        return [f"{n:6d} x {key}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def seq_latencies_peer(leader: PsoMember, n: int) -> list[int]:
    line = leader.ctl
    assert line is not None
    clock, samples = time.perf_counter_ns, []
    for i in range(n):
        t0 = clock()
        answer = line.ask(f"inc {i}")
        samples.append(clock() - t0)
        if not answer.startswith("ok"):
            raise RuntimeError(f"pysyncobj inc: {answer}")
    return samples


def pipelined_rate_peer(leader: PsoMember, total: int, window: int = WINDOW) -> float:
    line = leader.ctl
    assert line is not None
    sent = done = 0
    t0 = time.perf_counter()
    line.sock.sendall(b"".join(f"inc {i}\n".encode() for i in range(min(window, total))))
    sent = min(window, total)
    while done < total:
        answer = line.read()
        if not answer.startswith("ok"):
            raise RuntimeError(f"pysyncobj inc: {answer}")
        done += 1
        if sent < total:
            line.send(f"inc {sent}")
            sent += 1
    return total / (time.perf_counter() - t0)


def pipelined_rate_peer_batched(leader: PsoMember, total: int, window: int = WINDOW) -> float:
    """As `pipelined_rate_peer`, with pysyncobj's batching on for the run (its throughput
    setting: AppendEntries every 100 ms; with it off, AppendEntries per command overlap
    and its followers keep truncating and rewriting their logs)."""
    assert leader.ctl is not None
    leader.ctl.ask("batch 1")
    try:
        return pipelined_rate_peer(leader, total, window)
    finally:
        leader.ctl.ask("batch 0")


def cpu_per_command_peer(cluster: PsoCluster, n: int, pipelined: bool) -> float:
    """As `ra_side.cpu_per_command_ours`, for the three pysyncobj processes (with its
    throughput setting for the pipelined run, as for the throughput figure)."""
    os_pids = [m.proc.pid for m in cluster.members if m.proc is not None]
    leader = cluster.leader()
    before = cpu_seconds(os_pids)
    if pipelined:
        pipelined_rate_peer_batched(leader, n)
    else:
        seq_latencies_peer(leader, n)
    return (cpu_seconds(os_pids) - before) / n * 1e6


def local_rate_peer(member: PsoMember, n: int) -> float:
    assert member.ctl is not None
    answer = member.ctl.ask(f"local {n}").split()
    return float(answer[1])


def failover_peer(cluster: PsoCluster, sig: int, restart: bool) -> float:
    old = cluster.leader()
    cluster._drain_watch()
    survivors = [m for m in cluster.members if m is not old]
    socks = {m.watch.sock: m for m in survivors if m.watch is not None}
    assert old.proc is not None
    t0 = time.monotonic_ns()
    old.kill(sig)
    try:
        stamp = None
        deadline = time.monotonic() + 15.0
        while stamp is None and time.monotonic() < deadline:
            ready, _, _ = select.select(list(socks), [], [], max(0.0, deadline - time.monotonic()))
            for sock in ready:
                member = socks[sock]
                assert member.watch is not None
                parts = member.watch.read().split()
                if parts and parts[0] == "leader":
                    stamp = int(parts[2])
    finally:
        old.kill(signal.SIGKILL)
    if stamp is None:
        raise RuntimeError(f"no new pysyncobj leader within 15 s of signal {sig}")
    old.stop()
    if restart:
        old.start()
        cluster.wait_whole()
    return (stamp - t0) / 1e6

