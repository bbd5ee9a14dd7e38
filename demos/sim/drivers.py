"""What acts on the simulated cluster from outside: faults, the operator, the clients.

* the fault injector crashes members (restarting them after a while, sometimes
  at once, to test that votes are durable) and partitions the network;
* the operator transfers leadership, removes and re-adds members, and after
  healing puts every member back in the configuration;
* the clients propose commands and issue reads, and check every answer.

Each function takes the `Sim` it acts on and draws from its one seeded RNG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.raft import (
    Accepted,
    ChangeMembership,
    Propose,
    ReadIndex,
    ReadReady,
    Reply,
    TransferLeadership,
)

from .world import TICK, Member, Request

if TYPE_CHECKING:
    from .run import Sim

# ------------------------------------------------------------ faults


def on_fault(sim: Sim) -> None:
    if sim.healed:
        return
    k = sim.knobs
    total = k.crash_every + k.partition_every
    if sim.rng.random() < 0.2:
        admin(sim)
    elif sim.rng.randrange(total) < k.crash_every:
        crash_and_restart(sim, sim.members[sim.rng.choice(sim.ids)], quick=False)
    elif sim.rng.random() < 0.3:
        sim.group = {i: 0 for i in sim.ids}
    else:
        sim.group = {i: sim.rng.randrange(2) for i in sim.ids}
    mean = min(x for x in (k.crash_every, k.partition_every) if x)
    sim._at(sim.now + sim.rng.randint(1, 2 * mean), "fault", 0, 0)


def crash_and_restart(sim: Sim, m: Member, quick: bool) -> None:
    if not m.up:
        return
    sim.crash(m)
    quick = quick or sim.rng.random() < 0.5  # a fast restart can re-vote in the same term
    delay = sim.rng.randint(1, TICK) if quick else sim.rng.randint(TICK, 40 * TICK)
    sim._at(sim.now + delay, "restart", m.id, 0)


def heal(sim: Sim) -> None:
    sim.healed = True
    sim.group = {i: 0 for i in sim.ids}
    for m in sim.members.values():
        if not m.up:
            sim.start(m)
    sim._at(sim.now + 1, "repair", 0, 0)


# ------------------------------------------------------------ the operator


def current_leader(sim: Sim) -> Member | None:
    leaders = [m for m in sim.members.values() if m.core and m.core.role == "leader"]
    return max(leaders, key=lambda m: m.core.term if m.core else 0) if leaders else None


def admin(sim: Sim) -> None:
    """Operator actions: leadership transfer, or a single-server membership change."""
    lead = current_leader(sim)
    if lead is None or lead.core is None:
        return
    voters = lead.core.voters
    if sim.rng.random() < 0.5:
        sim.step(lead, TransferLeadership(sim.rng.choice(sim.ids)))
    elif len(voters) == len(sim.ids):
        sim.step(lead, ChangeMembership("remove", sim.rng.choice(sim.ids), "member"))
    else:
        missing = sorted(set(sim.ids) - voters)
        sim.step(lead, ChangeMembership("add", missing[0], "member"))


def on_repair(sim: Sim) -> None:
    """After healing: put every member back in the configuration, one at a time. No
    leadership transfers here (the chaos operator's `admin` makes them): a new leader may
    hold another snapshot, so a member far behind starts its transfer again, and with a
    transfer every few hundred time units a slow snapshot never arrives (seed 997274)."""
    lead = current_leader(sim)
    if lead is not None and lead.core is not None:
        missing = sorted(set(sim.ids) - lead.core.voters)
        if missing:
            sim.step(lead, ChangeMembership("add", missing[0], "member"))
    sim._at(sim.now + 5 * TICK, "repair", 0, 0)


# ------------------------------------------------------------ the clients


def on_client(sim: Sim) -> None:
    if sim.healed:
        return
    live = [i for i in sim.ids if sim.members[i].up]
    if live:
        hint = sim.leader_hint
        target = hint if hint in live and sim.rng.random() < 0.8 else sim.rng.choice(live)
        m = sim.members[target]
        assert m.core is not None
        corr = sim.next_corr
        sim.next_corr += 1
        if sim.rng.random() < 0.8:
            cmd = f"c{corr}"
            sim.requests[corr] = Request(m.id, m.incarnation, cmd, sim.acked_hi)
            sim.step(m, Propose(cmd, corr))
        else:
            sim.requests[corr] = Request(m.id, m.incarnation, None, sim.acked_hi)
            sim.step(m, ReadIndex(corr))
    sim._at(sim.now + sim.rng.randint(1, 2 * sim.knobs.client_every), "client", 0, 0)


def on_reply(sim: Sim, m: Member, eff: Reply) -> None:
    if eff.correlation == "member":
        return  # membership changes are fire-and-forget for the simulated operator
    req = sim.requests.pop(eff.correlation, None)  # type: ignore[call-overload]
    if req is None:
        sim.fail(f"reply to unknown or answered request {eff!r}")
    assert req is not None
    sim.answered += 1
    if isinstance(eff.result, Accepted):
        index = eff.result.index
        if req.command is None or len(m.applied) < index:
            sim.fail(f"{m.id} accepted {eff!r} before applying it")
        if m.applied[index - 1].command != req.command:
            sim.fail(f"{m.id} acknowledged {req.command} at {index}, "
                     f"applied {m.applied[index - 1]!r}")
        sim.acked[req.command] = index
        sim.acked_hi = max(sim.acked_hi, index)


def on_read_ready(sim: Sim, m: Member, eff: ReadReady) -> None:
    req = sim.requests.pop(eff.correlation, None)  # type: ignore[call-overload]
    if req is None or req.command is not None:
        sim.fail(f"ReadReady for unknown request {eff!r}")
    assert req is not None
    sim.answered += 1
    if eff.index < req.issued_after:
        sim.fail(f"stale read on {m.id}: read index {eff.index} < {req.issued_after}, "
                 "acknowledged before the read was issued")
