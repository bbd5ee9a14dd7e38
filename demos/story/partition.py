"""Part 3 of the demo: five service nodes split 3 | 2, in each mode.

The same cut in both modes: side A is the leader, one follower and this demo's node
(the controller); side B is the other three followers, the majority. The controller must
be on a side for POC mode: a node connected to both sides takes part in `global`'s locks
on both, and side B could then never register a leader of its own (see
tests/consensus/test_poc_split_brain.py). For the same reason every other node this one
is connected to (the other mode's nodes: the mesh connects everyone) goes on side A too.
Side B is driven through an agent: a process on one of its nodes that obeys the controller
over a localhost socket no cut touches.
"""

from __future__ import annotations

import time
from typing import Any

from actors import Pid, erlang
from actors.consensus import client
from demos.lab import Agent, cut, elapsed_ms, heal, server, wait_for
from demos.lab import node as on_peer

from .cluster import Cluster, DemoLab
from .report import Story, ms
from .scenarios import ids, name

MINORITY_CALL_MS = 3000  # the minority write: the caller's own call timeout


def partition(lab: DemoLab, story: Story, mode: str) -> None:
    c = lab.cluster(mode)
    how = ("the failover's survivors stay; new nodes join as followers" if mode == "poc" else
           "a new cluster: the failover's had its 3 members fixed at start")
    story.step(f"{mode}: 5 service nodes ({how})")
    c.form(5)
    leader = c.leader()
    followers = [n for n in c.nodes if n != leader]
    side_a, side_b = [leader, followers[0]], followers[1:]
    for i in (1, 2):
        client.execute_tool(server(leader), "add", {"a": i, "b": 0}, f"{mode}-before-{i}")
    story.say(f"leader {name(leader)}; two writes before the cut. Side A (minority): "
              f"{', '.join(map(name, side_a))} + this demo's node; side B (majority): "
              f"{', '.join(map(name, side_b))}, reached through an agent on {name(side_b[0])}")
    # every other node (the other mode's, idle) goes on side A too: a node that stays
    # connected to both sides would take part in global's locks on both
    others = [n for n in erlang.nodes() if n not in c.nodes]
    if others:
        story.say(f"the other nodes this one knows ({', '.join(map(name, others))}) go on side "
                  "A too: global's locks span every connected node")
    agent = Agent(side_b[0])
    try:
        if mode == "poc":
            _poc(story, c, agent, side_a, side_b, others)
        else:
            _raft(story, c, agent, side_a, side_b, others)
    finally:
        agent.close()


def _counts(c: Cluster, agent: Agent, side_a: list[str], side_b: list[str]) -> dict[str, int]:
    """Entries in each node's own log: side A asked directly, side B through the agent."""
    counts = {n: c.own_count(n) for n in side_a}
    counts.update({n: agent(on_peer.on, n, on_peer.own_count) for n in side_b})
    return counts


def _show_counts(story: Story, when: str, counts: dict[str, int]) -> None:
    story.say(f"entries per node {when}: " + ", ".join(f"{name(n)} {k}" for n, k in
                                                      counts.items()))


def _write_b(agent: Agent, mode: str, side_b: list[str]) -> list[Any]:
    return [agent(client.execute_tool, server(n), "add", {"a": i, "b": 100}, f"{mode}-B-{i}")
            for i, n in enumerate(side_b)]


def _poc(story: Story, c: Cluster, agent: Agent, side_a: list[str], side_b: list[str],
         others: list[str]) -> None:
    leader = side_a[0]
    leader_a = c.status(leader)["leader_pid"]
    watch_a = erlang.monitor("process", leader_a)
    story.step("poc: cut (the leader's node last, so side B's global never waits on it)")
    t0 = time.monotonic()
    cut([erlang.node(), *others, *side_a], side_b, agent, last=leader)
    found_b = agent(on_peer.converged_within, side_b, 10000)
    took = elapsed_ms(t0)
    leader_b = found_b[1] if found_b else None
    status_a = c.status(leader)
    story.say(f"side A still has its leader {name(leader)} ({status_a['role']}); side B "
              f"elected {name(found_b[0]) if found_b else 'NONE'} {ms(took)} after the cut "
              "began: two leaders")
    story.step("poc: writes on both sides")
    answers_a = [client.execute_tool(server(n), "add", {"a": i, "b": 200}, f"poc-A-{i}")
                 for i, n in enumerate(side_a)]
    answers_b = _write_b(agent, "poc", side_b)
    story.say(f"side A: {answers_a}")
    story.say(f"side B: {answers_b}")
    before = _counts(c, agent, side_a, side_b)
    _show_counts(story, "(own AuditLogs) before the heal", before)
    split = (leader_b is not None and status_a["role"] == "leader"
             and all(a[0] == "ok" for a in answers_a + answers_b))
    story.fact("poc_split_brain", split)
    story.check("poc_split_brain", "poc: split brain, two leaders both acknowledging writes", split,
                f"leaders {name(leader)} and {name(found_b[0]) if found_b else 'NONE'}; "
                f"{len(answers_a) + len(answers_b)} writes acknowledged")
    if leader_b is None:
        return
    watch_b = agent(erlang.monitor, "process", leader_b)

    story.step("poc: heal. global finds erlmcp_consensus_leader registered twice; its "
               "resolver (random_exit_name) keeps one and kills the other")
    t0 = time.monotonic()
    heal([erlang.node(), *others, *side_a], side_b, agent)
    found = c.wait_leader(c.nodes, 15.0)
    winner = found[1] if found else None
    story.say(f"one leader again after {ms(elapsed_ms(t0))}: "
              f"{name(found[0]) if found else 'NONE'}")
    if winner == leader_a:
        loser, reason = leader_b, agent(on_peer.down_reason, watch_b, 5000)
    else:
        loser = leader_a
        down = erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", watch_a), 5000)
        reason = "no_down" if down is erlang.TIMEOUT else down[4]
    lost_side = "B" if loser == leader_b else "A"
    trail = client.audit(server(c.nodes[0]))
    trail_ids = set(ids(trail[1])) if trail[0] == "ok" else set()
    lost = {f"poc-{lost_side}-{i}" for i in range(len(side_a if lost_side == 'A' else side_b))}
    kept = {f"poc-{'A' if lost_side == 'B' else 'B'}-{i}"
            for i in range(len(side_b if lost_side == 'A' else side_a))}
    story.say(f"killed: the leader on {name(loser.node) if type(loser) is Pid else '?'} "
              f"(DOWN reason {reason!r}); its server was restarted by erlmcp_sup as a "
              "follower")
    story.say(f"the cluster's audit trail (client.audit, any node) has {len(trail_ids)} "
              f"entries: side {lost_side}'s acknowledged writes {sorted(lost)} are not in it")
    after = {n: c.own_count(n) for n in c.nodes}
    _show_counts(story, "after the heal", after)
    story.say(f"(the lost writes survive only in {name(loser.node) if type(loser) is Pid else '?'}"
              "'s own AuditLog, which no one reads: POC reads go to the leader)")
    ok = (reason == "killed" and not lost & trail_ids and kept <= trail_ids)
    story.fact("poc_heal", {"winner": str(winner), "lost_side": lost_side,
                            "lost_acknowledged_writes": sorted(lost), "counts_before": before,
                            "counts_after": after})
    story.check("poc_heal_lost_writes",
                "poc: after the heal one leader is killed and its side's writes leave the trail",
                ok, f"lost {len(lost)} acknowledged writes; reason {reason!r}")


def _raft(story: Story, c: Cluster, agent: Agent, side_a: list[str], side_b: list[str],
          others: list[str]) -> None:
    old = side_a[0]
    wait_for(lambda: all(c.own_count(n) == 2 for n in c.nodes), 5.0)
    story.step("raft: cut (the same way)")
    t0 = time.monotonic()
    cut([erlang.node(), *others, *side_a], side_b, agent, last=old)
    found_b = agent(on_peer.converged_within, side_b, 10000)
    took = elapsed_ms(t0)
    stepped = wait_for(lambda: c.status(old).get("role") != "leader", 5.0)
    down_ms = elapsed_ms(t0)
    story.say(f"side B (3 of 5, a quorum) elected {name(found_b[0]) if found_b else 'NONE'} "
              f"{ms(took)} after the cut began")
    story.say(f"the old leader {name(old)} stepped down "
              f"{'after ' + ms(down_ms) if stepped else ': NOT within 5 s'} "
              "(check-quorum: it no longer hears from a majority)")
    story.step("raft: writes on both sides")
    answers_b = _write_b(agent, "raft", side_b)
    story.say(f"side B (majority): {answers_b}")
    refused = []
    for i, node in enumerate(side_a):
        answer, took_ms = on_peer.timed_execute(server(node), "add", {"a": i, "b": 200},
                                                f"raft-A-{i}", MINORITY_CALL_MS)
        refused.append(answer)
        what = ("an error, at once" if answer[0] == "error" and took_ms < MINORITY_CALL_MS
                else "no answer: the call timed out" if answer == ("exit", "timeout")
                else "ACCEPTED")
        story.say(f"side A (minority) via {name(node)}: {answer!r} after {ms(took_ms)}: {what}")
    before = _counts(c, agent, side_a, side_b)
    _show_counts(story, "before the heal", before)
    majority_ok = found_b is not None and all(a[0] == "ok" for a in answers_b)
    minority_refused = all(a[0] != "ok" for a in refused)
    story.fact("raft_minority_answers", [repr(a) for a in refused])
    story.check("raft_minority_refused", "raft: the minority refuses writes", minority_refused,
                f"answers {[a[1] for a in refused]}")
    story.check("raft_majority_served", "raft: the majority keeps serving", majority_ok,
                f"{sum(a[0] == 'ok' for a in answers_b)} of {len(answers_b)} writes acknowledged")

    story.step("raft: heal. The minority rejoins and catches up from the leader's log")
    t0 = time.monotonic()
    heal([erlang.node(), *others, *side_a], side_b, agent)
    total = 2 + sum(a[0] == "ok" for a in answers_b)
    caught = wait_for(lambda: all(c.own_count(n) == total for n in c.nodes), 10.0)
    story.say(f"every node holds {total} entries {ms(elapsed_ms(t0))} after the heal"
              if caught else "the minority did NOT catch up within 10 s")
    after = {n: c.own_count(n) for n in c.nodes}
    _show_counts(story, "after the heal", after)
    logs = {n: c.own_log(n) for n in c.nodes}
    identical = len({repr(v) for v in logs.values()}) == 1
    acked = {"raft-before-1", "raft-before-2"} | {
        f"raft-B-{i}" for i, a in enumerate(answers_b) if a[0] == "ok"}
    present = all(acked <= set(ids(v)) for v in logs.values())
    refused_ids = {f"raft-A-{i}" for i in range(len(side_a))}
    story.say(f"logs identical on all 5: {identical}; every acknowledged write on every "
              f"node: {present}; refused writes in the log: "
              f"{sorted(refused_ids & set(ids(next(iter(logs.values()), []))))}")
    story.fact("raft_heal", {"counts_before": before, "counts_after": after,
                             "identical": identical, "acknowledged_present": present})
    story.check("raft_caught_up",
                "raft: after the heal the minority caught up and nothing was lost",
                bool(caught) and identical and present,
                f"{total} entries on every node, identical logs")
