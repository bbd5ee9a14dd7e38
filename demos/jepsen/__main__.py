"""python -m demos.jepsen --workload register|audit --nemesis kill,pause,partition
                        --time 60 --seed N [--clients 10] [--out DIR]

Runs concurrent clients against a 5-node cluster of real node processes while the
nemesis injects faults, heals everything, checks the history, prints the nemesis
timeline, the counts and the verdict, and writes the history, a summary and a latency
plot to DIR. Exit status: 0 valid, 1 an anomaly was found, 2 undecided.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .nemesis import KINDS
from .run import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demos.jepsen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["register", "audit"], default="register")
    parser.add_argument("--nemesis", default="kill,pause,partition",
                        help=f"comma-separated, from {','.join(KINDS)}; 'none' for no faults")
    parser.add_argument("--time", type=float, default=60.0, help="seconds of client load")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default jepsen-out/<workload>-<seed>)")
    parser.add_argument("--partition-via", choices=["transport", "netns"], default="transport")
    parser.add_argument("--mode", choices=["raft", "poc"], default="raft",
                        help="poc: the control experiment (register workload, one partition; "
                        "the checker must find the split-brain)")
    parser.add_argument("--check-budget", type=float, default=60.0,
                        help="seconds the checker may spend on one key before 'unknown'")
    parser.add_argument("--node-log-level", default="CRITICAL",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                        help="the nodes' log level (their logs go to standard error)")
    args = parser.parse_args(argv)
    kinds = [] if args.nemesis == "none" else [k for k in args.nemesis.split(",") if k]
    out = args.out or Path("jepsen-out") / f"{args.workload}-{args.seed}"
    opts = Options(workload=args.workload, nemesis=kinds, time_s=args.time, seed=args.seed,
                   clients=args.clients, out=out, partition_via=args.partition_via,
                   check_budget_s=args.check_budget, mode=args.mode,
                   node_log_level=args.node_log_level)
    try:
        _, code = run(opts)
    except ValueError as exc:  # options that do not go together
        parser.error(str(exc))
    return code


if __name__ == "__main__":
    sys.exit(main())
