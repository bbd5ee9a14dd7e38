"""What a run prints and writes: the nemesis timeline, the counts, the verdicts, and the
latency plot (operations' latency over time, faults shaded; needs matplotlib, which
`pip install -e '.[jepsen]'` brings; without it the plot is skipped with a message)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .history import Op, counts
from .nemesis import Fault

FAULT_COLOURS = {"kill": "tab:red", "pause": "tab:orange", "partition": "tab:blue",
                 "member": "tab:green"}
RESULT_COLOURS = {"ok": "tab:green", "fail": "tab:gray", "info": "tab:red"}


def timeline_lines(timeline: list[Fault]) -> list[str]:
    lines = []
    for f in timeline:
        end = f"{f.end_s:6.1f}" if f.end_s is not None else "   ..."
        lines.append(f"  {f.start_s:6.1f} s - {end} s  {f.kind:<9}  {f.what}")
    return lines or ["  (no faults)"]


def count_lines(ops: list[Op], timeline: list[Fault]) -> list[str]:
    results = counts(ops)
    by_f: dict[str, Counter[str]] = {}
    for op in ops:
        by_f.setdefault(op.f, Counter())[op.result] += 1
    lines = [f"  operations: {len(ops)} (ok {results['ok']}, fail {results['fail']}, "
             f"info {results['info']})"]
    for f, c in sorted(by_f.items()):
        lines.append(f"    {f:<7} ok {c['ok']:>6}  fail {c['fail']:>6}  info {c['info']:>6}")
    faults = Counter(f.kind for f in timeline)
    lines.append("  faults: " + (", ".join(f"{k} {n}" for k, n in sorted(faults.items()))
                                 or "none"))
    return lines


def write_outputs(out: Path, ops: list[Op], timeline: list[Fault],
                  summary: dict[str, Any], text: str) -> list[str]:
    """timeline.json, summary.json, summary.txt and latency.png in `out`; the paths
    written (the history itself is saved by the caller)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "timeline.json").write_text(json.dumps([vars(f) for f in timeline], indent=1))
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=repr))
    (out / "summary.txt").write_text(text)
    written = [str(out / n) for n in ("timeline.json", "summary.json", "summary.txt")]
    plot = plot_latency(out / "latency.png", ops, timeline)
    if plot:
        written.append(plot)
    return written


def plot_latency(path: Path, ops: list[Op], timeline: list[Fault]) -> str | None:
    """Each operation's latency (ms, log scale) at its invoke time, coloured by result; info
    operations (no completion) are drawn at the top. Fault intervals are shaded."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no plot: matplotlib is not installed; pip install -e '.[jepsen]')")
        return None
    fig, ax = plt.subplots(figsize=(12, 5))
    top = max([_latency_ms(op) or 0.0 for op in ops] + [1.0]) * 1.5
    for result, colour in RESULT_COLOURS.items():
        xs = [op.invoke_ns / 1e9 for op in ops if op.result == result]
        ys = [_latency_ms(op) or top for op in ops if op.result == result]
        ax.scatter(xs, ys, s=3, c=colour, label=result, alpha=0.6, linewidths=0)
    seen: set[str] = set()
    for f in timeline:
        end = f.end_s if f.end_s is not None else f.start_s
        ax.axvspan(f.start_s, end, color=FAULT_COLOURS.get(f.kind, "tab:purple"), alpha=0.15,
                   label=None if f.kind in seen else f.kind)
        seen.add(f.kind)
    ax.set_yscale("log")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _latency_ms(op: Op) -> float | None:
    return None if op.complete_ns is None else (op.complete_ns - op.invoke_ns) / 1e6
