"""Part 5 of the demo: the seed's "Performance Characteristics", measured in this run.

Every figure is taken on this machine, now, through the service's client protocol from
the demo's node (one more OS process): latency is the median of sequential calls,
throughput the calls answered by CLIENTS concurrent client processes in LOAD_S seconds.
Election and failover come from parts 1 and 2 (the kill is a SIGKILL of the leader's
node); if those did not run, the failover is measured here, last: its kill ends the cluster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from actors import erlang
from actors.consensus import client
from demos.lab import call_on, elapsed_ms, server

from .cluster import Cluster, DemoLab
from .report import Story, ms, p50, table
from .scenarios import kill_leader

SAMPLES = 100  # sequential calls per latency figure
CLIENTS = 8
LOAD_S = 1.0
REPLICATION_SAMPLES = 20

SEED = {  # the seed's claims: (latency, throughput)
    "poc": {"tool": ("~1ms", "~50K ops/sec"), "election": ("~100ms", "N/A"),
            "failover": ("~200ms", "N/A"), "read": ("~1ms", "~50K ops/sec"),
            "replication": ("-", "-")},
    "raft": {"tool": ("~5-10ms", "~10K ops/sec"), "election": ("~150-300ms", "N/A"),
             "failover": ("~300-500ms", "N/A"), "read": ("~1ms", "~200K ops/sec"),
             "replication": ("~3-5ms", "N/A")},
}


def _latency(call: Callable[[int], Any]) -> float:
    samples = []
    for i in range(SAMPLES):
        t0 = time.monotonic()
        call(i)
        samples.append(elapsed_ms(t0))
    return p50(samples)


def _load(calls: list[Callable[[int], Any]]) -> float:
    """Answered calls per second, from one client process per function, for LOAD_S s."""
    me = erlang.self()
    deadline = time.monotonic() + LOAD_S

    def client_loop(call: Callable[[int], Any]) -> None:
        done = i = 0
        while time.monotonic() < deadline:
            answer = call(i)
            i += 1
            done += answer[0] == "ok" if type(answer) is tuple else type(answer) is dict
        erlang.send(me, ("load", done))

    t0 = time.monotonic()
    for call in calls:
        erlang.spawn(client_loop, call)
    total = 0
    for _ in calls:
        msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "load",
                             int(LOAD_S * 1000) + 15000)
        total += 0 if msg is erlang.TIMEOUT else msg[1]
    return total / (time.monotonic() - t0)


def _replication(c: Cluster, leader: str, k: int) -> tuple[float, float] | None:
    """One write through the leader: (ms to the ack, ms until every member applied it),
    seen by a watcher on each member (started, and watching, before the write)."""
    me = erlang.self()
    target = c.own_count(leader) + 1
    for node in c.nodes:
        erlang.spawn(lambda node=node: erlang.send(me, ("applied", k, call_on(
            node, "wait_applied", target, 3000, me, k, timeout=6000))))
    for _ in c.nodes:
        if erlang.receive(lambda m: type(m) is tuple and m[:2] == ("watching", k),
                          5000) is erlang.TIMEOUT:
            return None
    t0 = time.monotonic()
    answer = client.execute_tool(server(leader), "add", {"a": k, "b": 0})
    ack = elapsed_ms(t0)
    seen = [erlang.receive(lambda m: type(m) is tuple and m[:2] == ("applied", k), 8000)
            for _ in c.nodes]
    times = [m[2] for m in seen if m is not erlang.TIMEOUT and type(m[2]) is float]
    if answer[0] != "ok" or len(times) != len(c.nodes):
        return None
    return ack, (max(times) - t0) * 1000.0


def measure(lab: DemoLab, story: Story, mode: str) -> None:
    """Take the mode's figures on its current cluster (a new one of 3 if there is none)."""
    c = lab.cluster(mode)
    if not c.nodes:
        c.form(3)
    if "election_ms" not in story.numbers[mode] and c.election_ms is not None:
        story.measure(mode, "election_ms", round(c.election_ms, 1))
    leader = c.leader()
    followers = [n for n in c.nodes if n != leader]
    put = story.numbers[mode]
    put["cluster_size"] = len(c.nodes)
    put["tool_p50_ms"] = round(_latency(lambda i: client.execute_tool(
        server(leader), "add", {"a": i, "b": 1})), 2)
    put["tool_ops"] = round(_load([
        (lambda i, j=j: client.execute_tool(server(leader), "add", {"a": i, "b": j}))
        for j in range(CLIENTS)]))
    put["audit_p50_ms"] = round(_latency(lambda i: client.audit(
        server(followers[0]), limit=10)), 2)
    put["status_p50_ms"] = round(_latency(lambda i: client.get_status(
        server(followers[0]))), 2)
    put["read_ops"] = round(_load([
        (lambda i, j=j: client.audit(server(followers[j % len(followers)]), limit=10))
        for j in range(CLIENTS)]))
    if mode == "raft":
        samples = [s for k in range(REPLICATION_SAMPLES) if (s := _replication(c, leader, k))]
        put["replication_ack_p50_ms"] = round(p50([a for a, _ in samples]), 2)
        put["replication_all_p50_ms"] = round(p50([b for _, b in samples]), 2)
    if "failover_leader_ms" not in put:  # parts 1-2 did not run: the kill ends the figures
        _, leader_ms, probe = kill_leader(c, leader, followers[0], "add", {"a": 1, "b": 1},
                                          f"{mode}-numbers-failover")
        put["failover_leader_ms"] = leader_ms and round(leader_ms, 1)
        put["failover_command_ms"] = probe and round(probe[1], 1)


def print_tables(story: Story, modes: list[str]) -> None:
    header = ["Operation", "Latency (ours / seed)", "Throughput (ours / seed)", "Notes"]
    for mode in modes:
        n, seed = story.numbers[mode], SEED[mode]
        poc = mode == "poc"
        story.step(f"{'POC Performance' if poc else 'Production Performance (ra)'}: "
                   f"{n.get('cluster_size', '?')} nodes, this run")
        rows = [
            ["Tool execution", f"{ms(n.get('tool_p50_ms'))} / {seed['tool'][0]}",
             f"{n.get('tool_ops', 0):,} ops/s / {seed['tool'][1]}",
             "single leader serializes" if poc else "leader runs it, fsync, quorum commit"],
            ["Leader election", f"{ms(n.get('election_ms'))} / {seed['election'][0]}", "N/A",
             "global:register_name" if poc else "one member campaigns at start"],
            ["Failover time", f"{ms(n.get('failover_leader_ms'))} (1st command "
             f"{ms(n.get('failover_command_ms'))}) / {seed['failover'][0]}", "N/A",
             "node loss seen, re-register" if poc else "node loss seen, then a vote"],
            ["Read operations", f"{ms(n.get('audit_p50_ms'))} (status "
             f"{ms(n.get('status_p50_ms'))}) / {seed['read'][0]}",
             f"{n.get('read_ops', 0):,} ops/s / {seed['read'][1]}",
             "audit forwarded to the leader" if poc else "followers serve (local_query)"],
            ["Write replication", "none" if poc else
             f"quorum {ms(n.get('replication_ack_p50_ms'))}, all "
             f"{ms(n.get('replication_all_p50_ms'))} / {seed['replication'][0]}", "N/A",
             "leader only" if poc else "ack at quorum; then every member"],
        ]
        for line in table(rows, header):
            story.say(line, wrap=False)
    story.say()
    for line in (
        f"Latency: p50 of {SAMPLES} sequential calls from the demo's node, writes to the "
        "leader, reads (audit, get_status) to a follower. "
        f"Throughput: {CLIENTS} client processes in the demo's node for {LOAD_S:g} s "
        "(reads spread over the followers).",
        "Election: from starting the services to one leader agreed by all. Failover: from "
        "the SIGKILL of the leader's node to a leader agreed by the survivors, and to the "
        "first success of a client retrying every few ms.",
        "Replication: from the write to its entry applied on a quorum (the ack) and on "
        "every member (a watcher on each polls every ms); a follower applies an entry once "
        "the leader's next message tells it that it is committed.",
        f"This machine: {os.cpu_count()} CPUs, every node a Python OS process. The seed's "
        "figures are its estimates for Erlang/OTP.",
    ):
        story.say(line)
