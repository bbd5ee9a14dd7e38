"""`python -m demos.run_demo`: erlmcp's consensus service, POC mode against Raft mode, on
real nodes (one OS process each), told as a numbered story.

    python -m demos.run_demo                      # everything, both modes
    python -m demos.run_demo --mode raft --scenario partition,numbers
    python -m demos.run_demo --json               # the story on stderr, results on stdout

Parts: 1 POC `failover` (erlmcp's run_demo, step for step), 2 Raft `failover`,
3 `partition` (5 nodes split 3 | 2), 4 `tools` (crashing and hanging tools under
supervision), 5 `numbers` (the seed's performance table, measured). It needs no set-up:
a private port mapper on an ephemeral port, a temporary data directory and the peer
nodes are all made here and removed at the end, on Ctrl-C too. Exit status: 0 when every
check holds, 1 when one fails (each is printed), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import traceback
from typing import Any

from .cluster import DemoLab
from .numbers import measure, print_tables
from .partition import partition
from .report import Story, conclusion
from .scenarios import failover, tools

SCENARIOS = ("failover", "partition", "tools", "numbers")
MODES = ("poc", "raft")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m demos.run_demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["poc", "raft", "both"], default="both")
    p.add_argument("--scenario", action="append", default=[],
                   help=f"one or more of {', '.join(SCENARIOS)} (comma-separated or repeated; "
                        "default: all)")
    p.add_argument("--json", action="store_true", help="results as JSON on stdout")
    p.add_argument("--verbose", action="store_true", help="the nodes' warnings on stderr")
    args = p.parse_args(argv)
    chosen = [s.strip() for arg in args.scenario for s in arg.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    args.scenarios = [s for s in SCENARIOS if s in chosen] if chosen else list(SCENARIOS)
    args.modes = list(MODES) if args.mode == "both" else [args.mode]
    return args


def run(lab: DemoLab, story: Story, modes: list[str], scenarios: list[str]) -> None:
    if "failover" in scenarios:
        for mode in modes:
            failover(lab, story, mode)
    if "partition" in scenarios:
        story.part("3", "Partition: 5 nodes split into 3 and 2, in each mode")
        for mode in modes:
            partition(lab, story, mode)
    if "tools" in scenarios:
        story.part("4", "Crashing tools: supervised runners, restart intensity, escalation")
        for mode in modes:
            tools(lab, story, mode)
    if "numbers" in scenarios:
        story.part("5", "Numbers: the seed's Performance Characteristics, measured now")
        for mode in sorted(modes, reverse=True):  # raft first, then stop it: POC runs alone
            measure(lab, story, mode)
            if mode == "raft" and len(modes) > 1:
                lab.cluster(mode).retire()
        print_tables(story, modes)


_INTERRUPTED: list[int] = []


def _interrupt(signum: int, _frame: Any) -> None:
    """SIGINT and SIGTERM: remember it (an interrupt that lands inside the runtime can come
    out as another exception), then raise KeyboardInterrupt."""
    _INTERRUPTED.append(signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot print "✓" gets "?"
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL)
    story = Story(sys.stderr if args.json else sys.stdout)
    lab = DemoLab("WARNING" if args.verbose else "CRITICAL")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    t0 = time.monotonic()
    error: str | None = None
    interrupted = False
    try:
        lab.open()
        story.say(f"erlmcp consensus, POC (global) against Raft (ra): modes {args.modes}, "
                  f"scenarios {args.scenarios}")
        story.say(f"this demo's node {lab.node}; a private port mapper on 127.0.0.1:"
                  f"{lab.port}; data under {lab.tmp}")
        run(lab, story, args.modes, args.scenarios)
    except KeyboardInterrupt:
        interrupted = True
    except Exception:
        if _INTERRUPTED:
            interrupted = True
        else:
            error = traceback.format_exc()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        lab.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    wall = round(time.monotonic() - t0, 1)
    results = story.results(wall_s=wall, modes=args.modes, scenarios=args.scenarios,
                            error=error, interrupted=interrupted)
    ok = results["ok"] and error is None and not interrupted
    results["ok"] = ok
    _summary(story, results)
    if args.json:
        print(json.dumps(results, default=str, indent=1))
    return 130 if interrupted else 0 if ok else 1


def _summary(story: Story, results: dict[str, Any]) -> None:
    conclusion(story)
    story.say()
    if results["interrupted"]:
        story.say("interrupted: the nodes were stopped and the data directory removed")
    if results["error"]:
        story.say("the demo stopped on an error:")
        for line in results["error"].rstrip().splitlines():
            story.say(f"  {line}")
    failed = [c for c in results["checks"] if not c["ok"]]
    for c in failed:
        story.say(f"FAILED {c['id']}: {c['name']}: {c['detail']}")
    story.say(f"{len(results['checks'])} checks, "
              + (f"{len(failed)} FAILED" if failed else "all hold")
              + f"; {results['wall_s']} s")


if __name__ == "__main__":
    raise SystemExit(main())
