"""Golden-file runner in the style of etcd-io/raft's datadriven tests.

A file is a sequence of blocks::

    # comments and blank lines between blocks are kept
    command args
    ----
    expected output (one line per effect, or "ok")

Run with ``REWRITE_GOLDEN=1`` to rewrite the expected output from the actual.
"""

from __future__ import annotations

import os
from pathlib import Path

from .harness import Network


def run_file(path: Path) -> tuple[str, str]:
    """Return (expected, actual) texts of one golden file."""
    expected = path.read_text()
    net = Network()
    out: list[str] = []
    lines = expected.splitlines()
    i = 0
    for _ in range(len(lines) + 1):
        if i >= len(lines):
            break
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            out.append(line)
            i += 1
            continue
        out.append(line)
        out.append("----")
        i += 1
        if i < len(lines) and lines[i] == "----":
            i += 1
            while i < len(lines) and lines[i].strip():
                i += 1
        out.append(net.run_command(line))
    actual = "\n".join(out) + "\n"
    return expected, actual


def check_file(path: Path) -> None:
    expected, actual = run_file(path)
    if os.environ.get("REWRITE_GOLDEN") == "1":
        path.write_text(actual)
        return
    if expected != actual:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), "expected", "actual"
            )
        )
        raise AssertionError(f"{path.name} differs (REWRITE_GOLDEN=1 to accept):\n{diff}")
