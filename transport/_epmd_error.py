"""The port mapper's one exception (private; `transport.epmd` re-exports it)."""

from __future__ import annotations

__all__ = ["EpmdError"]


class EpmdError(Exception):
    """A port-mapper call failed; `reason` is "unreachable", "taken", "bad_request",
    "limit", "untrusted" (the mapper runs as another user), or, for `stop`,
    "names_registered" or "not_owner"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
