"""`global_` on a cluster of one: OTP's shapes for register/whereis/unregister/send."""

from __future__ import annotations

import pytest

from actors import Node, erlang, gen_server, global_

from .helpers import down_of, recv


def test_register_whereis_unregister(node: Node) -> None:
    pid = erlang.spawn(erlang.receive)
    assert global_.whereis_name("leader") == "undefined"
    assert global_.register_name("leader", pid) == "yes"
    assert global_.register_name("leader", erlang.self()) == "no"  # first to register wins
    assert global_.whereis_name("leader") == pid
    assert "leader" in global_.registered_names()
    assert global_.unregister_name("leader") == "ok"
    assert global_.whereis_name("leader") == "undefined"
    erlang.exit(pid, "kill")


def test_name_is_freed_when_its_process_dies(node: Node) -> None:
    pid, ref = erlang.spawn_monitor(erlang.receive)
    assert global_.register_name(("leader", 1), pid) == "yes"
    erlang.send(pid, "go")
    recv(down_of(ref))
    assert global_.whereis_name(("leader", 1)) == "undefined"
    assert global_.register_name(("leader", 1), erlang.self()) == "yes"


def test_send_and_gen_server_global_names(node: Node) -> None:
    ok, pid = gen_server.start(("global", "counter"), gen_server.GenServer, 0)
    assert ok == "ok" and global_.whereis_name("counter") == pid
    assert gen_server.start(("global", "counter"), gen_server.GenServer, 0) == \
        ("error", ("already_started", pid))
    me = erlang.self()
    assert global_.register_name("me", me) == "yes"
    assert global_.send("me", "hello") == me
    assert recv(lambda m: m == "hello") == "hello"
    with pytest.raises(erlang.Exit) as info:
        global_.send("nobody", "x")
    assert info.value.reason == ("badarg", ("nobody", "x"))


def test_the_lock_round_sees_a_dead_local_holder_as_none(node: Node) -> None:
    """As OTP's global:where/1: a pid of this node that is dead holds its name no longer,
    even before the name server has handled its DOWN (a supervisor restarting a child
    registered with {global, Name} right after the old one died must not get
    already_started)."""
    from actors._global_server import _live_holder  # the server's answer to a lock request

    alive = erlang.spawn(erlang.receive)
    dead, ref = erlang.spawn_monitor(lambda: None)
    recv(down_of(ref))
    elsewhere = erlang.Pid("elsewhere@host", 7)  # another node's: not ours to judge
    assert _live_holder(None) is None
    assert _live_holder((dead, None, erlang.make_ref())) is None
    assert _live_holder((alive, None, erlang.make_ref())) == alive
    assert _live_holder((elsewhere, None, erlang.make_ref())) == elsewhere
    erlang.exit(alive, "kill")
