"""`actors.peer` and `python -m actors.node`: nodes in their own OS processes, their lives
tied to their starters, found by name through the port mapper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, net_kernel, peer, rpc

from .conftest import COOKIE
from .helpers import down_of, recv, wait_until

ROOT = Path(__file__).resolve().parents[1]


def _gone(os_pid: int) -> bool:
    """True once the OS process has exited (a zombie still counts as gone)."""
    try:
        with open(f"/proc/{os_pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped before the open, or the read
        return True


def test_start_returns_a_connected_node_and_stop_ends_it(dist_node: Node) -> None:
    ok, peer_pid, node = peer.start("solo")
    assert ok == "ok" and node == "solo@127.0.0.1" and erlang.node(peer_pid) == dist_node.name
    assert node in erlang.nodes()
    os_pid = peer.os_pid(peer_pid)
    assert rpc.call(node, os.getpid) == os_pid != os.getpid()
    assert peer.get_state(peer_pid) == "running"
    erlang.monitor_node(node, True)
    assert peer.stop(peer_pid) == "ok"
    recv(lambda m: m == ("nodedown", node))
    assert _gone(os_pid)
    assert node not in erlang.nodes()


def test_killing_the_controller_halts_the_node(dist_node: Node) -> None:
    _, peer_pid, node = peer.start()
    os_pid = peer.os_pid(peer_pid)
    erlang.monitor_node(node, True)
    erlang.exit(peer_pid, "kill")  # untrappable: no terminate runs, the OS child still goes
    recv(lambda m: m == ("nodedown", node))
    wait_until(lambda: _gone(os_pid), timeout=5.0)


def test_start_link_ties_the_node_to_the_caller(dist_node: Node) -> None:
    me = erlang.self()

    def starter() -> None:
        result = peer.start_link()
        erlang.send(me, ("started", result, peer.os_pid(result[1])))
        erlang.receive()  # until killed

    starter_pid, ref = erlang.spawn_monitor(starter)
    _, (_, peer_pid, node), os_pid = recv(lambda m: m[0] == "started", timeout=20000)
    controller = erlang.monitor("process", peer_pid)
    erlang.exit(starter_pid, "kill")
    recv(down_of(ref))
    assert recv(down_of(controller))[4] == "killed"  # the link took the controller down
    wait_until(lambda: _gone(os_pid), timeout=5.0)
    wait_until(lambda: node not in erlang.nodes())


def test_a_node_dies_with_its_starters_os_process(tmp_path: Path) -> None:
    """SIGKILL of the OS process that started a peer: the pipe to the peer closes and the
    peer halts, as OTP's peer does when its control connection goes."""
    script = tmp_path / "starter.py"
    script.write_text(
        "import sys\n"
        "from actors import net_kernel, peer\n"
        f"net_kernel.start('starter{os.getpid()}@127.0.0.1', cookie={COOKIE!r})\n"
        "ok, pid, node = peer.start()\n"
        "print(peer.os_pid(pid), flush=True)\n"
        "sys.stdin.read()\n"
    )
    starter = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        child = int(starter.stdout.readline())
        assert not _gone(child)
        starter.kill()
        starter.wait(10)
        wait_until(lambda: _gone(child), timeout=5.0)
    finally:
        starter.kill()
        starter.wait(10)


def test_a_name_can_be_started_again_after_a_stop(dist_node: Node) -> None:
    _, first, node = peer.start("again")
    peer.stop(first)
    ok, second, node2 = peer.start("again")
    assert ok == "ok" and node2 == node
    assert rpc.call(node, erlang.node) == node
    peer.stop(second)


def test_a_pid_of_an_earlier_incarnation_stays_dead(dist_node: Node) -> None:
    """Pids carry their node's creation: the same serial on the restarted node is another
    process, so the old pid gets no messages and a monitor on it says noproc."""
    me = erlang.self()
    _, first, node = peer.start("phoenix")
    old = erlang.spawn(node, _forward_one, me)
    peer.stop(first)
    _, second, _ = peer.start("phoenix")
    new = erlang.spawn(node, _forward_one, me)
    assert new.node == old.node and new != old
    erlang.send(old, "to the old one")
    erlang.send(new, "to the new one")
    assert recv(lambda m: m[0] == "got") == ("got", "to the new one")
    ref = erlang.monitor("process", old)
    assert recv(down_of(ref))[4] == "noproc"
    peer.stop(second)


def _forward_one(to: Any) -> None:
    erlang.send(to, ("got", erlang.receive()))


@pytest.fixture
def standalone() -> Any:
    """`python -m actors.node` started by hand, as `erl -name ... -setcookie ...`."""
    name = f"hand{os.getpid()}@127.0.0.1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors.node", "--name", name, "--cookie", COOKIE],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[:2] == ["READY", name], line
    yield name, proc
    proc.kill()
    proc.wait(10)


def test_a_node_started_by_hand_is_found_by_name_alone(dist_node: Node,
                                                      standalone: Any) -> None:
    name, proc = standalone
    assert name not in dist_node.dist.config.seeds  # type: ignore[union-attr]
    assert net_kernel.connect_node(name) is True  # the port mapper knows where it listens
    assert rpc.call(name, os.getpid) == proc.pid
    erlang.monitor_node(name, True)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # stops the node cleanly
    assert proc.wait(10) == 0
    recv(lambda m: m == ("nodedown", name))
    assert time.monotonic() - t0 < 10
    assert net_kernel.connect_node(name) is False  # its name left the port mapper with it


def test_init_stop_ends_a_node_cleanly(dist_node: Node, standalone: Any) -> None:
    name, proc = standalone
    assert net_kernel.connect_node(name) is True
    erlang.monitor_node(name, True)
    assert rpc.call(name, "init", "stop", []) == "ok"
    recv(lambda m: m == ("nodedown", name))
    assert proc.wait(10) == 0


def _chatty(lines: int) -> int:
    for i in range(lines):
        print(f"line {i} " + "x" * 100)
    return lines


def test_a_peer_that_prints_a_lot_does_not_hang(dist_node: Node) -> None:
    """Nobody reads a peer's stdout after it is up: its output goes to stderr instead of
    filling a pipe and blocking the node."""
    _, peer_pid, node = peer.start()
    assert rpc.call(node, _chatty, [2000], 20000) == 2000  # ~220 KB, over any pipe buffer
    assert rpc.call(node, erlang.node, [], 5000) == node
    peer.stop(peer_pid)


def test_the_cookie_is_not_on_a_peers_command_line(dist_node: Node) -> None:
    _, peer_pid, _ = peer.start()
    with open(f"/proc/{peer.os_pid(peer_pid)}/cmdline", "rb") as cmdline:
        argv = cmdline.read()
    assert b"actors.node" in argv and COOKIE.encode() not in argv
    peer.stop(peer_pid)
