"""Registered names of one ra system's processes on a node, and storage uids."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class SystemNames:
    """The local names of system `system`'s processes (several systems may share a node)."""

    system: str

    @property
    def sup(self) -> str:
        return f"ra_{self.system}_sup"

    @property
    def wal(self) -> str:
        return f"ra_{self.system}_log_wal"

    @property
    def segment_writer(self) -> str:
        return f"ra_{self.system}_segment_writer"

    @property
    def server_sup(self) -> str:
        return f"ra_{self.system}_server_sup"


def member_uid(cluster_name: str, server_name: str) -> str:
    """A filesystem-safe, unique directory name for a member's data."""
    return _UNSAFE.sub("_", f"{cluster_name}__{server_name}")
