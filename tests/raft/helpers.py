"""Small builders shared by the Raft unit and paper tests."""

from __future__ import annotations

import random

from actors.raft import Campaign, Effect, Entry, HardState, Options, RaftCore, Send

from .harness import Network


def ents(spec: str) -> list[Entry]:
    """`"1/1 2/1 3/2"` -> entries at those index/term pairs, commands "e<index>"."""
    out = []
    for word in spec.split():
        index, term = (int(x) for x in word.split("/"))
        out.append(Entry(term, index, f"e{index}"))
    return out


def core(
    node: int,
    voters: tuple[int, ...] = (1, 2, 3),
    term: int = 0,
    log: str = "",
    vote: int | None = None,
    **options: object,
) -> RaftCore:
    opts = Options(**options)  # type: ignore[arg-type]
    return RaftCore(node, voters, random.Random(node), opts, HardState(term, vote), ents(log))


def sent(effects: list[Effect]) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def elect(net: Network, node: int) -> None:
    """Campaign `node` and run the network until it leads."""
    net.step(node, Campaign())
    net.stabilize()
    assert net.cores[node].role == "leader"
