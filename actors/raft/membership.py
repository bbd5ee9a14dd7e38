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
* Reading configurations from a log is in `config`; applying a config entry to
  the state (`on_config_appended`, `reload_config`) is in `roles`.
"""

from __future__ import annotations

from .effects import Effect, Rejected, Reply
from .messages import ChangeMembership, Entry
from .roles import become_follower, leader_append
from .state import RaftState


def handle_change(c: RaftState, ev: ChangeMembership, out: list[Effect]) -> None:
    """Append the new configuration if the change is allowed (the caller then asks
    `replication.maybe_commit`); otherwise answer the request."""
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
    leader_append(c, [Entry(c.term, index, frozenset(voters), "config")], out)


def on_commit(c: RaftState, out: list[Effect]) -> None:
    """Called by `core` when the commit index advanced: a leader that removed itself
    steps down once the change commits."""
    if c.role == "leader" and c.id not in c.voters and c.config_index <= c.commit:
        become_follower(c, c.term, None, out)
