"""Machine effects and ra's own commands on a real three-node cluster (`EffectsMachine` in
`tests.ra.ra_helpers`): the leader runs effects, and what they cause (a monitored process
going down, a timer firing) reaches `apply` through the log exactly once, on every member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors import Node, erlang, ra
from tests.helpers import down_of, no_message, recv
from tests.ra import ra_helpers as h


def _seen(sid: h.ServerId) -> tuple[Any, ...]:
    return h.local_state(sid)[1]["seen"]  # type: ignore[no-any-return]


def _everywhere(ids: list[h.ServerId], command: Any, timeout: float = 5.0) -> None:
    """Wait until every member has applied `command`; it must be there exactly once."""
    h.poll(lambda: all(command in _seen(s) for s in ids), timeout,
           what=f"{command!r} applied on every member")
    h.wait_caught_up(ids)
    for sid in ids:
        assert _seen(sid).count(command) == 1, (sid, command, _seen(sid))


def _idle() -> None:
    erlang.receive(lambda m: m == "stop", 60_000)


def test_machine_effects_and_ras_own_commands(dist_node: Node, peers: Any,
                                              tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "ef")
    *nodes, client_node = c.add_nodes(["ef0", "ef1", "ef2", "efc"])  # efc: see below
    leader = c.start(nodes, h.effects_machine())
    follower = next(s for s in c.ids if s != leader)
    me = erlang.self()

    # monitor: a watched process dies -> ("down", pid, reason) once, on every member
    pid = erlang.spawn(_idle)
    ref = erlang.monitor("process", pid)
    assert ra.process_command(follower, ("watch", pid))[0] == "ok"
    h.wait_caught_up(c.ids)  # applied on the leader: its monitor is in place
    erlang.exit(pid, "kill")
    recv(down_of(ref))
    _everywhere(c.ids, ("down", pid, "killed"))

    # ... and one on another node (efc, no member) that is SIGKILLed: ("down", pid,
    # "noconnection")
    remote = erlang.spawn(client_node, _idle)
    assert ra.process_command(leader, ("watch", remote))[0] == "ok"
    h.wait_caught_up(c.ids)
    c.kill(client_node)
    _everywhere(c.ids, ("down", remote, "noconnection"))

    # timer: ("timeout", name) once; a cancelled timer never fires
    assert ra.process_command(leader, ("timer", "t1", 100))[0] == "ok"
    assert ra.process_command(leader, ("timer", "t2", 150))[0] == "ok"
    assert ra.process_command(leader, ("timer", "t2", "infinity"))[0] == "ok"
    assert ra.process_command(leader, ("timer", "t3", 400))[0] == "ok"
    _everywhere(c.ids, ("timeout", "t1"))
    _everywhere(c.ids, ("timeout", "t3"))  # later than t2 would have fired
    assert all(("timeout", "t2") not in _seen(s) for s in c.ids)

    # send_msg: delivered once, by the leader only
    tag = erlang.make_ref()
    assert ra.process_command(follower, ("send", me, ("hello", tag)))[0] == "ok"
    assert recv(lambda m: type(m) is tuple and m[0] == "hello") == ("hello", tag)
    no_message(lambda m: type(m) is tuple and m[0] == "hello", 300)

    # release_cursor: every member takes a snapshot at that index
    before = {s: h.overview(s)["snapshot_index"] for s in c.ids}  # type: ignore[index]
    assert all(i == 0 for i in before.values()), before
    assert ra.process_command(leader, ("release",))[0] == "ok"
    index = h.overview(leader)["last_index"]  # type: ignore[index]  # nothing else since
    assert _seen(leader)[-1] == ("release",)
    h.poll(lambda: all(h.overview(s)["snapshot_index"] == index  # type: ignore[index]
                       for s in c.ids), 5, what=f"a snapshot at {index} on every member")

    # the whole history, identical everywhere
    h.wait_caught_up(c.ids)
    assert len({repr(_seen(s)) for s in c.ids}) == 1


def test_a_machine_that_raises_fails_the_command_and_the_cluster_goes_on(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "ex")
    nodes = c.add_nodes([f"ex{i}" for i in range(3)])
    leader = c.start(nodes, h.effects_machine())
    follower = next(s for s in c.ids if s != leader)
    assert ra.process_command(follower, ("x", 1))[0] == "ok"

    got = ra.process_command(follower, ("boom", 1))
    assert got == ("error", ("machine_exception", "RuntimeError('boom 1')")), got

    # the state did not change anywhere; the cluster keeps serving, same leader
    next_index = h.overview(leader)["last_index"] + 1  # type: ignore[index]
    assert ra.process_command(follower, ("x", 2)) == ("ok", ("applied", next_index), leader)
    h.wait_caught_up(c.ids)
    for sid in c.ids:
        state = h.local_state(sid)[1]
        assert state == {"seen": (("x", 1), ("x", 2)), "n": 2}, (sid, state)
    assert ra.consistent_query(follower, h.identity)[2] == leader



def test_the_reply_of_a_command_that_releases_the_cursor_reaches_the_caller(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "rc")
    leader = c.start([c.add_node("rc0")], h.effects_machine())
    index = h.overview(leader)["last_index"] + 1  # type: ignore[index]
    assert ra.process_command(leader, ("release",)) == ("ok", ("applied", index), leader)


def test_process_command_of_a_raising_apply_returns_an_error(
        dist_node: Node, peers: Any, tmp_path: Path) -> None:
    c = h.Cluster(peers, tmp_path, "rx")
    leader = c.start([c.add_node("rx0")], h.effects_machine())
    got = ra.process_command(leader, ("boom", 1))
    assert got == ("error", ("machine_exception", "RuntimeError('boom 1')")), got
