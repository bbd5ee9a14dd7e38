"""Benchmarks: `python -m demos.bench runtime|dist|raft|mcp [--json PATH] [--rounds N] [--quick]`.

Every figure is measured beside its pykka peer in the same run, round after round, and the
median over the rounds is reported. The `ratio` column is always a cost ratio, so lower is
better: ours/pykka for times and sizes, pykka/ours for throughputs (below 1: we are ahead).
Figures that need a clean heap (RSS per idle process) run in a fresh interpreter each round.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from . import mcp_front
from ._common import RATIO_NOTE, format_table, positive, sizes_for, write_json
from .dist import DIST_FULL, DIST_QUICK, run_dist
from .raft.run import RAFT_FULL, RAFT_QUICK, run_raft
from .runtime import ERLANG_SCALE, FULL, QUICK, run_runtime


def cmd_runtime(args: argparse.Namespace) -> int:
    sizes = sizes_for(args, FULL, QUICK)
    figures = run_runtime(sizes)
    print(f"runtime figures: median of {sizes.rounds} rounds, Python {platform.python_version()}")
    print(format_table(figures))
    print(RATIO_NOTE)
    print(ERLANG_SCALE)
    if args.json:
        write_json(args.json, figures, sizes.rounds)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demos.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    runtime = commands.add_parser("runtime", help="the runtime beside pykka")
    runtime.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    runtime.add_argument("--rounds", type=positive, help="rounds per figure (default 5)")
    runtime.add_argument("--quick", action="store_true", help="small sizes, 2 rounds")
    runtime.set_defaults(run=cmd_runtime)
    dist = commands.add_parser("dist", help="distribution over ZeroMQ beside raw pyzmq")
    dist.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    dist.add_argument("--rounds", type=positive, help="rounds per figure (default 5)")
    dist.add_argument("--quick", action="store_true", help="small sizes, 2 rounds")
    dist.set_defaults(run=cmd_dist)
    raft = commands.add_parser("raft", help="actors.ra on 3 nodes beside pysyncobj")
    raft.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    raft.add_argument("--rounds", type=positive, help="rounds per figure (default 5)")
    raft.add_argument("--quick", action="store_true", help="small sizes, 1 round")
    raft.set_defaults(run=cmd_raft)
    mcp = commands.add_parser("mcp", help="the MCP front end beside the Python protocol")
    mcp_front.add_arguments(mcp)
    mcp.set_defaults(run=mcp_front.run)
    return parser


def cmd_dist(args: argparse.Namespace) -> int:
    sizes = sizes_for(args, DIST_FULL, DIST_QUICK)
    figures = run_dist(sizes)
    print(f"distribution figures: median of {sizes.rounds} rounds, real OS-process nodes "
          f"on loopback, Python {platform.python_version()}")
    print(format_table(figures))
    print("ratio = ours/peer for times, peer/ours for throughputs: lower is better")
    if args.json:
        write_json(args.json, figures, sizes.rounds)
    return 0


def cmd_raft(args: argparse.Namespace) -> int:
    sizes = sizes_for(args, RAFT_FULL, RAFT_QUICK)
    figures = run_raft(sizes, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"raft figures: median of {sizes.rounds} rounds, 3 OS-process members on loopback "
          f"with fdatasync, Python {platform.python_version()}")
    print(format_table(figures))
    print("ratio = ours/peer for times, peer/ours for throughputs: lower is better")
    if args.json:
        write_json(args.json, figures, sizes.rounds)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
