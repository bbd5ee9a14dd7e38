"""`ra`: Raft clusters of replicated state machines, with ra's API.

A server id is `(name, node)`: the member's locally registered name and its
node. Every node that hosts members runs an ra *system* (`ra.start()`): a WAL
writer shared by its members, a segment writer, and one `RaServer` process per
member, under supervisors (see `actors.ra._system`). The machine is an
`actors.ra_machine.Machine` (`("module", MachineClass, config)`) or a
function (`("simple", fun, initial_state)`).

Result shapes follow ra's: `("ok", reply, leader)`, `("error", reason)`,
`("timeout", server_id)`. Requests that need the leader are routed to it from
any member, and retried across a leader change (with tenacity) until the
timeout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
)

from .. import erlang, gen_server, rpc
from .._terms import Exit
from . import _pipeline, _system
from ._member import local_view, run_query
from ._names import SystemNames

__all__ = [
    "add_member", "consistent_query", "delete_cluster", "leader_query", "local_query",
    "local_view",
    "member_overview", "members", "pipeline_command", "pipeline_commands", "process_command",
    "remove_member",
    "restart_server", "start", "start_cluster", "start_server", "stop", "stop_server",
    "transfer_leadership", "trigger_election",
]

ServerId = tuple[str, str]
ServerRef = ServerId | list[ServerId]  # one member, or several to try in turn
DEFAULT_TIMEOUT = 5000


def _sid(server_id: Sequence[str]) -> ServerId:
    """`server_id` as the (name, node) tuple members are keyed by: callers may pass a
    two-item list (from JSON, or a term that crossed a port)."""
    if len(server_id) != 2:
        raise ValueError(f"a server id is (name, node), not {server_id!r}")
    return (server_id[0], server_id[1])


# ------------------------------------------------------------------ systems and clusters


def start(data_dir: str | None = None, system: str = "default", **opts: Any) -> Any:
    """Start this node's ra system: "ok" (also if already started) | ("error", reason).

    `data_dir` defaults to a directory derived from the node name (see
    `_system.default_data_dir`). Options: `wal_sync` (default True: fdatasync
    every batch), `wal_max_bytes`, and the member defaults `tick_ms` (50),
    `election_ticks` (10: an election timeout of 500..1000 ms),
    `snapshot_interval` (4096 applied entries), `machine_tick_ms` (1000).
    """
    return _system.start(system, data_dir, **opts)


def stop(system: str = "default") -> Any:
    """Stop this node's ra system and its members (their data stays)."""
    return _system.stop(system)


def start_cluster(system: str, cluster_name: str, machine: Any, server_ids: list[ServerId],
                  timeout: int = 10000, **opts: Any) -> Any:
    """Start a member on each server id's node and wait for a leader. `opts` are member
    options (tick_ms, election_ticks, snapshot_interval, ...) for every member.

    Commit notices: a leader tells idle followers a new commit index with an empty
    append once its commits pause, within 2 * `notice_delay_ms` (2) of the last one;
    while commits flow, the next command's appends carry it instead (two messages fewer
    per command). `notice_delay_ms=0` sends each notice at once, as ra does;
    `commit_notice=False` sends none (followers learn it by the next append or
    heartbeat, one tick later at most).

    Returns ("ok", started, not_started), or ("error", "cluster_not_formed") when
    fewer than a majority started (those that did are deleted again).
    """
    ids = [_sid(s) for s in server_ids]
    started: list[ServerId] = []
    not_started: list[ServerId] = []
    for sid in ids:
        result = start_server(system, cluster_name, sid, machine, ids, **opts)
        (started if result == "ok" else not_started).append(sid)
    if len(started) <= len(ids) // 2:
        delete_cluster(started)
        return ("error", "cluster_not_formed")
    trigger_election(started[0])
    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        for sid in started:
            answer = members(sid, 1000)
            if answer[0] == "ok" and answer[2] is not None:
                return ("ok", started, not_started)
        erlang.receive(lambda _m: False, 20)  # poll the members again in 20 ms
    delete_cluster(started)
    return ("error", "cluster_not_formed")


def start_server(system: str, cluster_name: str, server_id: ServerId, machine: Any,
                 server_ids: list[ServerId], **opts: Any) -> Any:
    """Start a new member `server_id` (on its node) of `cluster_name`: "ok" | ("error", r)."""
    name, node = server_id
    return _on(node, "_start_server_here",
               [system, cluster_name, name, machine, [_sid(s) for s in server_ids], opts])


def restart_server(system: str, server_id: ServerId) -> Any:
    """Restart a stopped member from its data on disk: "ok" | ("error", reason)."""
    name, node = server_id
    return _on(node, "_restart_server_here", [system, name])


def stop_server(system: str, server_id: ServerId) -> Any:
    """Stop a member's process; its data stays for `restart_server`."""
    name, node = server_id
    return _on(node, "_stop_server_here", [system, name])


def delete_cluster(server_ids: list[ServerId], timeout: int = DEFAULT_TIMEOUT,
                   system: str = "default") -> Any:
    """Stop every member and delete its data: ("ok", leader_or_None)."""
    leader = None
    for sid in server_ids:
        answer = members(sid, min(timeout, 1000))
        if answer[0] == "ok" and answer[2] is not None:
            leader = answer[2]
            break
    for name, node in server_ids:
        _on(node, "_delete_server_here", [system, name])
    return ("ok", leader)


def _on(node: str, function: str, args: list[Any]) -> Any:
    if node == erlang.node():
        return globals()[function](*args)
    result = rpc.call(node, "ra", function, args, 30000)
    if type(result) is tuple and result and result[0] == "badrpc":
        return ("error", result[1])
    return result


def _start_server_here(system: str, cluster_name: str, name: str, machine: Any,
                       server_ids: list[ServerId], opts: dict[str, Any]) -> Any:
    if erlang.whereis(SystemNames(system).sup) == "undefined":
        return ("error", "system_not_started")
    if _system.load_config(system, name) is not None:
        return ("error", "already_started")
    cfg = _system.new_member_config(system, cluster_name, name, machine, server_ids, opts)
    _system.save_config(cfg)
    result = _system.start_member(cfg)
    if result != "ok":
        _system.forget_config(system, name)
    return result


def _restart_server_here(system: str, name: str) -> Any:
    if erlang.whereis(SystemNames(system).sup) == "undefined":
        return ("error", "system_not_started")
    cfg = _system.load_config(system, name)
    if cfg is None:
        return ("error", "name_not_registered")
    return _system.start_member(cfg)


def _stop_server_here(system: str, name: str) -> Any:
    if erlang.whereis(SystemNames(system).sup) == "undefined":
        return ("error", "system_not_started")
    return _system.stop_member(system, name)


def _delete_server_here(system: str, name: str) -> Any:
    names = SystemNames(system)
    if erlang.whereis(names.sup) == "undefined":
        return ("error", "system_not_started")
    cfg = _system.load_config(system, name)
    _system.stop_member(system, name)
    if cfg is not None:
        gen_server.call(names.wal, ("forget", cfg["uid"]), "infinity")
        gen_server.call(names.segment_writer, ("delete", cfg["uid"]), "infinity")
        _system.forget_config(system, name)
    return "ok"


# ------------------------------------------------------------------ commands and queries


def process_command(server_id: ServerRef, command: Any, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """Commit `command` and return ("ok", reply, leader) | ("error", r) | ("timeout", sid)."""
    return _leader_call(server_id, ("$ra_command", command), timeout)


def pipeline_command(server_id: ServerId, command: Any, correlation: Any = None,
                     priority: str = "normal") -> str:
    """Send `command` to the (leader) member and return "ok" at once.

    The caller gets ("ra_event", leader, ("applied", [(correlation, reply), ...]))
    once it is applied, or ("ra_event", server_id, ("rejected", ("not_leader",
    leader, correlation))) if `server_id` is not the leader. `priority` is
    accepted for ra compatibility; commands are taken in arrival order.

    Commands a process pipelines to one server are coalesced on its side: they go
    through a relay process on the caller's node, which sends whatever has queued
    up as one message (`actors.ra._pipeline`); the order is kept.
    """
    _pipeline.send(_sid(server_id), command, correlation)
    return "ok"


def pipeline_commands(server_id: ServerId, items: list[tuple[Any, Any]]) -> str:
    """`pipeline_command` of each `(command, correlation)` in `items`, in order, sent as one
    message where the member is on the caller's node, so that they are proposed together
    (one WAL write, one AppendEntries per follower). The answers are as for
    `pipeline_command`. "ok" at once; badarg if `items` is not a list of pairs."""
    if type(items) is not list or not all(type(i) is tuple and len(i) == 2 for i in items):
        raise erlang.Error("badarg")
    _pipeline.send_many(_sid(server_id), items)
    return "ok"


def local_query(server_id: ServerId, fun: Any, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """fun(state) on this member's state, as applied so far:
    ("ok", ((index, term), result), leader). May be stale; never blocks on a quorum.

    A member on the caller's own node is read without a call: `fun` runs in the caller,
    on the state the member last published (after its latest apply). `fun` must not
    mutate the state: it is the member's own object, not a copy (as in ra). A member on
    another node is asked with a call, and `fun` runs there.
    """
    view = local_view(server_id)
    if view is None:
        return _direct_call(server_id, ("$ra_local_query", fun), timeout)
    answer = run_query(fun, view.state, view.leader)
    if answer[0] != "ok":
        return answer
    return ("ok", ((view.index, view.term), answer[1]), view.leader)


def leader_query(server_id: ServerRef, fun: Any, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """As `local_query`, on the leader's state."""
    return _leader_call(server_id, ("$ra_leader_query", fun), timeout)


def consistent_query(server_id: ServerRef, fun: Any, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """Linearizable: ("ok", fun(state), leader). The leader confirms with a quorum that it
    still leads (ReadIndex) and answers once it has applied that far; a leader cut off in
    a minority never answers, and the caller gets ("timeout", server_id)."""
    return _leader_call(server_id, ("$ra_consistent_query", fun), timeout)


def members(server_id: ServerId, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """("ok", members, leader_or_None) as this member knows them."""
    return _direct_call(server_id, "$ra_members", timeout)


def add_member(server_id: ServerId, new_member: ServerId,
               timeout: int = DEFAULT_TIMEOUT) -> Any:
    """Add a voter (one at a time); then `start_server` it. ("ok", (index, term), leader)."""
    return _leader_call(server_id, ("$ra_member", "add", tuple(new_member)), timeout)


def remove_member(server_id: ServerId, member: ServerId,
                  timeout: int = DEFAULT_TIMEOUT) -> Any:
    """Remove a voter: ("ok", (index, term), leader) once the change is committed."""
    return _leader_call(server_id, ("$ra_member", "remove", tuple(member)), timeout)


def transfer_leadership(server_id: ServerId, target: ServerId,
                        timeout: int = DEFAULT_TIMEOUT) -> Any:
    """"ok" | "already_leader" | ("error", reason)."""
    return _leader_call(server_id, ("$ra_transfer", tuple(target)), timeout)


def trigger_election(server_id: ServerId, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """Make the member campaign now: "ok"."""
    return _direct_call(server_id, "$ra_trigger_election", timeout)


def member_overview(server_id: ServerId, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """A dict: role, term, commit_index, last_applied, leader, members, machine, ..."""
    return _direct_call(server_id, "$ra_overview", timeout)


# ------------------------------------------------------------------ routing


class _Follow(Exception):
    """The member named the leader: ask it at once."""


class _Again(Exception):
    """No leader known yet, or the one we asked is gone: wait a little and retry."""


def _direct_call(server_id: ServerId, request: Any, timeout: int) -> Any:
    target = _sid(server_id)
    try:
        return gen_server.call(target, request, timeout)
    except Exit as exit_:
        return _exit_result(exit_.reason, target)


def _exit_result(reason: Any, target: Any) -> Any:
    kind = reason[0] if type(reason) is tuple and reason else reason
    if kind == "timeout":
        return ("timeout", target)
    if type(kind) is tuple and kind and kind[0] == "nodedown":
        return ("error", "nodedown")
    return ("error", kind)


def _safe_to_resend(request: Any, failure: Any) -> bool:
    """May a call that failed with `failure` be sent again? A query, always. A command or
    a membership change only if it never reached the member (`noproc`): a leader that died
    holding it may have replicated it, and a resend would then be committed twice (ra
    returns the error too; the caller cannot know whether it happened)."""
    return request[0] in ("$ra_consistent_query", "$ra_leader_query") or \
        failure == ("error", "noproc")


def _wait(state: RetryCallState) -> float:
    if state.outcome is not None and isinstance(state.outcome.exception(), _Follow):
        return 0.0
    return min(0.1, 0.005 * 2 ** state.attempt_number)


def _leader_call(server_id: ServerRef, request: Any, timeout: int) -> Any:
    """Call the leader, following redirects and retrying across leader changes.

    `server_id` may be a list of members, as in ra: each is tried in turn until one
    answers (a member that is not running, or whose node is down, is skipped).
    """
    if isinstance(server_id, list):
        deadline = time.monotonic() + (timeout / 1000 if timeout != "infinity" else 1e9)
        result: Any = ("error", "noproc")
        for sid in server_id:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            was_connected = sid[1] == erlang.node() or sid[1] in erlang.nodes()
            result = _leader_call(_sid(sid), request, left if timeout != "infinity" else timeout)
            if result[0] != "error" or result[1] not in ("noproc", "nodedown"):
                return result
            if result[1] == "nodedown" and was_connected and \
                    not _safe_to_resend(request, result):
                return result  # its node went down during the call: it may have the command
        return result
    origin = _sid(server_id)
    seconds = timeout / 1000 if timeout != "infinity" else 1e9
    deadline = time.monotonic() + seconds
    route = _Route(origin)
    try:
        return route.attempt(request, deadline)  # the common case: no retry machinery
    except (_Follow, _Again):
        pass
    retrying = Retrying(stop=stop_after_delay(max(0.0, deadline - time.monotonic())),
                        wait=_wait, reraise=False,
                        retry=retry_if_exception_type((_Follow, _Again)))
    try:
        for attempt in retrying:
            with attempt:
                return route.attempt(request, deadline)
    except RetryError:  # out of time
        pass
    return ("timeout", origin)


class _Route:
    """Where a leader call goes next: the member asked first, or the leader it named."""

    def __init__(self, origin: ServerId) -> None:
        self.origin = origin
        self.target: ServerId = origin

    def attempt(self, request: Any, deadline: float) -> Any:
        """One call: its result, or raise _Follow / _Again to retry."""
        left = max(0, int((deadline - time.monotonic()) * 1000))
        try:
            reply = gen_server.call(self.target, request, left)
        except Exit as exit_:
            result = _exit_result(exit_.reason, self.target)
            if result[0] == "timeout":
                return ("timeout", self.origin)
            if self.target == self.origin or not _safe_to_resend(request, result):
                return result
            self.target = self.origin  # the leader we were sent to is gone: ask again
            raise _Again() from None
        match reply:
            case ("redirect", leader) if leader is not None and tuple(leader) != self.target:
                self.target = tuple(leader)
                raise _Follow()
            case ("redirect", _):
                self.target = self.origin
                raise _Again()
            case ("error", "busy"):
                raise _Again()
        return reply
