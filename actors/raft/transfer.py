"""Leadership transfer (dissertation §3.10).

Rules of this module:
* Only a leader transfers, only to another voter, one transfer at a time.
* While a transfer is pending the leader refuses proposals (`busy`), so the
  target can catch up.
* When the target's match reaches our last index, we send `TimeoutNow`; the
  target campaigns at once (skipping pre-vote, and its vote requests override
  the voters' leader lease).
* A transfer that has not finished within an election timeout is abandoned.
"""

from __future__ import annotations

from .effects import Effect, Send
from .election import campaign
from .messages import NodeId, TimeoutNow, TransferLeadership
from .roles import send_append
from .state import RaftState


def handle_transfer(c: RaftState, ev: TransferLeadership, out: list[Effect]) -> None:
    if c.role != "leader" or ev.to == c.id or ev.to not in c.progress:
        return
    if ev.to not in c.voters:
        return
    c.transferee = ev.to
    c.election_elapsed = 0  # the transfer gets one election timeout
    on_progress(c, ev.to, out)
    if c.transferee is not None:
        send_append(c, ev.to, out)


def on_progress(c: RaftState, peer: NodeId, out: list[Effect]) -> None:
    if c.transferee != peer:
        return
    if c.progress[peer].match >= c.log.last_index:
        out.append(Send(peer, TimeoutNow(c.term, c.id)))
        c.transferee = None


def abort(c: RaftState) -> None:
    c.transferee = None


def handle_timeout_now(c: RaftState, m: TimeoutNow, out: list[Effect]) -> None:
    if c.role == "leader":
        return
    campaign(c, out, transfer=True)
