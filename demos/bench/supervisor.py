"""Supervisor scaling: start and stop N children under one supervisor, per-child cost.

`python -m demos.bench.supervisor [--sizes 1000 100000]` prints, for each N, the cost per
child of N `start_child` calls followed by N `terminate_child` calls (by id) on one
one_for_one supervisor, as OTP's supervisor_SUITE:scale_start_stop_many_children does.
Linear scaling means the per-child cost at 100k stays near the cost at 1k.
`run(sizes) -> dict` returns the same figures for `python -m demos.bench runtime`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from actors import Node, erlang, gen_server
from supervision import supervisor

DEFAULT_SIZES = (1_000, 100_000)
WARMUP = 100


class _Child(gen_server.GenServer):
    """An idle worker, as OTP's supervisor_1."""

    def init(self, args: Any) -> Any:
        return ("ok", None)


def _start_child() -> Any:
    return gen_server.start_link(_Child, None)


class _Sup(supervisor.Supervisor):
    def init(self, args: Any) -> Any:
        return ("ok", ({"strategy": "one_for_one", "intensity": 2, "period": 3600}, []))


def measure(n: int) -> dict[str, float]:
    """Start then stop `n` children on a fresh node; seconds and microseconds per child."""
    if type(n) is not int or n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
    node = Node(f"bench_sup_{n}@localhost")
    try:
        with node.bound():
            erlang.process_flag("trap_exit", True)
            ok, sup = supervisor.start_link(_Sup, None)
            assert ok == "ok", sup
            for i in range(WARMUP):  # the node's worker threads exist before the clock runs
                supervisor.start_child(sup, {"id": ("warmup", i), "start": (_start_child, [])})
            for i in range(WARMUP):
                supervisor.terminate_child(sup, ("warmup", i))
                supervisor.delete_child(sup, ("warmup", i))
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(n):
                result = supervisor.start_child(sup, {"id": i, "start": (_start_child, [])})
                assert result[0] == "ok", result
            t1 = time.perf_counter()
            for i in range(n):
                assert supervisor.terminate_child(sup, i) == "ok"
            t2, c2 = time.perf_counter(), time.process_time()
            gen_server.stop(sup, "shutdown")
    finally:
        node.stop()
    return {"n": n, "start_s": t1 - t0, "stop_s": t2 - t1,
            "start_us_per_child": (t1 - t0) / n * 1e6,
            "stop_us_per_child": (t2 - t1) / n * 1e6,
            "us_per_child": (t2 - t0) / n * 1e6,
            "cpu_us_per_child": (c2 - c0) / n * 1e6}


def run(sizes: Sequence[int] = DEFAULT_SIZES) -> dict[str, Any]:
    """Measure each size. `scaling` is the largest size's per-child wall time over the
    smallest's; `cpu_scaling` the same for the process's CPU time (all threads), which a
    busy shared machine disturbs less."""
    rows = [measure(n) for n in sizes]
    small, large = rows[0], rows[-1]
    return {"sizes": rows, "scaling": large["us_per_child"] / small["us_per_child"],
            "cpu_scaling": large["cpu_us_per_child"] / small["cpu_us_per_child"]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run(args.sizes)
    for row in result["sizes"]:
        print(f"{row['n']:>8} children: start {row['start_us_per_child']:7.1f} us/child, "
              f"stop {row['stop_us_per_child']:7.1f} us/child, "
              f"total {row['start_s'] + row['stop_s']:7.2f} s, "
              f"cpu {row['cpu_us_per_child']:7.1f} us/child")
    print(f"per-child cost at {result['sizes'][-1]['n']} / at {result['sizes'][0]['n']}: "
          f"{result['scaling']:.2f}x wall, {result['cpu_scaling']:.2f}x cpu")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
