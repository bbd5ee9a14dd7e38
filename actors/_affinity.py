"""Binding a process's threads to CPUs (Linux), as `erl +sbt` binds Erlang's schedulers.

Rules of this module:
- `parse_cpus("2")`, `parse_cpus("0,2-3")`: a set of logical CPU numbers; ValueError names
  what is wrong, including a CPU this process may not run on (`os.sched_getaffinity`).
- `bind_threads(cpus, pid)`: every thread that process `pid` (default: this one) has now
  may run only on `cpus`; threads it starts later inherit that from their creator. ZeroMQ's
  I/O threads are threads of the process too, so a node bound before it starts keeps its
  Python threads and ZeroMQ's on the same CPUs. OSError if the system refuses; a thread
  that ends meanwhile is skipped.
- Nothing binds unless asked (`python -m actors.node --cpu`): several nodes on one host
  bound badly would queue on one CPU while another idles.
"""

from __future__ import annotations

import os

__all__ = ["bind_threads", "parse_cpus"]


def parse_cpus(text: str) -> set[int]:
    """CPUs written as Linux lists them (`0`, `0,2`, `1-3`)."""
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("binding to CPUs needs Linux (os.sched_setaffinity)")
    cpus: set[int] = set()
    for item in text.split(","):
        low, dash, high = item.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise ValueError(f"{text!r} is not a CPU list such as 0 or 0,2-3") from None
        if first < 0 or last < first:
            raise ValueError(f"{text!r} is not a CPU list such as 0 or 0,2-3")
        cpus.update(range(first, last + 1))
    allowed = os.sched_getaffinity(0)
    if not cpus <= allowed:
        raise ValueError(f"CPU {sorted(cpus - allowed)} is not one this process may run on "
                         f"({sorted(allowed)})")
    return cpus


def bind_threads(cpus: set[int], pid: int | None = None) -> None:
    """Let every current thread of process `pid` (default: ours) run only on `cpus`."""
    pid = os.getpid() if pid is None else pid
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(task), cpus)
        except ProcessLookupError:
            continue  # the thread ended meanwhile
