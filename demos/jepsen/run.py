"""One Jepsen-style run: set the cluster up, run the clients and the nemesis together, heal
everything, read every member's final state, check, report.

The verdict is "valid" only if every check passes: the history is linearizable for the
workload's model, no acknowledged write is missing from any member, nothing appears twice
(audit), and the members' final states are identical. `run` returns the summary dict and
the process exit code the CLI uses: 0 valid, 1 an anomaly, 2 undecided (the checker ran
out of its budget on some key, and nothing else failed).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors import erlang, ra
from demos.lab import Lab

from . import checks, kv, linearizability, models, poc_control, report, workloads
from .cluster import AuditDb, NetnsLab, NetnsNodes, Nodes, RegisterDb
from .history import History, Op, counts
from .nemesis import Fault, Nemesis, NetnsPartitioner, TransportPartitioner
from .netns import NetnsNetwork

FINAL_PROCESS = 1_000_000  # the process id of the final reads
HEAL_S = 60.0


@dataclass
class Options:
    workload: str = "register"
    nemesis: list[str] = field(default_factory=lambda: ["kill", "pause", "partition"])
    time_s: float = 60.0
    seed: int = 0
    clients: int = 10
    nodes: int = 5
    out: Path = Path("jepsen-out")
    partition_via: str = "transport"
    mode: str = "raft"  # "poc": the control experiment (register workload, one partition)
    check_budget_s: float = 60.0
    node_log_level: str = "CRITICAL"  # the nodes' logging level (to standard error)


def run(opts: Options) -> tuple[dict[str, Any], int]:
    if opts.workload not in ("register", "audit"):
        raise ValueError(f"unknown workload {opts.workload!r}: register or audit")
    if opts.mode == "poc" and (opts.workload, opts.partition_via) != ("register", "transport"):
        raise ValueError("the POC control runs the register workload and cuts with the "
                         "transport's API (global needs the controller on one side)")
    opts.out.mkdir(parents=True, exist_ok=True)
    log_file = logging.FileHandler(opts.out / "controller.log")  # the controller's warnings
    log_file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(log_file)  # (nodes going down, mostly) go here
    lab = Lab(opts.node_log_level) if opts.partition_via == "transport" else NetnsLab(
        NetnsNetwork(opts.nodes, prefix="j"), opts.node_log_level)
    try:
        lab.open()
        return _run(lab, opts)
    finally:
        lab.close()
        logging.getLogger().removeHandler(log_file)
        log_file.close()


def _run(lab: Lab, opts: Options) -> tuple[dict[str, Any], int]:
    say = _printer()
    nodes = NetnsNodes(lab, opts.nodes) if isinstance(lab, NetnsLab) else Nodes(lab, opts.nodes)
    say(f"starting {opts.nodes} nodes")
    nodes.start()
    if opts.mode == "poc":
        return _run_poc(nodes, opts, say)
    db = RegisterDb() if opts.workload == "register" else AuditDb()
    db.setup(nodes)
    say(f"{opts.workload} database up; leader {db.leader()}")
    partitioner = (NetnsPartitioner(lab.net) if isinstance(lab, NetnsLab)
                   else TransportPartitioner())
    history = History()
    t0 = time.monotonic()
    deadline = t0 + opts.time_s
    nemesis = Nemesis(opts.seed, opts.nemesis, nodes, db, partitioner, t0)
    shared = workloads.Clients(history, db.members, list(nodes.all), opts.clients, deadline,
                               opts.seed)
    if opts.workload == "register":
        shared.keys = workloads.Keys(random.Random(opts.seed))
        target: Any = workloads.register_client
    else:
        target = workloads.audit_client
    me = erlang.self()
    erlang.spawn(_nemesis_main, nemesis, deadline, me)
    say(f"{opts.clients} clients for {opts.time_s:.0f} s; nemesis {','.join(opts.nemesis)}")
    workloads.run_clients(target, shared)
    done = erlang.receive(lambda m: m == "nemesis_done", int(HEAL_S * 1000))
    if done is erlang.TIMEOUT:
        raise RuntimeError("the nemesis did not finish its last fault")
    nemesis.heal_all()
    say("healed; waiting for every member to agree")
    whole = db.wait_whole(HEAL_S)
    if isinstance(db, RegisterDb) and shared.keys is not None:
        _final_reads(history, db, shared.keys.touched())
    final = db.final_states()
    ops = history.ops()
    history.save(opts.out / "history.jsonl")
    return _verdict(opts, ops, nemesis.timeline, final, whole, say)


def _run_poc(nodes: Nodes, opts: Options, say: Any) -> tuple[dict[str, Any], int]:
    opts.nemesis = ["partition"]  # the control has one fault: its partition
    poc_control.setup(nodes)
    say(f"POC service up; leader {poc_control.leader(nodes)}")
    history = History()
    timeline = poc_control.run_control(nodes, history, opts.seed, opts.clients, opts.time_s,
                                       say)
    ops = history.ops()
    history.save(opts.out / "history.jsonl")
    return _verdict(opts, ops, timeline, None, True, say)


def _nemesis_main(nemesis: Nemesis, deadline: float, parent: Any) -> None:
    try:
        nemesis.run(deadline)
    finally:
        erlang.send(parent, "nemesis_done")


def _final_reads(history: History, db: RegisterDb, keys: list[int]) -> None:
    """After the heal: one consistent read of every key used, into the history (a lost
    acknowledged write then shows as a non-linearizable read)."""
    ids = list(db.members().values())
    for key in keys:
        op = history.invoke(FINAL_PROCESS, "read", key, None)
        answer = ra.consistent_query(ids, kv.reader(key), 10_000)
        if answer[0] == "ok":
            history.complete(op, "ok", answer[1])
        else:
            history.complete(op, "fail", repr(answer))


def _verdict(opts: Options, ops: list[Op], timeline: list[Fault],
             final: dict[str, Any] | None, whole: bool, say: Any) -> tuple[dict[str, Any], int]:
    """Check; print and write the report. `final` is None for the POC control, whose
    nodes hold no replicated state to compare."""
    model = models.Register() if opts.workload == "register" else models.AppendList()
    t = time.monotonic()
    lin = linearizability.check(ops, model, budget_s=opts.check_budget_s)
    check_s = time.monotonic() - t
    problems: dict[str, list[str]] = {}
    if not whole:
        problems["whole"] = [f"the members did not agree within {HEAL_S:.0f} s of the heal"]
    if final is not None:
        problems["converged"] = checks.converged(final)
    if final is not None and opts.workload == "audit":
        acked = [op.value for op in ops if op.f == "append" and op.result == "ok"]
        problems["lost"] = checks.lost_acknowledged(acked, final)
        problems["duplicates"] = checks.duplicates(final)
        tried = {op.value for op in ops if op.f == "append"}
        problems["unexpected"] = checks.unexpected(final, tried)
    anomalies = {k: v for k, v in problems.items() if v}
    verdict = "invalid" if lin.verdict == "invalid" or anomalies else lin.verdict
    text = "\n".join([
        f"jepsen: workload {opts.workload}, nemesis {','.join(opts.nemesis)}, "
        f"seed {opts.seed}, {opts.time_s:.0f} s, {opts.clients} clients, "
        f"mode {opts.mode}, partitions via {opts.partition_via}",
        "nemesis timeline:", *report.timeline_lines(timeline),
        "counts:", *report.count_lines(ops, timeline),
        f"linearizability ({type(model).__name__}): {lin.verdict} "
        f"({check_s:.1f} s to check)",
        *([lin.explain()] if lin.verdict == "invalid" else []),
        *[f"{name}: " + ("ok" if not found else "; ".join(found[:5]))
          for name, found in problems.items()],
        f"verdict: {verdict.upper()}",
    ])
    summary = {"mode": opts.mode, "workload": opts.workload, "nemesis": opts.nemesis,
               "seed": opts.seed,
               "time_s": opts.time_s, "clients": opts.clients, "counts": counts(ops),
               "faults": [vars(f) for f in timeline],
               "linearizable": lin.verdict, "problems": problems, "verdict": verdict}
    written = report.write_outputs(opts.out, ops, timeline, summary, text + "\n")
    say(text)
    say("written: " + ", ".join([str(opts.out / "history.jsonl"), *written]))
    code = 0 if verdict == "valid" else 1 if verdict == "invalid" else 2
    return summary, code


def _printer() -> Any:
    t0 = time.monotonic()

    def say(text: str) -> None:
        if "\n" in text:
            print(text, flush=True)
        else:
            print(f"[{time.monotonic() - t0:6.1f} s] {text}", flush=True)
    return say
