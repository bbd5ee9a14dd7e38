"""`python -m tests.sim`: the former name of `python -m demos.sim` (the simulator now lives
in `demos/sim/`), kept so that the old command still works."""

from __future__ import annotations

import sys

from demos.sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
