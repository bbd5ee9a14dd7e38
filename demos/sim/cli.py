"""Seeded fault simulator for the Raft core (TigerBeetle VOPR / FoundationDB style).

One seed drives everything: the cluster size, the fault knobs, the network
(loss, duplication, delay, reordering, partitions), the disk (write latency,
unsynced writes lost at a crash, a torn last write), crashes and restarts
(fast ones too, to test that votes are durable), operator actions (leadership
transfers, single-server membership changes), snapshots with log compaction
and chunked InstallSnapshot, and the clients' proposals and reads. Checkers
(`demos/sim/checks.py`) run after every step:

* election safety -- at most one leader per term;
* log matching -- two entries with the same (index, term) hold the same
  command and follow the same term (which, by induction, makes the prefixes
  equal);
* leader completeness -- a leader's log holds every committed entry of an
  earlier term, from the moment it takes office;
* state-machine safety -- no two members apply different entries at one
  index, and a restored snapshot holds exactly the committed prefix;
* durability -- an acknowledged command is committed at the index it was
  acknowledged at (and, at the end, is in every member's log);
* linearizable reads -- a ReadReady index covers every write acknowledged
  before the read was issued.

After the chaos phase the network heals, every member restarts, the operator
re-adds removed members, and the cluster must converge (one leader, the full
configuration, equal logs, equal applied states, every client request
answered) within a bound.

This module is the command line; the engine is `demos/sim/run.py`, the
faults, operator and clients `demos/sim/drivers.py`, the simulated disks
and members `demos/sim/world.py`, the members' I/O `demos/sim/raft_io.py`.
Its tests are in `tests/raft/test_sim.py`.

    python -m demos.sim --seed 17          # replay one seed (--trace: every step)
    python -m demos.sim --seeds 5000       # the long run
"""

from __future__ import annotations

import argparse
import sys
import time

from .run import Sim, SimFailure, run_seed

__all__ = ["Sim", "SimFailure", "main", "run_seed"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demos.sim", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, help="replay one seed")
    ap.add_argument("--seeds", type=int, default=100, help="run seeds start..start+N-1")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--trace", action="store_true", help="with --seed: print every step")
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    t0 = time.perf_counter()
    steps = 0
    failures = 0
    for seed in seeds:
        try:
            digest, n = run_seed(seed, echo=args.trace and args.seed is not None)
        except SimFailure as e:
            failures += 1
            print(e, file=sys.stderr)
            continue
        steps += n
        if args.seed is not None:
            print(f"seed {seed}: ok, {n} steps, knobs {Sim(seed).knobs}, trace {digest[:16]}")
    took = time.perf_counter() - t0
    print(f"{len(seeds)} seeds, {failures} failed, {steps} steps in {took:.3f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
