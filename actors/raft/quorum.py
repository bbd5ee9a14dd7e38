"""Majority arithmetic over a voter set. Pure functions, no state.

Rules of this module:
* Only members of `voters` count; anything else in the inputs is ignored
  (a removed member, or the leader itself after it removed itself).
* An empty voter set has no quorum.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

from .messages import NodeId


def majority(voters: Collection[NodeId]) -> int:
    return len(voters) // 2 + 1


def has_quorum(voters: Collection[NodeId], acked: Collection[NodeId]) -> bool:
    if not voters:
        return False
    return sum(1 for v in voters if v in acked) >= majority(voters)


def committed_index(voters: Collection[NodeId], match: Mapping[NodeId, int]) -> int:
    """Highest index stored by a majority of `voters` (0 if none)."""
    if not voters:
        return 0
    indexes = sorted((match.get(v, 0) for v in voters), reverse=True)
    return indexes[majority(voters) - 1]


def vote_result(
    voters: Collection[NodeId], votes: Mapping[NodeId, bool]
) -> Literal["won", "lost", "pending"]:
    granted = sum(1 for v in voters if votes.get(v) is True)
    rejected = sum(1 for v in voters if votes.get(v) is False)
    if voters and granted >= majority(voters):
        return "won"
    if not voters or rejected > len(voters) - majority(voters):
        return "lost"
    return "pending"
