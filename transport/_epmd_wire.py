"""The port mapper's line grammar, shared by the daemon (`_epmd_server`) and the client.

Rules of this module:
- Private and a leaf (imports nothing from this package). `transport.epmd` re-exports
  these names, and its docstring is the protocol's specification.
- Pure: no I/O, no state.
"""

from __future__ import annotations

MAX_LINE = 1024  # bytes in one request line, not counting its "\n"
MAX_NAME = 255
MAX_ADDRESS = 255


def valid_name(name: object) -> bool:
    """True for a node name the protocol accepts ("name@host", see `transport.epmd`'s rules)."""
    if not isinstance(name, str) or not _valid_token(name, MAX_NAME) or "=" in name:
        return False
    local, at, host = name.partition("@")
    return at == "@" and local != "" and host != "" and "@" not in host


def valid_address(address: object) -> bool:
    """True for a listen address the protocol accepts ("tcp://...", see `transport.epmd`)."""
    return (
        isinstance(address, str)
        and _valid_token(address, MAX_ADDRESS)
        and address.startswith("tcp://")
        and len(address) > len("tcp://")
    )


def _valid_token(text: str, limit: int) -> bool:
    return 0 < len(text) <= limit and text.isprintable() and " " not in text
