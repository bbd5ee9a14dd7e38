"""`python -m actors.consensus.mcp serve ...`: the same as the `erlmcp` command."""

from .cli import entry

entry()
