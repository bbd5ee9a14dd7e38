"""The reports of `python -m demos.bench.raft.trace`: stamps in, text out.

`timeline` turns the stamps of every node into, per label, its offset from the start of
each command's window; `path_report` gives the median of each step of a path (`CMD_PATH`,
`LEADER_WAL`, `CQ_PATH`: pairs of labels), and `milestone_report` the median offset of
every label. `profile_report` and `hop_report` format yappi's figures and the bare pings.
"""

from __future__ import annotations

import statistics
from typing import Any

from actors import erlang


def _relabel(node: str, label: str, leader_node: str, client_node: str, fast: Any) -> str:
    """A stamp's label, named by role: "L" the leader, "C" the client, "F1" the follower
    whose answer the leader got first (`fast`), "F2" the other."""
    def role_of(n: str) -> str:
        if n == leader_node:
            return "L"
        if n == client_node:
            return "C"
        return "F1" if n == fast else "F2"

    if label.startswith("D."):
        if ">" in label:
            label = f"{role_of(node)}.out>{role_of(label.split('>', 1)[1])}"
        else:
            label = f"{role_of(node)}.in<{role_of(label.split('<', 1)[1])}"
    elif label.startswith("W."):
        label = ("L" if node == leader_node else ("F1" if node == fast else "F2")) + label[1:]
    elif label.startswith("F."):
        label = ("F1" if node == fast else "F2") + label[1:]
    if ">" in label and not label.startswith(("L.out", "C.out", "F1.out", "F2.out")):
        label, dest = label.split(">", 1)  # a send, with its destination
        label += ">F1" if dest == fast else (">L" if dest == leader_node else ">F2")
    return label


def timeline(windows: list[tuple[int, int]], events: list[tuple[int, str, str]],
             leader_node: str) -> tuple[dict[str, list[float]], int]:
    """label -> offsets (us) from the window's start; the first stamp of a label in each
    window, with W.* and follower labels told apart by node ("F1" = the first follower
    whose AppendResult the leader got)."""
    events.sort()
    client_node = erlang.node()
    offsets: dict[str, list[float]] = {"C.start": [], "C.returned": []}
    used = 0
    for t0, t1 in windows:
        inside = [e for e in events if t0 <= e[0] <= t1]
        first_ar = next((e for e in inside if e[2] in ("F.ar_send", "F.hbr_send")), None)
        fast = first_ar[1] if first_ar else None
        seen: set[str] = set()
        for key in offsets:
            offsets[key].append(float("nan"))  # a placeholder, replaced if stamped
        offsets["C.start"][-1] = 0.0
        for stamp, node, label in inside:
            label = _relabel(node, label, leader_node, client_node, fast)
            if label not in seen:
                seen.add(label)
                if label not in offsets:
                    offsets[label] = [float("nan")] * (used + 1)
                offsets[label][-1] = (stamp - t0) / 1000
        offsets["C.returned"][-1] = (t1 - t0) / 1000
        used += 1
    return offsets, used


# (step, from label, to label): the critical paths, in order
CMD_PATH = [
    ("ra API: call prepared", "C.start", "C.call_sent"),
    ("hop 1a: client call -> its frame flushed", "C.call_sent", "C.out>L"),
    ("hop 1b: frame flushed -> leader's I/O thread has it", "C.out>L", "L.in<C"),
    ("hop 1c: leader I/O thread -> member handles it", "L.in<C", "L.cmd_in"),
    ("leader: propose until AppendEntries sent to F1", "L.cmd_in", "L.ae_send>F1"),
    ("hop 2a: AppendEntries -> its frame flushed", "L.ae_send>F1", "L.out>F1"),
    ("hop 2b: frame flushed -> follower I/O thread has it", "L.out>F1", "F1.in<L"),
    ("hop 2c: follower I/O thread -> member handles it", "F1.in<L", "F1.ae_in"),
    ("follower: step until entries sent to WAL", "F1.ae_in", "F1.persist"),
    ("follower: member -> WAL writer hand-off", "F1.persist", "F1.append_in"),
    ("follower: WAL waits for its $flush", "F1.append_in", "F1.flush_in"),
    ("follower: WAL write until fdatasync", "F1.flush_in", "F1.fsync_start"),
    ("follower: fdatasync", "F1.fsync_start", "F1.fsync_end"),
    ("follower: WAL -> member hand-off ($ra_written)", "F1.fsync_end", "F1.written_in"),
    ("follower: step until AppendResult sent", "F1.written_in", "F1.ar_send"),
    ("hop 3a: AppendResult -> its frame flushed", "F1.ar_send", "F1.out>L"),
    ("hop 3b: frame flushed -> leader I/O thread has it", "F1.out>L", "L.in<F1"),
    ("hop 3c: leader I/O thread -> member handles it", "L.in<F1", "L.ar_in"),
    ("leader: commit, until the commit AppendEntries sent", "L.ar_in", "L.commit_ae_send"),
    ("leader: ... then apply and reply", "L.commit_ae_send", "L.reply"),
    ("hop 4a: reply -> its frame flushed", "L.reply", "L.out>C"),
    ("hop 4b: frame flushed -> client I/O thread has it", "L.out>C", "C.in<L"),
    ("hop 4c: client I/O thread -> call returns", "C.in<L", "C.reply_in"),
    ("ra API: after the reply", "C.reply_in", "C.returned"),
]
LEADER_WAL = [
    ("leader: AppendEntries sent -> WAL append received", "L.ae_send", "L.append_in"),
    ("leader: WAL append -> $flush", "L.append_in", "L.flush_in"),
    ("leader: fdatasync", "L.fsync_start", "L.fsync_end"),
    ("leader: call start -> own entry written (member told)", "C.start", "L.written_in"),
    ("leader: call start -> first AppendResult in", "C.start", "L.ar_in"),
]
CQ_PATH = [
    ("ra API: call prepared", "C.start", "C.call_sent"),
    ("hop 1a: client call -> its frame flushed", "C.call_sent", "C.out>L"),
    ("hop 1b: frame flushed -> leader's I/O thread has it", "C.out>L", "L.in<C"),
    ("hop 1c: leader I/O thread -> member handles it", "L.in<C", "L.cq_in"),
    ("leader: ReadIndex until Heartbeat sent to F1", "L.cq_in", "L.hb_send>F1"),
    ("hop 2a: Heartbeat -> its frame flushed", "L.hb_send>F1", "L.out>F1"),
    ("hop 2b: frame flushed -> follower I/O thread has it", "L.out>F1", "F1.in<L"),
    ("hop 2c: follower I/O thread -> member handles it", "F1.in<L", "F1.hb_in"),
    ("follower: step until HeartbeatResult sent", "F1.hb_in", "F1.hbr_send"),
    ("hop 3a: HeartbeatResult -> its frame flushed", "F1.hbr_send", "F1.out>L"),
    ("hop 3b: frame flushed -> leader I/O thread has it", "F1.out>L", "L.in<F1"),
    ("hop 3c: leader I/O thread -> member handles it", "L.in<F1", "L.hbr_in"),
    ("leader: quorum, until the read is ready", "L.hbr_in", "L.read_ready"),
    ("leader: query and reply -> its frame flushed", "L.read_ready", "L.out>C"),
    ("hop 4b: frame flushed -> client I/O thread has it", "L.out>C", "C.in<L"),
    ("hop 4c: client I/O thread -> call returns", "C.in<L", "C.reply_in"),
    ("ra API: after the reply", "C.reply_in", "C.returned"),
]


def path_report(title: str, offsets: dict[str, list[float]], path: Any) -> str:
    """Median of each step, taken over the commands that have both of its stamps."""
    lines = [f"{title}: median of each step over the commands (us)"]
    total = 0.0
    for text, a, b in path:
        pairs = [y - x for x, y in zip(offsets.get(a, []), offsets.get(b, []), strict=False)
                 if x == x and y == y]  # both stamped (NaN != NaN)
        if not pairs:
            lines.append(f"  {text:54} {'?':>8}")
            continue
        step = statistics.median(pairs)
        total += step
        lines.append(f"  {text:54} {step:8.1f}")
    lines.append(f"  {'sum of the step medians':54} {total:8.1f}")
    lines.append(f"  {'median end to end':54} {statistics.median(offsets['C.returned']):8.1f}")
    return "\n".join(lines)


def milestone_report(title: str, offsets: dict[str, list[float]], used: int) -> str:
    """Every label, by its median offset from the client's call, with the step from the
    one before and the number of commands that stamped it."""
    present = {k: [x for x in v if x == x] for k, v in offsets.items()}  # drop NaN
    rows = sorted(((statistics.median(v), k, len(v)) for k, v in present.items() if v))
    lines = [f"{title}: median over {used} commands (us since the client's call)",
             f"  {'milestone':28} {'at':>9} {'step':>9}  seen"]
    prev = 0.0
    for at, label, count in rows:
        lines.append(f"  {label:28} {at:9.1f} {at - prev:9.1f}  {count}")
        prev = at
    return "\n".join(lines)


def profile_report(title: str, funcs: list[Any], threads: list[Any], n: int,
                   top: int = 30) -> str:
    lines = [f"{title}: yappi CPU time per command (us), over {n} commands"]
    total = sum(t[1] for t in threads)
    lines.append(f"  all threads: {total / n * 1e6:.1f} us/command")
    for name, cpu in sorted(threads, key=lambda t: -t[1])[:6]:
        lines.append(f"    thread {name:28} {cpu / n * 1e6:8.1f}")
    for key, title2 in ((4, "by self time"), (3, "by inclusive time")):
        lines.append(f"  {title2}:")
        lines.append(f"  {'self':>8} {'incl':>8} {'calls/cmd':>9}  function")
        for name, where, calls, ttot, tsub in sorted(funcs, key=lambda f: -f[key])[:top]:
            lines.append(f"  {tsub / n * 1e6:8.1f} {ttot / n * 1e6:8.1f} {calls / n:9.2f}  "
                         f"{name} ({where})")
    return "\n".join(lines)


def hop_report(title: str, stamps: list[tuple[int, int, int, int]]) -> str:
    there = statistics.median(s[1] - s[0] for s in stamps) / 1000
    back = statistics.median(s[3] - s[2] for s in stamps) / 1000
    rtt = statistics.median(s[3] - s[0] for s in stamps) / 1000
    return (f"  {title:40} there {there:7.1f}  back {back:7.1f}  round trip {rtt:7.1f} us"
            f"  ({len(stamps)} pings)")

