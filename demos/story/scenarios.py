"""Parts 1, 2 and 4 of the demo: erlmcp's run_demo in each mode, and crashing tools.

Part 1 follows erlmcp_consensus_poc:run_demo() step for step (start 3 nodes, status, add,
multiply and concat from different nodes, the audit logs, stop the leader, the status
after failover, divide and subtract, the final logs), with one change: the leader is not
stopped with gen_server:stop but its node is SIGKILLed, the failure the seed's "Log
Durability" row is about, and the same failure for both modes. Part 2 is the same steps
on a Raft cluster.
"""

from __future__ import annotations

import time
from typing import Any

from actors import Pid, erlang
from actors.consensus import client
from demos.lab import elapsed_ms, server, wait_for
from demos.lab.tools import HANG_TIMEOUT_MS

from .cluster import Cluster, DemoLab
from .report import Story, entry_line, ms

FIRST_CALLS = [("add", {"a": 1, "b": 2}), ("multiply", {"x": 3, "y": 4}),
               ("concat", {"s1": "hello", "s2": "world"})]
LATER_CALLS = [("divide", {"a": 10, "b": 2}), ("subtract", {"a": 20, "b": 5})]
PROBE_LIMIT_S = 15.0
PROBE_BACKOFF_MS = 5  # a retrying client waits this long after an error


def name(node: str) -> str:
    return node.split("@")[0]


def leader_name(leader: Any) -> str:
    """A status's leader_pid: a pid (POC) or a member id (Raft), as `pid (node)`."""
    if type(leader) is Pid:
        return f"{leader} ({name(leader.node)})"
    if type(leader) is tuple:
        return f"{leader[0]} on {name(leader[1])}"
    return "none"


def print_status(story: Story, c: Cluster, nodes: list[str]) -> None:
    for node in nodes:
        s = c.status(node)
        if type(s) is not dict:
            story.say(f"[{name(node)}] no answer: {s!r}")
            continue
        story.say(f"[{name(node)}] Role: {s['role']:<8} Leader: {leader_name(s['leader_pid'])}"
                  f", Executions: {s['execution_count']}")


def print_logs(story: Story, c: Cluster, nodes: list[str]) -> dict[str, list[Any]]:
    """Each node's own audit log, as erlmcp's print_audit_logs (size and role)."""
    logs = {node: c.own_log(node) for node in nodes}
    for node, entries in logs.items():
        role = c.status(node).get("role", "?")
        story.say(f"[{name(node)}] ({role}) has {len(entries)} executions in audit log"
                  if entries else f"[{name(node)}] ({role}) has empty audit log")
    return logs


def ids(entries: list[dict[str, Any]]) -> list[Any]:
    return [e["request_id"] for e in entries]


def runs(answers: list[Any]) -> str:
    """[a, a, b] as "a x2, b"."""
    out: list[list[Any]] = []
    for answer in answers:
        if out and out[-1][0] == answer:
            out[-1][1] += 1
        else:
            out.append([answer, 1])
    return ", ".join(f"{a}" + (f" x{k}" if k > 1 else "") for a, k in out)


def _probe(target: str, tool: str, args: dict[str, Any], request_id: str, t0: float,
           report_to: Pid) -> None:
    """(a process) Retry one request from the kill on until it succeeds (bounded)."""
    answers: list[Any] = []
    while (time.monotonic() - t0) < PROBE_LIMIT_S:
        answer = client.execute_tool(server(target), tool, args, request_id)
        answers.append(answer if answer[0] != "ok" else "ok")
        if answer[0] == "ok":
            erlang.send(report_to, ("probe", elapsed_ms(t0), answer, answers))
            return
        erlang.receive(lambda _m: False, PROBE_BACKOFF_MS)
    erlang.send(report_to, ("probe", None, None, answers))


def kill_leader(c: Cluster, leader: str, via: str, tool: str, args: dict[str, Any],
                request_id: str) -> tuple[Any, float | None, Any]:
    """SIGKILL the leader's node while a client retries `tool` through `via` from that
    moment on: (the new leader found or None, ms to it, the client's report or None)."""
    survivors = [n for n in c.nodes if n != leader]
    t0 = c.crash(leader)
    erlang.spawn(_probe, via, tool, args, request_id, t0, erlang.self())
    found = c.wait_leader(survivors, PROBE_LIMIT_S)
    leader_ms = elapsed_ms(t0) if found else None
    probe = erlang.receive(lambda m: type(m) is tuple and m[0] == "probe",
                           int(PROBE_LIMIT_S * 1000) + 12000)
    return found, leader_ms, (None if probe is erlang.TIMEOUT or probe[1] is None else probe)


def failover(lab: DemoLab, story: Story, mode: str) -> None:
    poc = mode == "poc"
    story.part("1" if poc else "2", "POC: erlmcp's run_demo, step for step" if poc else
               "Raft: the same steps, on an ra cluster of 3 members")
    c = lab.cluster(mode)
    story.step("Starting 3 consensus nodes (each its own OS process, running erlmcp's tree)")
    election = c.form(3)
    nodes = list(c.nodes)
    story.measure(mode, "election_ms", round(election, 1))
    story.say(f"{', '.join(nodes)}: one leader agreed by all {ms(election)} after the "
              "services started"
              + ("" if poc else " (ra: the lowest-named member campaigns at once, as "
                 "ra.start_cluster makes one member do)"))

    story.step("Initial status (one node elected as leader):")
    print_status(story, c, nodes)

    story.step("Executing tools (all requests routed to leader):")
    for node, (tool, args) in zip(nodes, FIRST_CALLS, strict=True):
        answer = client.execute_tool(server(node), tool, args, f"{tool}-1")
        story.say(f"{name(node)} -> {tool}({', '.join(map(repr, args.values()))}) = "
                  f"{answer[1] if answer[0] == 'ok' else answer!r}")

    leader = c.leader()
    if not poc:  # followers apply an entry once they learn it is committed
        wait_for(lambda: all(c.own_count(n) == 3 for n in nodes), 5.0)
    story.step("Audit logs (exactly-once semantics - all executions on leader):")
    logs = print_logs(story, c, nodes)
    story.say(f"{name(leader)}'s log, oldest first:")
    for e in logs[leader]:
        story.say(f"  {entry_line(e)}")
    expected = [0, 0, 3] if poc else [3, 3, 3]
    story.check(f"{mode}_ran_on_leader", f"{mode}: tools ran once, on the leader",
                sorted(len(v) for v in logs.values()) == expected
                and all(e["executor"] == leader for e in logs[leader]),
                f"entries per node {[len(v) for v in logs.values()]}, executor {name(leader)}"
                + (" (the log lives on the leader only)" if poc else " (replicated to all)"))

    story.step("Simulating leader failure (demonstrating failover)...")
    executed = c.status(leader)["execution_count"]
    story.say(f"Killing leader: {name(leader)} (executed {executed} tools): SIGKILL of its "
              "node's OS process (erlmcp's run_demo calls stop(Leader); a crash is what the "
              "seed's \"Log Durability\" row is about)")
    survivors = [n for n in nodes if n != leader]
    (tool, args) = LATER_CALLS[0]
    found, leader_ms, probe = kill_leader(c, leader, survivors[0], tool, args, f"{tool}-1")
    command_ms = probe[1] if probe is not None else None
    story.measure(mode, "failover_leader_ms", leader_ms and round(leader_ms, 1))
    story.measure(mode, "failover_command_ms", command_ms and round(command_ms, 1))
    new_leader = found[0] if found else None
    story.say(f"new leader {name(new_leader) if new_leader else 'NONE'}: agreed by both "
              f"survivors {ms(leader_ms)} after the kill")
    if probe is not None:
        story.say(f"a client retrying {tool} through {name(survivors[0])} from the moment of "
                  f"the kill: first success {ms(command_ms)} after it "
                  f"(answers: {runs(probe[3])}; {PROBE_BACKOFF_MS} ms between tries)")
    story.check(f"{mode}_failover", f"{mode}: a new leader after the kill", new_leader is not None
                and command_ms is not None, f"{ms(leader_ms)} to a leader, {ms(command_ms)} "
                "to a successful command")
    if new_leader is None:
        return

    story.step("Status after failover (new leader elected):")
    print_status(story, c, survivors)

    story.step("Executing tools with new leader:")
    story.say(f"{name(survivors[0])} -> divide(10, 2) = "
              f"{probe[2][1] if probe and probe[2] else '?'} (the retried call above)")
    (tool, args) = LATER_CALLS[1]
    answer = client.execute_tool(server(survivors[1]), tool, args, f"{tool}-1")
    story.say(f"{name(survivors[1])} -> subtract(20, 5) = "
              f"{answer[1] if answer[0] == 'ok' else answer!r}")

    if not poc:
        wait_for(lambda: all(c.own_count(n) == 5 for n in survivors), 5.0)
    story.step("Final audit logs (new leader has continued execution):")
    logs = print_logs(story, c, survivors)
    trail = client.audit(server(survivors[0]))
    entries = list(reversed(trail[1])) if trail[0] == "ok" else []
    story.say(f"the cluster's audit trail (client.audit through {name(survivors[0])}), "
              "oldest first:")
    for e in entries:
        story.say(f"  {entry_line(e)}")
    if poc:
        _poc_truth(story, logs, entries)
    else:
        _raft_truth(story, logs, entries)


def _poc_truth(story: Story, logs: dict[str, list[Any]], trail: list[Any]) -> None:
    story.step("What is true")
    story.say("erlmcp's run_demo ends with \"✓ Audit log continuity (execution history "
              "preserved)\". It is not preserved: add, multiply and concat lived only in the "
              "dead leader's memory. The new leader's log started empty; the cluster's trail "
              "is divide and subtract, nothing before. The seed's own table says so: \"Log "
              "Durability: Lost on crash\", \"Audit Trail: Leader only\".")
    everywhere = {i for entries in logs.values() for i in ids(entries)} | set(ids(trail))
    lost = {"add-1", "multiply-1", "concat-1"}
    ok = ids(trail) == ["divide-1", "subtract-1"] and not lost & everywhere
    story.fact("poc_log_lost", ok)
    story.check("poc_log_lost", "poc: the old leader's log is lost with it", ok,
                f"trail after failover {ids(trail)}; {sorted(lost)} found nowhere")


def _raft_truth(story: Story, logs: dict[str, list[Any]], trail: list[Any]) -> None:
    wanted = ["add-1", "multiply-1", "concat-1", "divide-1", "subtract-1"]
    same = len({repr(v) for v in logs.values()}) == 1
    kept = all(ids(v) == wanted for v in logs.values()) and ids(trail) == wanted
    story.fact("raft_log_identical_on_survivors", same and kept)
    story.say("every entry, old leader's included, is on both survivors: same execution ids "
              "(log indexes), timestamps and results")
    story.check("raft_log_identical",
                "raft: the log survives the leader's crash, identical on the survivors",
                same and kept, f"{len(logs)} survivors, identical: {same}; request ids "
                f"{ids(next(iter(logs.values()), []))}")


# -- part 4: crashing tools --------------------------------------------------------------------

def _tree_lines(story: Story, rows: list[tuple[str, Any, str]], before: dict[str, Any]) -> None:
    for child_id, pid, kind in rows:
        same = before.get(child_id.strip()) == pid
        mark = "" if not before else ("  (same)" if same else "  (new)")
        story.say(f"  {child_id:<18} {pid!s:<14} {kind}{mark}")


def _pids(rows: list[tuple[str, Any, str]]) -> dict[str, Any]:
    return {child_id.strip(): pid for child_id, pid, _ in rows}


def tools(lab: DemoLab, story: Story, mode: str) -> None:
    c = lab.cluster(mode)
    if not c.nodes:
        c.form(3)
    leader = c.leader()
    via = next(n for n in c.nodes if n != leader)
    story.step(f"{mode}: the leader {name(leader)}'s tree, before "
               "(rpc supervisor.which_children on its node):")
    rows = c.tree(leader)
    before = _pids(rows)
    _tree_lines(story, rows, {})

    story.step(f"{mode}: `explode` raises; `hang` never returns (its timeout: "
               f"{HANG_TIMEOUT_MS} ms). Calls go through {name(via)}.")
    crashed = client.execute_tool(server(via), "explode", {"n": 1}, f"{mode}-explode-1")
    story.say(f"explode -> {_brief(crashed)!r}")
    runner = wait_for(lambda: _replaced_runner(c, leader, before), 3.0)
    answer = client.execute_tool(server(via), "add", {"a": 2, "b": 2})
    story.say(f"{_restart(runner)} restarted by tool_runner_sup; add(2, 2) -> {answer!r}")
    story.check(f"{mode}_tool_crash_restarted",
                f"{mode}: a crashed tool's runner is restarted and the service keeps answering",
                crashed[0] == "error" and crashed[1][0] == "tool_crashed"
                and runner is not None and answer == ("ok", 4),
                f"{_restart(runner)}, then add answered {answer!r}")
    t0 = time.monotonic()
    runners = _pids(c.tree(leader))
    hung = client.execute_tool(server(via), "hang", {}, f"{mode}-hang-1")
    took = elapsed_ms(t0)
    runner2 = wait_for(lambda: _replaced_runner(c, leader, runners), 3.0)
    story.say(f"hang -> {hung!r} after {ms(took)}; its stuck runner was killed and "
              f"restarted: {_restart(runner2)}")
    story.check(f"{mode}_tool_hang_replaced",
                f"{mode}: a hung tool times out and its runner is replaced",
                hung == ("error", "timeout") and runner2 is not None,
                f"{hung!r} in {ms(took)}")

    story.step(f"{mode}: past the restart intensity (tool_runner_sup allows 3 restarts in "
               "5 s, OTP's intensity/period): two more explodes")
    crashed = client.execute_tool(server(via), "explode", {"n": 2}, f"{mode}-explode-2")
    story.say(f"explode -> {_brief(crashed)!r}  (restart 3 of 3)")
    entries = c.own_count(leader)
    crashed = client.execute_tool(server(via), "explode", {"n": 3}, f"{mode}-explode-3")
    story.say(f"explode -> {_brief(crashed)!r}  (restart 4: one too many)")
    after = wait_for(lambda: _escalated(c, leader, before), 5.0)
    if not (crashed[0] == "error" and crashed[1][0] == "tool_crashed"):
        c.wait_leader(c.nodes, 10.0)
        again = client.execute_tool(server(via), "explode", {"n": 3}, f"{mode}-explode-3")
        story.say("(the leader's server was restarted while this call was in it, so the "
                  "caller cannot know whether it ran; a retry with the same request id "
                  f"-> {_brief(again)!r}"
                  + (": answered from the log, the tool did not run again)" if mode == "raft"
                     else ")"))
    found = c.wait_leader(c.nodes, 10.0)
    entries_after = c.own_count(leader)
    story.say("tool_runner_sup gave up (exit shutdown); erlmcp_sup (rest_for_one) restarted "
              "it and every child after it. The tree after:")
    _tree_lines(story, after or c.tree(leader), before)
    answer = client.execute_tool(server(via), "add", {"a": 5, "b": 5})
    story.say(f"add(5, 5) through {name(via)} -> {answer!r}; leader now: "
              f"{name(found[0]) if found else 'NONE'}")
    story.check(f"{mode}_escalation",
                f"{mode}: the escalation restarts the subtree and the service answers again",
                after is not None and answer == ("ok", 10),
                "tool_runner_sup, audit_log and consensus restarted under the same erlmcp_sup")
    if mode == "poc":
        moved = found is not None and found[0] != leader
        story.say(f"and the POC leader's node lost its log again: {entries} entries before "
                  f"the last explode, {entries_after} after (its AuditLog was restarted)"
                  + ("; its restarted server gave up the global name, and another node won "
                     "the election" if moved else ""))
    else:
        story.say("ra_system comes before the runners in erlmcp_sup and was not restarted, "
                  f"so the member and its log stay: {entries} entries before the last "
                  f"explode, {entries_after} after")
    story.fact(f"{mode}_tool_crash_restarted", runner is not None and runner2 is not None)
    story.fact(f"{mode}_escalation_log_entries", [entries, entries_after])


def _brief(answer: Any) -> Any:
    """A tool_crashed answer without its stack trace."""
    if (type(answer) is tuple and len(answer) == 2 and type(answer[1]) is tuple
            and answer[1][:1] == ("tool_crashed",) and type(answer[1][1]) is tuple):
        return (answer[0], ("tool_crashed", answer[1][1][0]))
    return answer


def _replaced_runner(c: Cluster, node: str, before: dict[str, Any]) -> Any:
    """(runner id, old pid, new pid) of a runner restarted since `before`, else None."""
    for child_id, pid in _pids(c.tree(node)).items():
        old = before.get(child_id)
        if child_id.startswith("runner_") and type(pid) is Pid and old is not None \
                and pid != old:
            return child_id, old, pid
    return None


def _restart(replaced: Any) -> str:
    if replaced is None:
        return "no runner"
    child_id, old, new = replaced
    return f"{child_id} {old} -> {new}"


def _escalated(c: Cluster, node: str, before: dict[str, Any]) -> Any:
    rows = c.tree(node)
    now = _pids(rows)
    changed = now.get("erlmcp_sup") == before["erlmcp_sup"] and all(
        type(now.get(k)) is Pid and now[k] != before[k]
        for k in ("tool_runner_sup", "audit_log", "consensus"))
    return rows if changed else None
