"""ra under real faults: SIGKILL of the leader's node, a 3|2 partition, a full-cluster
crash, and damaged files on disk. Every node is its own OS process on loopback; a killed
node comes back as a new OS process with the same node name and the same data dir.

Measured times are printed (run with -s); the bounds asserted are generous.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, net_kernel, ra, rpc
from actors.ra._records import HEADER_SIZE, encode, scan
from tests.ra import ra_helpers as h

FAILOVER_BOUND_S = 5.0


def _acked(results: list[tuple[int, Any]]) -> list[int]:
    return [i for i, r in results if r[0] == "ok"]


# -- failover ---------------------------------------------------------------------------------


def test_sigkill_of_the_leader_elects_a_new_one_loses_nothing_and_the_node_catches_up(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "fo")
    nodes = c.add_nodes([f"fo{i}" for i in range(3)])
    leader = c.start(nodes, h.log_machine())
    entry = next(s for s in c.ids if s != leader)  # a member that survives
    survivors = [s for s in c.ids if s != leader]

    w = erlang.spawn(h.writer, erlang.self(), entry, "w", 3000)
    before = h.wait_writer_progress(w, 50)
    t0 = time.monotonic()
    c.kill(leader[1])
    new_leader = h.wait_leader(survivors, FAILOVER_BOUND_S)
    elected_s = time.monotonic() - t0
    h.wait_writer_progress(w, h.writer_progress(w) + 20, FAILOVER_BOUND_S)  # writes go on
    results = h.stop_writer(w, "w")
    first_ok_after = next((t for t in range(len(results)) if results[t][1][0] == "ok"
                           and results[t][1][2] == new_leader), None)
    print(f"\nleader SIGKILL -> new leader {new_leader[1]} elected in {elected_s * 1000:.0f} ms;"
          f" {before}+ writes acknowledged before the kill, {len(_acked(results))} in all")
    assert new_leader in survivors and elected_s < FAILOVER_BOUND_S
    assert first_ok_after is not None

    # every acknowledged command is in the new leader's state (linearizable read)
    got = ra.consistent_query(new_leader, h.identity)
    assert got[0] == "ok" and got[2] == new_leader, got
    applied = got[1]
    missing = [i for i in _acked(results) if ("w", i) not in applied]
    assert not missing, f"acknowledged but lost: {missing[:10]}"
    assert all(cmd[0] == "w" for cmd in applied)
    # acknowledged replies count the commands applied so far: strictly increasing
    counts = [r[1] for _, r in results if r[0] == "ok"]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)

    # the killed node comes back (same name, same data dir) and catches up
    for i in range(20):
        assert ra.process_command(entry, ("after", i))[0] == "ok"
    node = c.add_node(leader[1].split("@")[0])
    assert node == leader[1]
    assert ra.restart_server(h.SYSTEM, leader) == "ok"
    views = h.wait_caught_up(c.ids, 15)
    states = {s: h.local_state(s) for s in c.ids}
    assert len({repr(st) for st in states.values()}) == 1, "the states differ"
    assert states[leader][1][-20:] == tuple(("after", i) for i in range(20))
    assert len({v["last_index"] for v in views.values()}) == 1


# -- a minority partition -----------------------------------------------------------------------


def _try_on(node: str, fun: Any, *args: Any) -> Any:
    """fun(*args) in a process on `node` (so that it sees only that node's side of a cut)."""
    return rpc.call(node, fun, list(args), 10_000)


def _minority_attempts(minority: list[h.ServerId], rounds: int) -> list[Any]:
    """(on a minority node) Writes and consistent queries against every minority member,
    short timeouts; every result."""
    out = []
    for r in range(rounds):
        for sid in minority:
            out.append(("write", sid, ra.process_command(sid, ("minority", r, sid[1]), 300)))
            out.append(("query", sid, ra.consistent_query(sid, h.count, 300)))
    return out


@pytest.mark.parametrize("leader_in", ["minority", "majority"])
def test_a_minority_partition_serves_nothing_and_catches_up_after_heal(
        dist_node: Node, peers: Any, tmp_path: Path, leader_in: str) -> None:
    prefix = "mp" + leader_in[:3]
    c = h.Cluster(peers, tmp_path, prefix)
    nodes = c.add_nodes([f"{prefix}{i}" for i in range(5)])
    leader = c.start(nodes, h.log_machine())
    for i in range(20):
        assert ra.process_command(c.ids[i % 5], ("before", i))[0] == "ok"
    term = h.wait_caught_up(c.ids)[leader]["term"]

    # "minority": the leader is cut off with one follower, a stale leader that must serve
    # nothing; "majority": two followers are cut off, still naming a leader they cannot reach
    followers = [s for s in c.ids if s != leader]
    minority = [leader, followers[0]] if leader_in == "minority" else followers[:2]
    majority = [s for s in c.ids if s not in minority]
    minority_nodes, majority_nodes = [s[1] for s in minority], [s[1] for s in majority]
    me = erlang.self()
    t0 = time.monotonic()
    assert net_kernel.partition(minority_nodes, majority_nodes) == "ok"

    # at once, while the old leader may still think it leads: no linearizable read, no
    # commit (tried from a minority node, in parallel with the majority's election)
    erlang.spawn(lambda: erlang.send(me, ("early", _try_on(
        minority_nodes[1], _minority_attempts, minority, 1))))
    new_leader = h.wait_leader(majority, 10)
    elected_s = time.monotonic() - t0
    print(f"\n3|2 partition, leader in the {leader_in} -> majority leader {new_leader[1]} "
          f"in {elected_s * 1000:.0f} ms")
    assert (new_leader == leader) == (leader_in == "majority")

    # the majority serves writes and linearizable reads
    for i in range(30):
        assert ra.process_command(majority[i % 3], ("majority", i))[0] == "ok", i
    got = ra.consistent_query(majority[0], h.count)
    assert got == ("ok", 50, new_leader), got

    # the minority, later too: never an "ok"
    early = erlang.receive(lambda m: type(m) is tuple and m[0] == "early", 10_000)[1]
    assert type(early) is list, early
    late = _try_on(minority_nodes[0], _minority_attempts, minority, 1)
    for kind, sid, result in early + late:
        assert result[0] in ("error", "timeout"), (kind, sid, result)
    answers = sorted({f"{r[2][0]} {r[2][1]!r}" for r in early + late})
    print(f"minority answers: {answers}")

    # heal: every member ends with the majority's log; the minority's writes are gone
    assert net_kernel.heal(minority_nodes, majority_nodes) == "ok"
    assert ra.process_command(majority[0], ("healed", 0))[0] == "ok"
    views = h.wait_caught_up(c.ids, 15)
    states = {s: h.local_state(s) for s in c.ids}
    expected = (*(("before", i) for i in range(20)), *(("majority", i) for i in range(30)),
                ("healed", 0))
    for sid, (_, state) in states.items():
        assert state == expected, sid
    assert len({(v["last_index"], v["commit_index"], v["last_applied"], v["term"])
                for v in views.values()}) == 1, views
    assert views[new_leader]["role"] == "leader"
    if leader_in == "majority":  # pre-vote: the cut-off followers disturbed nobody
        assert views[leader]["term"] == term, views


# -- every node crashes -------------------------------------------------------------------------


def test_a_whole_cluster_killed_recovers_its_state_from_disk(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "fr")
    nodes = c.add_nodes([f"fr{i}" for i in range(3)])
    c.start(nodes, h.log_machine())
    for i in range(100):
        assert ra.process_command(c.ids[i % 3], ("x", i))[0] == "ok"
    before = h.local_state(h.wait_leader(c.ids))[1]
    assert before == tuple(("x", i) for i in range(100))

    for node in nodes:  # SIGKILL: nothing is flushed on the way out
        c.kill(node)
    assert c.add_nodes([node.split("@")[0] for node in nodes]) == nodes
    t0 = time.monotonic()
    for sid in c.ids:
        assert ra.restart_server(h.SYSTEM, sid) == "ok"
    leader = h.wait_leader(c.ids, 10)
    print(f"\nfull restart -> leader in {(time.monotonic() - t0) * 1000:.0f} ms")
    h.wait_caught_up(c.ids)
    for sid in c.ids:
        assert h.local_state(sid)[1] == before, sid
    for i in range(10):
        assert ra.process_command(c.ids[i % 3], ("y", i)) == ("ok", 101 + i, leader)
    h.wait_caught_up(c.ids)
    assert all(h.local_state(s)[1] == (*before, *(("y", i) for i in range(10))) for s in c.ids)


# -- damaged files ------------------------------------------------------------------------------


def _flip_middle_byte(path: str) -> tuple[int, int]:
    """Flip a payload byte of the record holding the file's middle byte (of the one before
    it, if that is the last: the last one has its own test). Returns (flipped position,
    offset of the damaged record)."""
    with open(path, "rb") as f:
        data = f.read()
    found = scan(data, path)
    assert len(found.offsets) >= 2 and not found.torn, (path, len(found.offsets))
    k = max(i for i, off in enumerate(found.offsets) if off <= len(data) // 2)
    k = min(k, len(found.offsets) - 2)
    pos = found.offsets[k] + HEADER_SIZE + len(found.payloads[k]) // 2
    with open(path, "r+b") as f:
        f.seek(pos)
        f.write(bytes([data[pos] ^ 0xFF]))
    return pos, found.offsets[k]


def _member_dir(c: h.Cluster, sid: h.ServerId) -> str:
    uid = h.overview(sid)["uid"]  # type: ignore[index]
    return str(Path(c.data_dir(sid[1])) / "members" / uid)


def _stopped_follower_with_segments(peers: Any, tmp_path: Path, prefix: str
                                    ) -> tuple[h.Cluster, h.ServerId, h.ServerId, str]:
    """A 3-member cluster whose WAL rolled into segment files under 150 commands, with one
    follower caught up and then stopped: (cluster, leader, that follower, its member dir)."""
    c = h.Cluster(peers, tmp_path, prefix, opts={"wal_max_bytes": 4096})  # WAL rolls to segments
    nodes = c.add_nodes([f"{prefix}{i}" for i in range(3)])
    leader = c.start(nodes, h.log_machine())
    victim = next(s for s in c.ids if s != leader)
    for i in range(150):
        assert ra.process_command(leader, ("x", i, "y" * 40))[0] == "ok"
    h.wait_caught_up(c.ids)
    member_dir = _member_dir(c, victim)
    assert ra.stop_server(h.SYSTEM, victim) == "ok"
    return c, leader, victim, member_dir


def test_a_corrupt_segment_file_stops_the_restart_with_its_name_and_offset(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    _cluster, leader, victim, member_dir = _stopped_follower_with_segments(peers, tmp_path, "cs")
    segments = h.files_under(member_dir, ".seg")
    assert segments, f"no segment file under {member_dir}"
    path, size = max(segments, key=lambda s: s[1])
    assert size > 2000, segments
    pos, record = _flip_middle_byte(path)

    result = ra.restart_server(h.SYSTEM, victim)
    print(f"\nrestart_server after a flipped byte at {pos}: {result!r}")
    assert result[0] == "error" and "corrupt_log" in repr(result), result
    assert f"{path}: corrupt record at byte offset {record}:" in repr(result), (record, result)
    assert ra.restart_server(h.SYSTEM, victim)[0] == "error"  # still refused, no crash loop
    assert rpc.call(victim[1], erlang.whereis, ["ra_default_sup"]) != "undefined"

    # the other two keep serving
    for i in range(10):
        assert ra.process_command(leader, ("after", i))[0] == "ok"
    assert ra.consistent_query(leader, h.count) == ("ok", 160, leader)


def test_a_flipped_bit_in_the_newest_segments_last_record_stops_the_restart(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    """Once the WAL file that fed a segment batch is deleted, that batch is the only copy
    of its entries: a flipped bit in it, even in the very last record, is corruption and
    not a torn write. The member refuses to start and nothing is truncated."""
    c, leader, victim, member_dir = _stopped_follower_with_segments(peers, tmp_path, "cl")
    newest = Path(h.files_under(member_dir, ".seg")[-1][0])
    data = newest.read_bytes()
    found = scan(data, str(newest))
    assert found.version == 2 and not found.torn and found.offsets, found.detail
    last = found.offsets[-1]
    source = scan(data[:last], "").source  # the last batch's BEGIN names its WAL file
    assert source
    wal = Path(c.data_dir(victim[1])) / "wal" / f"{source:08d}.wal"
    h.poll(lambda: not wal.exists(), 10, what=f"{wal} deleted once in the segments")
    damaged = bytearray(data)
    damaged[last + HEADER_SIZE + len(found.payloads[-1]) // 2] ^= 0x10
    newest.write_bytes(bytes(damaged))

    result = ra.restart_server(h.SYSTEM, victim)
    print(f"\nrestart_server after a flipped bit in the last record: {result!r}")
    assert result[0] == "error" and "corrupt_log" in repr(result), result
    assert f"{newest}: corrupt record at byte offset {last}:" in repr(result), (last, result)
    assert newest.read_bytes() == bytes(damaged)  # nothing truncated
    assert ra.consistent_query(leader, h.count) == ("ok", 150, leader)  # the others serve


def test_a_corrupt_wal_file_is_refused_with_its_name_and_offset(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "cw")
    nodes = c.add_nodes([f"cw{i}" for i in range(3)])
    leader = c.start(nodes, h.log_machine())
    victim = next(s for s in c.ids if s != leader)
    for i in range(100):
        assert ra.process_command(leader, ("x", i, "y" * 40))[0] == "ok"
    h.wait_caught_up(c.ids)
    assert ra.stop_server(h.SYSTEM, victim) == "ok"
    assert rpc.call(victim[1], ra.stop, [h.SYSTEM], 10_000) == "ok"
    wals = h.files_under(str(Path(c.data_dir(victim[1])) / "wal"), ".wal")
    assert len(wals) == 1 and wals[0][1] > 2000, wals
    path = wals[0][0]
    pos, record = _flip_middle_byte(path)

    started = rpc.call(victim[1], h.ra_start, [c.data_dir(victim[1]), {}], 20_000)
    restarted = ra.restart_server(h.SYSTEM, victim)
    print(f"\nra.start after a flipped WAL byte at {pos}: {started!r}; restart_server: "
          f"{restarted!r}")
    assert restarted[0] == "error", restarted
    problem = repr(started) + repr(restarted)
    assert "corrupt_log" in problem, problem
    assert f"{path}: corrupt record at byte offset {record}:" in problem, (record, problem)

    for i in range(10):
        assert ra.process_command(leader, ("after", i))[0] == "ok"
    assert ra.consistent_query(leader, h.count) == ("ok", 110, leader)


def test_ra_start_on_a_corrupt_wal_returns_an_error_to_its_caller(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    _, node = peers("cwx")
    wal = tmp_path / "cwx" / "wal"
    wal.mkdir(parents=True)
    damaged = bytearray(encode(b"p" * 100) * 2)
    damaged[50] ^= 0xFF  # the first record's payload: a checksum mismatch with data after it
    (wal / "00000001.wal").write_bytes(damaged)

    result = rpc.call(node, "ra", "start", [str(tmp_path / "cwx")], 20_000)
    assert result[0] == "error" and "corrupt_log" in repr(result), result
