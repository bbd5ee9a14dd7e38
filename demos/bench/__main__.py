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
from collections.abc import Callable, Sequence
from typing import Any

from . import mcp_front
from ._common import RATIO_NOTE, Figure, format_table, positive, sizes_for, write_json
from .dist import DIST_FULL, DIST_QUICK, run_dist
from .raft.run import RAFT_FULL, RAFT_QUICK, run_raft
from .runtime import ERLANG_SCALE, FULL, QUICK, run_runtime

_PEER_RATIO_NOTE = "ratio = ours/peer for times, peer/ours for throughputs: lower is better"


def _report(args: argparse.Namespace, header: str, figures: list[Figure], rounds: int,
            *notes: str) -> int:
    """Print a run's table under `header`, then the notes; write JSON if asked."""
    print(header)
    print(format_table(figures))
    for note in notes:
        print(note)
    if args.json:
        write_json(args.json, figures, rounds)
    return 0


def cmd_runtime(args: argparse.Namespace) -> int:
    sizes = sizes_for(args, FULL, QUICK)
    return _report(args, f"runtime figures: median of {sizes.rounds} rounds, Python "
                   f"{platform.python_version()}", run_runtime(sizes), sizes.rounds,
                   RATIO_NOTE, ERLANG_SCALE)


def cmd_dist(args: argparse.Namespace) -> int:
    sizes = sizes_for(args, DIST_FULL, DIST_QUICK)
    return _report(args, f"distribution figures: median of {sizes.rounds} rounds, real "
                   f"OS-process nodes on loopback, Python {platform.python_version()}",
                   run_dist(sizes), sizes.rounds, _PEER_RATIO_NOTE)


def cmd_raft(args: argparse.Namespace) -> int:
    sizes = sizes_for(args, RAFT_FULL, RAFT_QUICK)
    figures = run_raft(sizes, log=lambda line: print(line, file=sys.stderr, flush=True))
    return _report(args, f"raft figures: median of {sizes.rounds} rounds, 3 OS-process "
                   f"members on loopback with fdatasync, Python {platform.python_version()}",
                   figures, sizes.rounds, _PEER_RATIO_NOTE)


def _figures_command(commands: Any, name: str, help_: str, quick: str,
                     run: Callable[[argparse.Namespace], int]) -> None:
    """A subcommand that measures figures: --json, --rounds, --quick."""
    command = commands.add_parser(name, help=help_)
    command.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    command.add_argument("--rounds", type=positive, help="rounds per figure (default 5)")
    command.add_argument("--quick", action="store_true", help=quick)
    command.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demos.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _figures_command(commands, "runtime", "the runtime beside pykka", "small sizes, 2 rounds",
                     cmd_runtime)
    _figures_command(commands, "dist", "distribution over ZeroMQ beside raw pyzmq",
                     "small sizes, 2 rounds", cmd_dist)
    _figures_command(commands, "raft", "actors.ra on 3 nodes beside pysyncobj",
                     "small sizes, 1 round", cmd_raft)
    mcp = commands.add_parser("mcp", help="the MCP front end beside the Python protocol")
    mcp_front.add_arguments(mcp)
    mcp.set_defaults(run=mcp_front.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
