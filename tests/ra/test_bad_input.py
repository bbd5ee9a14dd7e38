"""Malformed input to ra on a real three-node cluster (node OS processes on loopback).

* Commands of the wrong shape reach the machine, whose `apply` rejects them: the caller gets
  the machine's error reply, no state changes. An `apply` that returns a bad shape fails the
  command with ("error", ("machine_exception", ...)), the state unchanged.
* Commands that cannot travel (unpicklable, too deep to pickle) fail in the client at once
  with ("error", "badarg"); one that pickles but cannot be rebuilt is dropped (and logged) by
  the receiving node, and the client times out. A client on the leader's node hands the
  command over without pickling: the leader must refuse what it could not replicate, or it
  would wedge the cluster (followers drop every AppendEntries holding it) and crash itself.
* Junk sent straight to a member's process from another node is dropped with a log line if
  it is not a raft peer message; a near miss (a peer message with fields of the wrong types,
  a call with a bad reply address) may crash the member, which its supervisor restarts.
  Either way the cluster keeps serving, no acknowledged command is lost, and the states
  converge, also after each member restarts from disk (no junk reached its storage).
* Calls the member does not understand get an error reply at once, never a crash or a hang;
  a malformed member id never reaches the cluster's configuration.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from actors import Node, erlang, gen_server, ra, rpc
from actors.ra._records import dumps
from actors.ra_machine import Machine
from actors.raft import (
    AppendEntries,
    Campaign,
    Heartbeat,
    Propose,
    RequestVote,
    SnapshotTaken,
    Tick,
    Written,
)
from tests.ra import ra_helpers as h

SYSTEM_SUP = "ra_default_sup"
QUICK_S = 1.0  # an answer that is not a timeout comes well within this

# ---------------------------------------------------------------- on the peers (by reference)


class KV(Machine):
    """State: a dict (never mutated). ("put", str key, value) -> "ok"; ("bad_shape", how)
    returns a bad shape from apply; anything else is refused: ("error", ("bad_command", r))."""

    def init(self, config: Any) -> Any:
        return {}

    def apply(self, meta: dict[str, Any], command: Any, state: Any) -> Any:
        match command:
            case ("put", str(key), value):
                return {**state, key: value}, "ok"
            case ("bad_shape", "bare"):
                return state  # not (state, reply)
            case ("bad_shape", "four"):
                return state, "reply", [], "extra"
        return state, ("error", ("bad_command", repr(command)[:60]))


def kv() -> tuple[str, type, Any]:
    return ("module", KV, None)


def _cannot_rebuild() -> Any:
    raise ValueError("this object cannot be rebuilt")


class NoLoad:
    """Pickles fine; unpickling it raises."""

    def __reduce__(self) -> Any:
        return (_cannot_rebuild, ())


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = (value,)
    return value


def bad_command(kind: str) -> Any:
    """(anywhere) A command that cannot be replicated."""
    if kind == "lock":
        return ("put", "k", threading.Lock())  # no pickle at all
    if kind == "deep":
        return ("put", "k", nested(5000))  # too deep to pickle
    return ("put", "k", NoLoad())  # pickles, but does not unpickle


def command_here(sid: h.ServerId, kind: str, timeout: int) -> tuple[Any, float]:
    """(on the leader's node) process_command of a bad command: (result, seconds)."""
    t0 = time.monotonic()
    result = ra.process_command(sid, bad_command(kind), timeout)
    return result, time.monotonic() - t0


def pipeline_here(sid: h.ServerId, kind: str) -> Any:
    """(on the leader's node) pipeline_command of a bad command: the ra_event it gets."""
    ra.pipeline_command(sid, bad_command(kind), "c1")
    got = erlang.receive(lambda m: type(m) is tuple and m[0] == "ra_event", 5000)
    return "no ra_event" if got is erlang.TIMEOUT else got


# ---------------------------------------------------------------- helpers


def _cluster(peers: Any, tmp_path: Path, prefix: str, machine: Any) -> tuple[h.Cluster, Any]:
    c = h.Cluster(peers, tmp_path, prefix)
    nodes = c.add_nodes([f"{prefix}{i}" for i in range(3)])
    for node in nodes:
        assert rpc.call(node, h.keep_logs, [], 5000) == "ok"
    return c, c.start(nodes, machine)


def _pid(node: str, name: str) -> Any:
    return rpc.call(node, erlang.whereis, [name], 5000)


def _pids(c: h.Cluster) -> dict[str, tuple[Any, Any]]:
    """node -> (its ra system supervisor, its member)."""
    return {sid[1]: (_pid(sid[1], SYSTEM_SUP), _pid(sid[1], sid[0])) for sid in c.ids}


def _timed(fun: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    result = fun(*args)
    return result, time.monotonic() - t0


def _same_states(ids: list[h.ServerId]) -> Any:
    h.wait_caught_up(ids)
    states = [h.local_state(sid)[1] for sid in ids]
    assert all(state == states[0] for state in states), states
    return states[0]


# ---------------------------------------------------------------- malformed commands


def test_malformed_commands_get_a_clear_error_and_change_no_state(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c, leader = _cluster(peers, tmp_path, "bc", kv())
    follower = next(sid for sid in c.ids if sid != leader)
    assert ra.process_command(follower, ("put", "a", 1)) == ("ok", "ok", leader)
    term = h.overview(leader)["term"]  # type: ignore[index]

    wide = {f"k{i}": list(range(20)) for i in range(5000)}  # about 300 KB pickled
    for command in [None, 42, "put", ("put",), ("put", "a"), ("put", ["a"], 2), ("del", "a"),
                    {"put": "a"}, nested(500), [wide, nested(200)]]:
        result, took = _timed(ra.process_command, follower, command, 5000)
        assert result == ("ok", ("error", ("bad_command", repr(command)[:60])), leader), result
        assert took < QUICK_S, (repr(command)[:60], took)

    # apply returning a bad shape: the command fails, the state stays
    for how, shape in [("bare", "{'a': 1}"), ("four", "({'a': 1}, 'reply', [], 'extra')")]:
        result = ra.process_command(follower, ("bad_shape", how), 5000)
        assert result[0] == "error" and result[1][0] == "machine_exception", result
        assert f"bad apply return {shape}: want (state, reply)" in result[1][1], result

    # what this node cannot send fails here, at once; what the member's node cannot
    # unpickle is dropped there (and logged), so the caller times out
    for kind in ("lock", "deep"):
        result, took = _timed(ra.process_command, follower, bad_command(kind), 5000)
        assert result == ("error", "badarg") and took < QUICK_S, (kind, result, took)
    result, took = _timed(ra.process_command, follower, bad_command("noload"), 2000)
    assert result == ("timeout", follower) and 1.9 < took < 5, (result, took)
    assert rpc.call(follower[1], h.logged, ["does not unpickle", "cannot be rebuilt"], 5000)

    # nothing changed, anywhere; the cluster keeps serving under the same leader and term
    assert ra.process_command(follower, ("put", "z", 2)) == ("ok", "ok", leader)
    assert _same_states(c.ids) == {"a": 1, "z": 2}
    assert h.overview(leader)["term"] == term  # type: ignore[index]


def test_a_command_the_leader_could_not_replicate_is_refused(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c, leader = _cluster(peers, tmp_path, "br", kv())
    assert ra.process_command(leader, ("put", "a", 1)) == ("ok", "ok", leader)
    before = _pids(c)
    term = h.overview(leader)["term"]  # type: ignore[index]

    # a client on the leader's node: the command reaches the leader unpickled
    for kind in ("lock", "deep", "noload"):
        result, took = rpc.call(leader[1], command_here, [leader, kind, 3000], 10_000)
        print(f"\n{kind}: {result!r:.200} in {took * 1000:.0f} ms")
        assert result[0] == "error" and result[1][0] == "bad_command", (kind, result)
        assert took < QUICK_S, (kind, took)
    event = rpc.call(leader[1], pipeline_here, [leader, "noload"], 10_000)
    assert event[:2] == ("ra_event", leader) and event[2][0] == "applied", event
    [(correlation, reply)] = event[2][1]
    assert correlation == "c1" and reply[0] == "error" and reply[1][0] == "bad_command", event

    # the leader did not crash, nor wedge the cluster; nothing changed
    result, took = _timed(ra.process_command, c.ids, ("put", "z", 2), 5000)
    assert result == ("ok", "ok", leader) and took < QUICK_S, (result, took)
    assert _pids(c) == before
    assert h.overview(leader)["term"] == term  # type: ignore[index]
    assert _same_states(c.ids) == {"a": 1, "z": 2}


# ---------------------------------------------------------------- junk messages


def _junk(c: h.Cluster, leader: h.ServerId) -> list[Any]:
    """Messages a member must drop: not raft peer messages, though some look like them."""
    applied = h.overview(leader)["last_applied"]  # type: ignore[index]
    return [
        # local events of the core, wrapped like peer messages (first: nothing may have
        # crashed the member before they arrive)
        ("$ra", Propose(("forged", 0), None)),
        ("$ra", SnapshotTaken(applied, dumps(("forged state",)))),
        ("$ra", Tick()), ("$ra", Campaign()), ("$ra", Written(10**9, 1)),
        "garbage", 42, None, b"\x00" * 64, ("append_entries", "nonsense"), ("$ra",),
        ("$ra", "garbage"), ("$ra", "garbage", "extra"), ("$ra", ("append_entries", 1, 2)),
        ("$ra", {"term": 1, "entries": "nonsense"}), ("$ra", None),
        ("$ra_written", 10**9, 1), ("$ra_written",), "$ra_propose",
        ("$gen_cast", "junk"), ("$gen_cast", ("$ra_pipeline", "too", "few")),
        ("nodedown",), ("DOWN", 1, 2, 3, 4), ("$ra_timer",),
    ]


def _near_misses(c: h.Cluster) -> list[Any]:
    """Peer messages with fields of the wrong types, a completion with a bad index, a call
    with a bad reply address: a member may crash on these (its supervisor restarts it)."""
    stranger = (c.name, "nobody@127.0.0.1")
    return [
        ("$ra", AppendEntries("x", stranger, 0, 0, (), 0)),  # type: ignore[arg-type]
        ("$ra", RequestVote(None, stranger, "x", "y")),  # type: ignore[arg-type]
        ("$ra", Heartbeat(1, None, "commit")),  # type: ignore[arg-type]
        ("$ra_written", "x", "y"),
        ("$gen_call", "not a reply address", "$ra_overview"),
    ]


def _send_everywhere(c: h.Cluster, junk: list[Any]) -> None:
    for msg in junk:
        for sid in c.ids:
            erlang.send(sid, msg)


def _serving(c: h.Cluster, w: Any) -> None:
    """The cluster still commits (the background writer gets on), every member is up."""
    h.wait_writer_progress(w, h.writer_progress(w) + 10, 10)
    h.poll(lambda: all(erlang.is_pid(_pid(sid[1], sid[0])) for sid in c.ids), 10,
           what="every member running")


def test_junk_sent_to_members_is_dropped_or_survived_and_loses_nothing(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c, leader = _cluster(peers, tmp_path, "bj", h.log_machine())
    follower = next(sid for sid in c.ids if sid != leader)
    for i in range(5):
        assert ra.process_command(leader, ("before", i))[0] == "ok"
    h.wait_caught_up(c.ids)
    before = _pids(c)
    w = erlang.spawn(h.writer, erlang.self(), follower, "w", 3000)
    h.wait_writer_progress(w, 5)

    # not peer messages: dropped and logged; no member restarts
    _send_everywhere(c, _junk(c, leader))
    _serving(c, w)
    assert _pids(c) == before, "junk restarted a member"
    for sid in c.ids:
        assert rpc.call(sid[1], h.logged, ["WARNING", "'garbage'"], 5000), sid
        assert rpc.call(sid[1], h.logged, ["WARNING", "SnapshotTaken"], 5000), sid

    # near misses: dropped or survived (a crashed member is restarted, the system is not)
    _send_everywhere(c, _near_misses(c))
    _serving(c, w)
    after = _pids(c)
    restarted = [node for node in after if after[node][1] != before[node][1]]
    print(f"\nnear misses restarted the members on {restarted or 'no node'}")
    assert all(after[node][0] == before[node][0] for node in after), "a ra system restarted"

    results = h.stop_writer(w, "w")
    acked = [("before", i) for i in range(5)] + [("w", i) for i, r in results if r[0] == "ok"]
    failed = {repr(r) for _, r in results if r[0] != "ok"}
    print(f"writer: {len(acked) - 5} acknowledged, failures: {sorted(failed)}")
    assert all(r[0] in ("error", "timeout") for _, r in results if r[0] != "ok")

    # every acknowledged command, in order, and none twice; nothing forged; and the same
    # after each member restarts from its storage
    state = _same_states(c.ids)
    wanted = set(acked)
    assert [cmd for cmd in state if cmd in wanted] == acked
    assert len(set(state)) == len(state), "a command was applied twice"
    assert all(type(cmd) is tuple and cmd[0] in ("before", "w") for cmd in state), \
        "a forged command was applied"
    for sid in c.ids:
        assert ra.stop_server(h.SYSTEM, sid) == "ok"
        assert ra.restart_server(h.SYSTEM, sid) == "ok"
        h.wait_leader(c.ids)
    assert _same_states(c.ids) == state


# ---------------------------------------------------------------- calls


def test_calls_a_member_does_not_understand_get_an_error_at_once(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c, leader = _cluster(peers, tmp_path, "bq", kv())
    follower = next(sid for sid in c.ids if sid != leader)
    assert ra.process_command(leader, ("put", "a", 1)) == ("ok", "ok", leader)
    before = _pids(c)
    members = ra.members(leader)
    term = h.overview(leader)["term"]  # type: ignore[index]

    bad_requests = [
        "foo", 42, None, ("$ra_command",), ("$ra_command", "a", "b"), ("$ra_overview",),
        ("$ra_member", "add", ("g", "a", "r", "b", "a", "g", "e")),  # ra.add_member(s, "garbage")
        ("$ra_member", "add", 42), ("$ra_member", "add", ("bq", "no node name")),
        ("$ra_member", "remove", None), ("$ra_member", "frob", follower),
        ("$ra_transfer", 42), ("$ra_transfer", None), ("$ra_transfer", "garbage"),
    ]
    for sid in (follower, leader):
        for request in bad_requests:
            reply, took = _timed(gen_server.call, sid, request, 3000)
            assert took < QUICK_S, (sid, request, took)
            assert reply == ("error", ("bad_request", request)), (sid, request, reply)
    for query in ("$ra_local_query", "$ra_consistent_query", "$ra_leader_query"):
        reply = gen_server.call(leader, (query, 42), 3000)
        assert reply[0] == "error" and reply[1][0] == "query_failed", (query, reply)
    assert ra.add_member(leader, "garbage") == (  # type: ignore[arg-type]
        "error", ("bad_request", ("$ra_member", "add", tuple("garbage"))))

    # no member crashed, the configuration is what it was, the cluster serves
    assert _pids(c) == before
    assert ra.members(leader) == members
    assert h.overview(leader)["members"] == sorted(c.ids)  # type: ignore[index]
    assert ra.process_command(follower, ("put", "z", 2)) == ("ok", "ok", leader)
    assert _same_states(c.ids) == {"a": 1, "z": 2}
    assert h.overview(leader)["term"] == term  # type: ignore[index]


def test_a_bad_notice_delay_is_refused_with_its_reason(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    """`notice_delay_ms` must be an int >= 0; anything else stops the member in its init
    with `("bad_option", ("notice_delay_ms", value))`, before it touches its log."""
    c = h.Cluster(peers, tmp_path, "bn")
    (node,) = c.add_nodes(["bn0"])
    sid = c.sid(node)
    for bad in ("soon", -1, 2.5, None):
        result = ra.start_server(h.SYSTEM, c.name, sid, h.log_machine(), [sid],
                                 notice_delay_ms=bad)
        assert result == ("error", ("bad_option", ("notice_delay_ms", bad))), (bad, result)
    assert ra.start_server(h.SYSTEM, c.name, sid, h.log_machine(), [sid],
                           notice_delay_ms=1) == "ok"
