"""The simulator's invariant checkers. Each method returns a violation or None.

They watch the effects the cores emit (the same view a real shell has) plus
read-only peeks at the cores' logs:

* election safety: at most one leader per term;
* log matching: one (index, term) means one command and one predecessor term;
* leader completeness: a leader holds every entry committed in earlier terms;
* state-machine safety: one entry per index across every member that applies;
* snapshot safety: a restored snapshot holds exactly the committed prefix;
* durable votes: a member never grants two candidates its vote in one term,
  across crashes and restarts;
* durable acknowledgements: a member acknowledges entries only once its disk
  has synced them (or a snapshot covering them);
* the hard-state barrier: a message of term T leaves only once term T is on
  disk, and a granted vote only once the vote is (this watches the driver's
  order of execution, not just the core's output).
"""

from __future__ import annotations

from collections.abc import Iterable

from actors.raft import Entry, Message, PersistEntries, RaftCore, Vote

from .world import Disk


class Invariants:
    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> leader
        self.seen: dict[tuple[int, int], tuple[str, object, int]] = {}
        self.committed: list[Entry] = []  # what some member applied, by index
        self.votes: dict[tuple[int, int], int] = {}  # (term, voter) -> candidate

    def leader_elected(self, core: RaftCore) -> str | None:
        other = self.leaders.setdefault(core.term, core.id)
        if other != core.id:
            return f"election safety: {other} and {core.id} both lead term {core.term}"
        floor = core.log.snapshot_index  # the compacted prefix is committed by construction
        for e in self.committed:
            if e.term < core.term and e.index > floor and core.log.term_at(e.index) != e.term:
                return f"leader completeness: new leader {core.id} of term {core.term} lacks {e!r}"
        return None

    def persisted(self, core: RaftCore, eff: PersistEntries) -> str | None:
        prev_term = core.log.term_at(eff.from_index - 1) or 0
        for e in eff.entries:
            key = (e.index, e.term)
            value = (e.kind, e.command, prev_term)
            old = self.seen.setdefault(key, value)
            if old != value:
                return f"log matching: {core.id} has {value} at {key}, another member {old}"
            prev_term = e.term
        return None

    def applied(self, member: int, e: Entry, cores: Iterable[RaftCore]) -> str | None:
        if e.index <= len(self.committed):
            if self.committed[e.index - 1] != e:
                return (f"state-machine safety: {member} applied {e!r}, another member "
                        f"applied {self.committed[e.index - 1]!r}")
            return None
        if e.index != len(self.committed) + 1:
            return f"{member} applied {e!r} beyond anything committed"
        self.committed.append(e)
        # The entry was committed by a leader of some term T <= the newest leader's term;
        # leaders of later terms must hold it (§5.4). A stale leader of an older term, cut
        # off before T, may lack it: only the newest term's leader is held to it.
        cores = list(cores)
        newest = max(self.leaders, default=0)  # the newest term that elected a leader
        for c in cores:
            lead = c.role == "leader" and c.term == newest and c.term > e.term \
                and e.index > c.log.snapshot_index
            if lead and c.log.term_at(e.index) != e.term:
                return f"leader completeness: leader {c.id} of term {c.term} lacks {e!r}"
        return None

    def restored(self, member: int, index: int, entries: tuple[Entry, ...]) -> str | None:
        if len(entries) != index:
            return f"{member}: snapshot at {index} holds {len(entries)} entries"
        for e in entries:
            if e.index > len(self.committed) or self.committed[e.index - 1] != e:
                return f"state-machine safety: {member} restored {e!r} from a snapshot"
        return None

    def vote_sent(self, voter: int, to: int, vote: Vote) -> str | None:
        if not vote.granted or vote.pre_vote:
            return None
        other = self.votes.setdefault((vote.term, voter), to)
        if other != to:
            return f"durable votes: {voter} voted for {other} and {to} in term {vote.term}"
        return None

    def barrier_kept(self, member: int, to: int, disk: Disk, msg: Message) -> str | None:
        """A message of term T leaves only once term T is durable, and a granted vote
        only once the vote is (`PersistState` is a barrier). Pre-vote traffic carries
        a term nobody holds yet, and is exempt."""
        if getattr(msg, "pre_vote", False):
            return None
        hard = disk.hard
        if hard.term < msg.term:
            return (f"hard-state barrier: {member} sent {type(msg).__name__} of term "
                    f"{msg.term} while its disk holds term {hard.term}")
        if isinstance(msg, Vote) and msg.granted and (hard.term, hard.voted_for) != (msg.term, to):
            return (f"hard-state barrier: {member} granted {to} a vote in term {msg.term} "
                    f"while its disk holds {hard}")
        return None

    def ack_sent(self, core: RaftCore, disk: Disk, index: int) -> str | None:
        snap = disk.snapshot[0].index if disk.snapshot else 0
        if index <= snap:
            return None
        held = disk.log.get(index)
        mine = core.log.term_at(index)  # None once compacted in memory: then just require it
        if held is None or (mine is not None and held.term != mine):
            return f"durable acks: {core.id} acknowledged {index} before its disk synced it"
        return None
