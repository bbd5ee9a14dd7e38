"""The seeded fault simulator of the Raft core: `python -m demos.sim --seed N` replays one
seed, `--seeds 5000` is the long run (see `cli` for what a seed drives and checks).

`run_seed(seed)` runs one seed and raises `SimFailure` (whose text names the seed) on
the first violated invariant; `Sim` is the engine. Its tests are in `tests/raft/`.
"""

from __future__ import annotations

from .run import Sim, SimFailure, run_seed

__all__ = ["Sim", "SimFailure", "run_seed"]
