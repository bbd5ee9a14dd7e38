"""Membership changes, one server at a time (dissertation §4.1).

Rules of this module:
* A configuration is a set of voters, carried by a `config` entry whose
  command is the new frozenset. It takes effect as soon as it is *appended*
  (not when committed), on leaders and followers alike; if a conflicting
  leader truncates it away, the previous configuration comes back.
* A leader accepts a change only when the previous change is committed and an
  entry of its own term is committed (the fix from the raft-dev list, 2015),
  and no transfer is in progress. Each change adds or removes exactly one voter.
* A leader that removed itself keeps leading until the change commits (it does
  not count itself in quorums), then steps down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import election, replication
from .effects import Effect, Rejected, Reply
from .log import RaftLog
from .messages import ChangeMembership, Entry, NodeId

if TYPE_CHECKING:
    from .core import RaftCore


def last_config_index(log: RaftLog, at_most: int | None = None) -> int:
    """Index of the newest config entry held at or below `at_most` (0 if none)."""
    index = log.last_index if at_most is None else min(at_most, log.last_index)
    for _ in range(index - log.snapshot_index):
        if log.entry(index).kind == "config":
            return index
        index -= 1
    return 0


def config_from_log(
    log: RaftLog, base: frozenset[NodeId], at_most: int | None = None
) -> frozenset[NodeId]:
    """The voters in force: the newest config entry, else `base` (initial or snapshot)."""
    index = last_config_index(log, at_most)
    if index == 0:
        return base
    command = log.entry(index).command
    assert isinstance(command, frozenset)
    return command


def config_at(c: RaftCore, index: int) -> frozenset[NodeId]:
    return config_from_log(c.log, c.base_voters, index)


def reload_config(c: RaftCore) -> None:
    """After a truncation or a new config entry on a follower."""
    c.config_index = last_config_index(c.log)
    c.voters = config_from_log(c.log, c.base_voters)


def on_config_appended(c: RaftCore, e: Entry) -> None:
    assert isinstance(e.command, frozenset)
    c.config_index = e.index
    c.voters = e.command
    if c.role == "leader":
        for peer in sorted(c.voters):
            if peer != c.id and peer not in c.progress:
                c.progress[peer] = replication.Progress(c.log.last_index)
        for peer in sorted(c.progress):
            if peer not in c.voters:
                del c.progress[peer]


def handle_change(c: RaftCore, ev: ChangeMembership, out: list[Effect]) -> None:
    if c.role != "leader":
        out.append(Reply(ev.correlation, Rejected("not_leader", c.leader)))
        return
    busy = (
        c.config_index > c.commit
        or c.log.term_at(c.commit) != c.term
        or c.transferee is not None
    )
    if busy:
        out.append(Reply(ev.correlation, Rejected("busy", c.leader)))
        return
    voters = c.voters | {ev.member} if ev.op == "add" else c.voters - {ev.member}
    if voters == c.voters or not voters:
        out.append(Reply(ev.correlation, Rejected("no_change", c.leader)))
        return
    index = c.log.last_index + 1
    if ev.correlation is not None:
        c.pending[index] = ev.correlation
    replication.leader_append(c, [Entry(c.term, index, frozenset(voters), "config")], out)


def on_commit(c: RaftCore, out: list[Effect]) -> None:
    if c.role == "leader" and c.id not in c.voters and c.config_index <= c.commit:
        election.become_follower(c, c.term, None, out)
