"""What every benchmark of `python -m demos.bench` shares: a row (`Figure`), the table and
the JSON it is printed as, and the command-line helpers for sizes and rounds.

Rules: nothing here measures; nothing here imports a benchmark module (they import it).
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

RATIO_NOTE = ("ratio = ours/pykka for times and sizes, pykka/ours for throughputs: "
              "lower is better, below 1.00 we are ahead")


@dataclass(frozen=True)
class Figure:
    """One row of the table and of the JSON. `peer` and `ratio` are None for a figure
    that has no peer (the table shows "—")."""

    name: str
    ours: float
    peer: float | None
    peer_name: str
    unit: str
    ratio: float | None
    target: str
    passed: bool | None

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["pass"] = row.pop("passed")
        return row


def number(value: float) -> str:
    """A figure's value as the table prints it: 3 significant digits, thousands grouped."""
    if value >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def verdict(passed: bool | None) -> str:
    return "-" if passed is None else ("pass" if passed else "FAIL")


def format_table(figures: Sequence[Figure]) -> str:
    """The figures as an aligned text table, "—" where a figure has no peer."""
    header = ("figure", "ours", "peer", "peer is", "ratio", "target", "pass")
    rows = [header] + [
        (f.name, f"{number(f.ours)} {f.unit}",
         "—" if f.peer is None else f"{number(f.peer)} {f.unit}", f.peer_name,
         "—" if f.ratio is None else f"{f.ratio:.2f}", f.target, verdict(f.passed))
        for f in figures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: str, figures: Sequence[Figure], rounds: int) -> None:
    doc = {"figures": [f.as_json() for f in figures], "rounds": rounds,
           "python": platform.python_version(), "ratio_note": RATIO_NOTE}
    with open(path, "w") as out:
        json.dump(doc, out, indent=2)
        out.write("\n")


def sizes_for(args: argparse.Namespace, full: Any, quick: Any) -> Any:
    """The sizes for this run: quick or full, with --rounds if given."""
    sizes = quick if args.quick else full
    return sizes if args.rounds is None else replace(sizes, rounds=args.rounds)


def positive(text: str) -> int:
    """argparse type: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
