"""A full disk under one member of a three-node ra cluster, on real node OS processes.

One node's data dir is a 2 MB tmpfs (mounting it needs root: the tests skip otherwise); the
other two use ordinary tmp dirs. The tests fill the tmpfs with a filler file and keep writing.

What ra does, and what is asserted here: the full node's WAL writer crashes on ENOSPC
(logged with the file's path), and its supervisor restarts the system's processes (WAL
writer, members), which recover from disk, truncating the torn record the failed write left.
The next replicated write fails the same way (or, once a new leader's term must be stored,
the member's hard-state write does), so the system supervisor soon reaches its restart
intensity and the node's ra system stops: the node stays up but serves no ra (calls to its
member get ("error", "noproc") at once) until an operator frees space and starts the system
again (`ra.start`, then `ra.restart_server`); nothing restarts it by itself.

The two healthy members keep committing throughout. If the full node led, it goes on leading
(its followers' writes make the quorum) until its own WAL write fails; its member then
restarts as a follower, the healthy two elect a leader after an election timeout, and the
client (`ra.process_command` through a healthy member) follows the leader change: commands
wait for it rather than fail. No acknowledged command is lost, and once restarted the full
member catches up and all three states are identical. A command in flight when the full
leader's member died is applied at most once: its caller is told of the failure and the
command is not sent again (`test_a_command_in_flight_...`).
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, peer, ra, rpc, sys
from actors.ra._records import scan
from tests.ra import ra_helpers as h

TMPFS_SIZE = "2m"
PAD = "x" * 200  # commands of a few hundred bytes: the WAL outgrows its last page at once
FAILOVER_BOUND_S = 5.0
SYSTEM_SUP = "ra_default_sup"
PAGE = os.sysconf("SC_PAGE_SIZE")  # tmpfs allocates whole pages

# ---------------------------------------------------------------- the small disk


class SmallDisk:
    """A tmpfs mounted at `path`; `nodes` are the peer controllers of the nodes using it,
    killed before it is unmounted."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.nodes: list[Any] = []

    def mount(self, path: Path) -> Path:
        if os.geteuid() != 0:
            pytest.skip("full-disk test needs root to mount a tmpfs: not running as root")
        path.mkdir(parents=True)
        options = f"size={TMPFS_SIZE},mode=0700"  # a data dir must be private (ra._trust)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            pytest.skip(f"full-disk test needs root to mount a tmpfs: {done.stderr.strip()}")
        self.path = path
        return path

    @property
    def filler(self) -> Path:
        assert self.path is not None
        return self.path / "filler"

    def fill(self) -> int:
        """Write the filler until ENOSPC, in ever smaller chunks: ~no space is left."""
        written = 0
        with open(self.filler, "wb", buffering=0) as f:
            for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
                while True:  # bounded: the disk is 2 MB
                    try:
                        written += f.write(b"\0" * chunk) or 0
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        assert os.statvfs(self.path).f_bavail == 0, "the tmpfs still has room"
        return written

    def free(self) -> None:
        self.filler.unlink()

    def release(self) -> None:
        for pid in self.nodes:  # nothing may hold a file of the tmpfs open
            try:
                peer.kill(pid)
                h.poll(lambda p=pid: peer.get_state(p) == "down", 5, what="node down")
            except Exception:
                pass
        if self.path is None:
            return
        done = subprocess.run(["umount", str(self.path)], capture_output=True, timeout=30)
        if done.returncode != 0:  # busy: detach it now, it goes when the last user does
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)


@pytest.fixture
def small_disk(peers: Any) -> Iterator[SmallDisk]:
    """(after `peers`, so torn down before it: the nodes are killed, then the tmpfs goes)"""
    disk = SmallDisk()
    try:
        yield disk
    finally:
        disk.release()


# ---------------------------------------------------------------- helpers


def _start(peers: Any, tmp_path: Path, disk: SmallDisk,
           prefix: str) -> tuple[h.Cluster, str, h.ServerId]:
    """A cluster of three nodes, the last one's data dir on the small disk."""
    c = h.Cluster(peers, tmp_path, prefix)
    disk.mount(tmp_path / f"{prefix}2")
    nodes = c.add_nodes([f"{prefix}{i}" for i in range(3)])
    full = nodes[2]
    disk.nodes.append(c.ctl[full])
    assert rpc.call(full, h.keep_logs, [], 5000) == "ok"
    c.start(nodes, h.log_machine())
    return c, full, c.sid(full)


def _lead(c: h.Cluster, target: h.ServerId) -> h.ServerId:
    """Make `target` the leader."""
    leader = h.wait_leader(c.ids)
    if leader != target:
        assert ra.transfer_leadership(leader, target) == "ok"
        h.poll(lambda: h.leader_of(c.ids) == target, FAILOVER_BOUND_S,
               what=f"{target} leading")
    return target


def _write(entry: Any, tag: str, n: int, leader: h.ServerId | None = None) -> list[Any]:
    """n commands, each acknowledged (by `leader`, if given); the commands."""
    commands = []
    for i in range(n):
        command = (tag, i, PAD)
        result = ra.process_command(entry, command, 5000)
        assert result[0] == "ok", (command[:2], result)
        assert leader is None or result[2] == leader, result
        commands.append(command)
    return commands


def _wal_path(c: h.Cluster, node: str) -> str:
    wals = h.files_under(str(Path(c.data_dir(node)) / "wal"), ".wal")
    assert len(wals) == 1, wals
    return wals[0][0]


def _ra_stops_on_enospc(full: str, fsid: h.ServerId, wal: str) -> list[str]:
    """The full node's ra system gives up; the node itself is up and says why. Returns
    the errors it logged that name the WAL file and ENOSPC."""
    h.poll(lambda: rpc.call(full, erlang.whereis, [SYSTEM_SUP], 5000) == "undefined", 10,
           what=f"the ra system of {full} stopping")
    errors = rpc.call(full, h.logged, ["ERROR", f"writing WAL file {wal} failed",
                                     "No space left on device"], 5000)
    print(f"\n{full}: {errors[0] if errors else None}")
    assert errors, "no error naming the WAL file and ENOSPC was logged"
    assert rpc.call(full, h.logged, ["reached_max_restart_intensity", SYSTEM_SUP], 5000)
    assert ra.restart_server(h.SYSTEM, fsid) == ("error", "system_not_started")
    return errors  # type: ignore[no-any-return]


def _recover(c: h.Cluster, disk: SmallDisk, full: str, fsid: h.ServerId, wal: str,
             acked: list[Any], wal_failed_last: bool) -> tuple[Any, ...]:
    """Free the space, start the full node's ra system and member again: the member catches
    up, the three states are identical and hold every acknowledged command, in the order
    acknowledged, none of them twice. The state.

    `wal_failed_last`: the WAL writer's failed write was the last thing the node did (no
    restart after it truncated the torn record it left). A write to a full tmpfs fills the
    file's last page before it fails, so the file then ends in a torn record unless its
    valid data ended on a page boundary."""
    with open(wal, "rb") as f:
        left = scan(f.read(), wal)  # as the full disk left it
    if wal_failed_last:
        assert left.torn == (left.end % PAGE != 0), (left.end, left.detail)
    disk.free()
    assert rpc.call(full, h.ra_start, [c.data_dir(full), c.opts], 20_000) == "ok"
    assert ra.restart_server(h.SYSTEM, fsid) == "ok"
    h.wait_caught_up(c.ids, 15)
    states = {sid: h.local_state(sid)[1] for sid in c.ids}
    assert len({repr(state) for state in states.values()}) == 1, "the states differ"
    state: tuple[Any, ...] = states[fsid]
    wanted = set(acked)
    found = [cmd for cmd in state if cmd in wanted]
    assert found == acked, f"lost: {[cmd[:2] for cmd in acked if cmd not in set(found)]}"

    with open(wal, "rb") as f:
        data = f.read()
    assert not scan(data, wal).torn, "the WAL still ends in a torn record"
    print(f"{wal} as the full disk left it: {left.end} valid bytes, torn={left.torn}")
    if left.torn:  # recovery truncated it, and said so
        assert rpc.call(full, h.logged, ["WARNING", f"{wal}: torn tail at byte offset {left.end}",
                                       "truncating"], 5000)
        assert len(data) >= left.end
    return state


# ---------------------------------------------------------------- the tests


def test_a_follower_whose_disk_fills_stops_its_ra_the_others_commit_and_it_catches_up(
        dist_node: Node, peers: Any, tmp_path: Path, small_disk: SmallDisk) -> None:
    c, full, fsid = _start(peers, tmp_path, small_disk, "fdf")
    leader = _lead(c, c.ids[0])
    acked = _write(leader, "before", 20, leader)
    h.wait_caught_up(c.ids)
    wal = _wal_path(c, full)

    small_disk.fill()
    t0 = time.monotonic()
    acked += _write(leader, "full", 100, leader)  # the two healthy members commit them all
    written_s = time.monotonic() - t0
    errors = _ra_stops_on_enospc(full, fsid, wal)
    assert len(errors) > 1, errors  # restarted, the WAL writer recovered and failed again
    print(f"100 commands with {full}'s disk full in {written_s * 1000:.0f} ms; its ra system "
          f"stopped after {time.monotonic() - t0:.1f} s")
    assert h.overview(fsid) is None
    acked += _write(c.ids[1], "after", 20, leader)  # still, through the other follower
    assert ra.consistent_query(leader, h.count) == ("ok", len(acked), leader)

    state = _recover(c, small_disk, full, fsid, wal, acked, wal_failed_last=True)
    assert state == tuple(acked)  # the leader was never in doubt: each command once
    assert h.wait_leader(c.ids) == leader


def test_a_leader_whose_disk_fills_loses_the_lead_and_nothing_acknowledged(
        dist_node: Node, peers: Any, tmp_path: Path, small_disk: SmallDisk) -> None:
    c, full, fsid = _start(peers, tmp_path, small_disk, "fdl")
    healthy = [sid for sid in c.ids if sid != fsid]
    _lead(c, fsid)
    acked = _write(fsid, "before", 20, fsid)
    h.wait_caught_up(c.ids)
    wal = _wal_path(c, full)
    meta = str(Path(c.data_dir(full)) / "members" / h.overview(fsid)["uid"] / "meta")  # type: ignore[index]

    small_disk.fill()
    t0 = time.monotonic()
    w = erlang.spawn(h.writer, erlang.self(), healthy[0], "w", 3000)  # routed to the leader
    new_leader = h.poll(lambda: (ld := h.leader_of(c.ids)) in healthy and ld,
                        FAILOVER_BOUND_S + 1, what="a healthy member leading")
    moved_s = time.monotonic() - t0
    h.wait_writer_progress(w, h.writer_progress(w) + 20, FAILOVER_BOUND_S)
    results = h.stop_writer(w, "w")
    _ra_stops_on_enospc(full, fsid, wal)
    # restarted, its member could not store the new leader's term (its hard state)
    assert rpc.call(full, h.logged, ["ERROR", f"writing {meta} failed",
                                   "No space left on device"], 5000)
    failed = [r for _, r in results if r[0] != "ok"]
    by_full = sum(1 for _, r in results if r[0] == "ok" and r[2] == fsid)
    print(f"leader {full} with a full disk: {new_leader[1]} leads after {moved_s * 1000:.0f} ms;"
          f" writer: {len(results) - len(failed)} ok ({by_full} from the full leader), "
          f"{sorted({repr(r) for r in failed})}")
    assert moved_s < FAILOVER_BOUND_S
    # until then commands wait (the client follows the leader change) or fail clearly
    assert all(r[0] in ("error", "timeout") for r in failed), failed
    assert all(r[0] == "ok" and r[2] == new_leader for _, r in results[-20:]), results[-20:]
    # its ra system stopped, the full node answers at once; through a list, another member
    assert ra.process_command(fsid, ("gone", 0), 1000) == ("error", "noproc")
    assert ra.process_command([fsid, *healthy], ("list", 0), 3000)[0] == "ok"

    acked += [("w", i) for i, r in results if r[0] == "ok"]
    acked.append(("list", 0))
    _recover(c, small_disk, full, fsid, wal, acked, wal_failed_last=False)


def test_a_command_in_flight_when_the_full_leader_fails_is_applied_once(
        dist_node: Node, peers: Any, tmp_path: Path, small_disk: SmallDisk) -> None:
    c, full, fsid = _start(peers, tmp_path, small_disk, "fdd")
    healthy = [sid for sid in c.ids if sid != fsid]
    _lead(c, fsid)
    _write(fsid, "before", 5, fsid)
    last = h.wait_caught_up(c.ids)[fsid]["last_index"]
    # the followers store what they get but write nothing (their WAL writers are
    # suspended), so they acknowledge nothing: the command cannot commit before the leader
    # fails, and stays in their logs
    for sid in healthy:
        assert sys.suspend(("ra_default_log_wal", sid[1])) == "ok"
    small_disk.fill()
    big = ("big", "y" * 8192)  # over a page: the full leader's WAL cannot take it
    me = erlang.self()
    erlang.spawn(lambda: erlang.send(me, ("result", ra.process_command(healthy[0], big, 10_000))))
    h.poll(lambda: all(h.overview(s)["last_index"] == last + 1 for s in healthy),  # type: ignore[index]
           5, what="the followers holding the command")
    h.poll(lambda: rpc.call(full, h.logged, ["writing WAL file", "No space left"], 5000), 5,
           what="the full leader's WAL writer failing")
    for sid in healthy:
        assert sys.resume(("ra_default_log_wal", sid[1])) == "ok"
    result = erlang.receive(lambda m: type(m) is tuple and m[0] == "result", 15_000)
    assert result is not erlang.TIMEOUT, "process_command never answered"
    # the leader the call was redirected to died holding the command: the client is told
    # so (its fate is unknown to it) and the command is NOT sent again, as in ra. Either
    # way it is applied at most once, and exactly once if acknowledged.
    answer = result[1]
    assert answer[0] == "ok" or answer[0] == "error", answer
    new_leader = h.wait_leader(healthy)
    h.wait_caught_up(healthy)
    state = h.local_state(new_leader)[1]
    applied = state.count(big)
    assert applied == 1 if answer[0] == "ok" else applied <= 1, (answer, applied)
