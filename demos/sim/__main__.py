"""`python -m demos.sim`: the seeded fault simulator's command line (`demos.sim.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
