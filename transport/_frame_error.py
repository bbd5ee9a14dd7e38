"""`FrameError`, on its own so that `codec` and `handshake` share it without an import cycle.

Private: import it from `transport.codec`, its public home (hence its `__module__`).
"""

from __future__ import annotations


class FrameError(Exception):
    """A frame that must be dropped. `.reason` is a short str such as "too_short", "bad_magic",
    "bad_version", "bad_kind", "too_big", "bad_tag", "replay", "seq_gap", "bad_payload"
    ("bad_seq" only from `open_reject`); `.detail` is a human-readable note for logs (may be
    empty)."""

    __module__ = "transport.codec"  # tracebacks and pickles name its public home

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
