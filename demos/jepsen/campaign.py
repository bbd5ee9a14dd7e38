"""python -m demos.jepsen.campaign --minutes 30 [--start-seed 100] [--time 60] [--out DIR]

The long run: `python -m demos.jepsen` again and again, one seed after another, each run
its own OS process, until `minutes` have passed. Runs alternate the register workload
(every nemesis, membership changes included) and the audit workload, and partitions
alternate between the transport's API and network namespaces (the latter only as root).
Prints one line per run and the totals: operations by result, faults by kind, anomalies.
Exit status 0 only if every run was valid. A failed run is replayed with the command its
line prints (same seed, same options).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REGISTER_NEMESIS = "kill,pause,partition,member"
AUDIT_NEMESIS = "kill,pause,partition"


def plan(n: int, seed: int, netns: bool) -> list[str]:
    """The arguments of run number `n` (seed `seed`)."""
    workload, nemesis = (("register", REGISTER_NEMESIS) if n % 2 == 0 else
                         ("audit", AUDIT_NEMESIS))
    via = "netns" if netns and n % 4 in (0, 1) else "transport"
    return ["--workload", workload, "--nemesis", nemesis, "--seed", str(seed),
            "--partition-via", via]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demos.jepsen.campaign",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--start-seed", type=int, default=100)
    parser.add_argument("--time", type=float, default=60.0, help="seconds of load per run")
    parser.add_argument("--out", type=Path, default=Path("jepsen-out") / "campaign")
    args = parser.parse_args(argv)
    netns = sys.platform == "linux" and os.geteuid() == 0
    stop_at = time.monotonic() + args.minutes * 60
    totals: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    failed: list[str] = []
    n = 0
    while time.monotonic() < stop_at:
        seed = args.start_seed + n
        run_args = [*plan(n, seed, netns), "--time", str(args.time)]
        out = args.out / f"run-{n:03d}-seed-{seed}"
        t0 = time.monotonic()
        code = _run(run_args, out, args.time)
        summary = _summary(out)
        totals.update(summary.get("counts", {}))
        faults.update(f["kind"] for f in summary.get("faults", []))
        verdict = summary.get("verdict", f"no summary (exit {code})")
        command = "python -m demos.jepsen " + " ".join(run_args)
        print(f"run {n:3d}  {time.monotonic() - t0:5.0f} s  {verdict:<8}  "
              f"{_counts(summary)}  {command}", flush=True)
        if code != 0 or verdict != "valid":
            failed.append(f"{command}  -> {verdict} (see {out})")
        n += 1
    print(f"\n{n} runs in {args.minutes:.0f} min: operations ok {totals['ok']}, "
          f"fail {totals['fail']}, info {totals['info']}; faults "
          + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    print("anomalies: " + ("none" if not failed else f"{len(failed)} runs"))
    for line in failed:
        print("  " + line)
    (args.out / "campaign.json").write_text(json.dumps(
        {"runs": n, "operations": totals, "faults": faults, "failed": failed}, indent=1))
    return 0 if not failed else 1


def _run(run_args: list[str], out: Path, load_s: float) -> int:
    command = [sys.executable, "-m", "demos.jepsen", *run_args, "--out", str(out)]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "output.txt", "w") as log:  # the run's own report, kept whatever happens
        try:
            return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=load_s + 600).returncode
        except subprocess.TimeoutExpired:
            return -1


def _summary(out: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((out / "summary.json").read_text()))
    except (OSError, ValueError):
        return {}


def _counts(summary: dict[str, Any]) -> str:
    c = summary.get("counts", {})
    return f"ok {c.get('ok', 0):>6} fail {c.get('fail', 0):>5} info {c.get('info', 0):>4}"


if __name__ == "__main__":
    sys.exit(main())
