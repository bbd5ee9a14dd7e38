"""A REAL network cut: two nodes in two Linux network namespaces joined by a veth pair; the
test takes the link down under them and brings it back.

Node B is a plain `python -m actors.node`; node A is `tests/netns_driver.py`, which the test
drives over stdin/stdout (the test process is outside both namespaces, so it cannot join the
cluster). Needs root and `ip netns`; skipped otherwise. Every read is bounded in time.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COOKIE = "netns-cookie"
CUT_DETECTED_MS = 3000


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10,
                          check=check)


class Net:
    """Two namespaces a_ns, b_ns; veth a_if (10.201.x.1) <-> b_if (10.201.x.2)."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.a_ns, self.b_ns = f"erlpy-a{pid}", f"erlpy-b{pid}"
        self.a_if, self.b_if = f"erva{pid}"[:15], f"ervb{pid}"[:15]
        x = pid % 250 + 1
        self.a_ip, self.b_ip = f"10.201.{x}.1", f"10.201.{x}.2"
        self.a_port, self.b_port = 20000 + pid % 10000, 30000 + pid % 10000
        self.made: list[str] = []

    def create(self) -> None:
        for ns in (self.a_ns, self.b_ns):
            _ip("netns", "add", ns)
            self.made.append(ns)
        _ip("link", "add", self.a_if, "netns", self.a_ns, "type", "veth",
            "peer", "name", self.b_if, "netns", self.b_ns)
        for ns, iface, addr in ((self.a_ns, self.a_if, self.a_ip),
                                (self.b_ns, self.b_if, self.b_ip)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", iface)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", iface, "up")

    def delete(self) -> None:
        for ns in self.made:  # deleting a namespace deletes its end of the veth, and the pair
            _ip("netns", "del", ns, check=False)
        self.made.clear()

    def set_link(self, up: bool) -> None:
        _ip("-n", self.a_ns, "link", "set", self.a_if, "up" if up else "down")


@pytest.fixture
def net() -> Iterator[Net]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip`")
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"`ip netns` is unavailable: {probe.stderr.strip()}")
    n = Net()
    try:
        try:
            n.create()
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot make network namespaces: {exc.stderr.strip()}")
        yield n
    finally:
        n.delete()


class Proc:
    """A child process in a namespace, whose stdout lines we read with a deadline."""

    def __init__(self, ns: str, args: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "ERLPY_COOKIE": COOKIE}
        self.popen = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, *args],
                                      cwd=REPO, env=env, text=True, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)
        self.sel = selectors.DefaultSelector()
        assert self.popen.stdout is not None
        self.sel.register(self.popen.stdout, selectors.EVENT_READ)
        self.seen: list[str] = []

    def line(self, timeout_s: float) -> str:
        """The next line of output; fails the test if none comes in time."""
        deadline = time.monotonic() + timeout_s
        assert self.popen.stdout is not None
        while (left := deadline - time.monotonic()) > 0:
            if self.sel.select(left):
                text = self.popen.stdout.readline()
                assert text, f"the process ended (output so far: {self.seen})"
                self.seen.append(text.strip())
                return text.strip()
        raise AssertionError(f"no output within {timeout_s} s (output so far: {self.seen})")

    def say(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(5)
        self.sel.close()
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def test_real_link_cut_gives_noconnection_and_the_nodes_reconnect(net: Net) -> None:
    a_name, b_name = f"a@{net.a_ip}", f"b@{net.b_ip}"
    a_addr = f"tcp://{net.a_ip}:{net.a_port}"
    b_addr = f"tcp://{net.b_ip}:{net.b_port}"
    procs: list[Proc] = []
    try:
        b = Proc(net.b_ns, ["-m", "actors.node", "--name", b_name, "--cookie", COOKIE,
                            "--listen", b_addr, "--no-epmd", "--seed", f"{a_name}={a_addr}"])
        procs.append(b)
        assert b.line(10) == f"READY {b_name} {b_addr}"
        a = Proc(net.a_ns, ["-m", "tests.netns_driver", "--name", a_name, "--listen", a_addr,
                            "--cookie", COOKIE, "--other", f"{b_name}={b_addr}"])
        procs.append(a)
        assert a.line(10) == "CONNECTED"

        net.set_link(False)  # the cable is pulled: no RST, no FIN, just silence
        a.say("cut-wait")
        reply = a.line(CUT_DETECTED_MS / 1000 + 2).split()
        print(f"\nreal link cut -> DOWN: {reply}")
        assert reply[:2] == ["DOWN", "noconnection"], reply
        assert int(reply[2]) < CUT_DETECTED_MS

        net.set_link(True)
        a.say("reconnect")
        reply = a.line(12).split()
        print(f"link back -> {reply}")
        assert reply[0] == "RECONNECTED", reply
        a.say("quit")
    finally:
        for proc in procs:
            proc.kill()
