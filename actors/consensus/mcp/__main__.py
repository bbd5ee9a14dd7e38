"""`python -m actors.consensus.mcp serve ...`: the same as the `erlmcp` command."""

import sys

from .cli import main

sys.exit(main())
