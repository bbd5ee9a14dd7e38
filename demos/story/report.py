"""How the demo tells its story and keeps its results.

`Story` prints numbered parts and steps, records checks (claims the demo makes that must
hold: a failed one makes the demo exit non-zero), facts (what was observed) and the
measured numbers, and returns all of them as one JSON-ready dict.
"""

from __future__ import annotations

import statistics
import textwrap
from dataclasses import asdict, dataclass
from typing import Any, TextIO

WIDTH = 100


@dataclass
class Check:
    id: str  # a short, stable key (for --json readers)
    name: str
    ok: bool
    detail: str


class Story:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.checks: list[Check] = []
        self.facts: dict[str, Any] = {}
        self.numbers: dict[str, dict[str, Any]] = {"poc": {}, "raft": {}}
        self._part = ""
        self._step = 0

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def part(self, number: str, title: str) -> None:
        self._part, self._step = number, 0
        heading = f"{number}. {title}" if number else title
        self._print()
        self._print(heading)
        self._print("=" * len(heading))

    def step(self, text: str) -> None:
        self._step += 1
        self._print()
        self._print(textwrap.fill(f"[{self._part}.{self._step}] {text}", WIDTH,
                                  subsequent_indent="    ", break_on_hyphens=False))

    def say(self, text: str = "", wrap: bool = True) -> None:
        """A line of the current step, indented; long ones wrapped, continued further in."""
        if not text or not wrap:
            self._print(f"    {text}" if text else "")
            return
        lead = len(text) - len(text.lstrip())
        self._print(textwrap.fill(text, WIDTH, initial_indent="    ",
                                  subsequent_indent=" " * (lead + 8),
                                  break_on_hyphens=False))

    def check(self, key: str, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(key, name, bool(ok), detail))
        self.say(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        return bool(ok)

    def fact(self, key: str, value: Any) -> None:
        self.facts[key] = value

    def measure(self, mode: str, key: str, value: Any) -> None:
        self.numbers[mode][key] = value

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def results(self, **extra: Any) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "checks": [asdict(c) for c in self.checks],
            "check": {c.id: c.ok for c in self.checks},
            "failed": [c.id for c in self.failed],
            "facts": self.facts,
            "numbers": self.numbers,
            **extra,
        }


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    """A plain-text table in Markdown's shape."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) \
            + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(line(r) for r in rows)]


def p50(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def short(term: Any, width: int = 70) -> str:
    text = repr(term)
    return text if len(text) <= width else text[:width - 3] + "..."


def entry_line(e: dict[str, Any]) -> str:
    """One audit entry, as the demo prints it."""
    return (f"#{e['execution_id']:<22} {e['tool']}({_args(e['args'])}) = {short(e['result'], 40)}"
            f"  on {e['executor'].split('@')[0]}")


def _args(args: Any) -> str:
    if isinstance(args, dict):
        return ", ".join(f"{k}={v!r}" for k, v in args.items())
    return repr(args)


def conclusion(story: Story) -> None:
    """What this run showed, from its facts (only for the parts that ran)."""
    f = story.facts
    lines = []
    if "poc_log_lost" in f:
        lines.append("POC: the leader's crash took the audit log with it, as the seed's table "
                     "says." if f["poc_log_lost"] else "POC: the log was NOT lost (unexpected).")
    if "raft_log_identical_on_survivors" in f:
        lines.append("Raft: the log survived the leader's crash, identical on the survivors."
                     if f["raft_log_identical_on_survivors"] else
                     "Raft: the log did NOT survive the crash intact.")
    if "poc_split_brain" in f:
        lost = len(f.get("poc_heal", {}).get("lost_acknowledged_writes", []))
        lines.append(("POC under a partition: two leaders, both acknowledging writes; after "
                      f"the heal global kept one and {lost} acknowledged writes left the audit "
                      "trail.") if f["poc_split_brain"] else
                     "POC under a partition: no split brain observed this time.")
    if "raft_heal" in f:
        heal = f["raft_heal"]
        kept = heal["identical"] and heal["acknowledged_present"]
        lines.append("Raft under a partition: the minority refused writes ("
                     f"{', '.join(f.get('raft_minority_answers', []))}), the majority served; "
                     + ("after the heal every node caught up and no acknowledged write was lost."
                        if kept else "after the heal the logs did NOT agree."))
    if lines:
        story.part("", "In short: what this run showed")
        for line in lines:
            story.say(line)
