"""ReadIndex: linearizable reads without writing to the log (§6.4 of the dissertation; §8).

Rules of this module:
* Only a leader answers. It first needs an entry of its own term committed
  (its no-op); reads that arrive earlier wait for that.
* Each read gets a fresh, increasing context number and records the commit
  index at arrival as its read index. The leader then sends a heartbeat round
  carrying the newest context. Once a majority of voters (the leader counts
  itself) has echoed a context >= the read's, the leader knows it was still
  leader when the read arrived, and emits `ReadReady(correlation, index)`.
* Echoes only count within the leader's term; a leader cut off in a minority
  never gathers a majority of echoes and so never answers.
* When leadership ends, every waiting read is failed with `Rejected`
  (`roles.become_follower`).
* `on_term_committed` is called by `core` with the fact `replication` returns.
"""

from __future__ import annotations

from . import quorum
from .effects import Effect, ReadReady, Rejected, Reply
from .messages import NodeId, ReadIndex
from .roles import broadcast_heartbeat
from .state import RaftState


def handle_read_index(c: RaftState, ev: ReadIndex, out: list[Effect]) -> None:
    if c.role != "leader":
        out.append(Reply(ev.correlation, Rejected("not_leader", c.leader)))
        return
    if c.log.term_at(c.commit) != c.term:
        c.reads.waiting.append(ev.correlation)
        return
    _start_round(c, ev.correlation)
    _release(c, out)
    if c.reads.rounds:
        broadcast_heartbeat(c, out)


def _start_round(c: RaftState, correlation: object) -> None:
    c.reads.rounds.append((c.reads.next_ctx, correlation, c.commit))
    c.reads.next_ctx += 1


def on_term_committed(c: RaftState, out: list[Effect]) -> None:
    """The leader's first entry of its term committed: start the waiting reads."""
    waiting, c.reads.waiting = c.reads.waiting, []
    for correlation in waiting:
        _start_round(c, correlation)
    _release(c, out)
    if c.reads.rounds and waiting:
        broadcast_heartbeat(c, out)


def on_ack(c: RaftState, peer: NodeId, ctx: int, out: list[Effect]) -> None:
    if ctx > c.reads.acks.get(peer, 0):
        c.reads.acks[peer] = ctx
        _release(c, out)


def _release(c: RaftState, out: list[Effect]) -> None:
    rounds = c.reads.rounds
    for _ in range(len(rounds)):
        ctx, correlation, index = rounds[0]
        acked = {p for p, a in c.reads.acks.items() if a >= ctx}
        acked.add(c.id)
        if not quorum.has_quorum(c.voters, acked):
            return
        rounds.popleft()
        out.append(ReadReady(correlation, index))
