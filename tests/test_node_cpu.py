"""`python -m actors.node --cpu LIST`: every thread of the node, ZeroMQ's I/O threads
included, runs only on the CPUs asked for; a list it cannot honour is refused at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from actors import rpc
from actors._affinity import bind_threads, parse_cpus

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                reason="binding threads to CPUs is Linux's")
ROOT = Path(__file__).resolve().parents[1]
ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _threads_and_cpus() -> list[tuple[str, list[int]]]:
    """(thread name, CPUs it may run on) for every thread of the calling process."""
    out = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                name = comm.read().strip()
            cpus = sorted(os.sched_getaffinity(int(task)))
        except (FileNotFoundError, ProcessLookupError):
            continue
        out.append((name, cpus))
    return out


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs to tell a binding apart")
def test_a_node_started_with_cpu_runs_every_thread_there(peers: Any) -> None:
    cpu = ALLOWED[-1]
    _, node = peers(args=["--cpu", str(cpu)])
    threads = rpc.call(node, _threads_and_cpus)
    assert any(name.startswith("ZMQbg") for name, _ in threads), threads
    assert all(cpus == [cpu] for _, cpus in threads), threads


@pytest.mark.parametrize(("value", "error"), [
    ("99999", "is not one this process may run on"),
    ("one", "is not a CPU list"),
    ("3-1", "is not a CPU list"),
])
def test_a_cpu_list_the_node_cannot_honour_is_refused_at_start(value: str, error: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actors.node", "--name", "cpu@127.0.0.1", "--no-epmd",
         "--cpu", value],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
        env={**os.environ, "ERLPY_COOKIE": "a-cookie-for-this-test-only"})
    assert result.returncode == 2, result
    assert f"--cpu {value}:" in result.stderr and error in result.stderr, result.stderr


def test_parse_cpus_reads_linux_lists() -> None:
    first = ALLOWED[0]
    assert parse_cpus(str(first)) == {first}
    assert parse_cpus(f"{first}-{first}") == {first}
    assert parse_cpus(",".join(map(str, ALLOWED))) == set(ALLOWED)


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs to tell a binding apart")
def test_bind_threads_binds_the_threads_a_process_has_now() -> None:
    script = ("import threading\n"
              "stop = threading.Event()\n"
              "for _ in range(2): threading.Thread(target=stop.wait, args=(30,)).start()\n"
              "print('ready', flush=True)\n"
              "stop.wait(30)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        bind_threads({ALLOWED[0]}, child.pid)
        tasks = os.listdir(f"/proc/{child.pid}/task")
        assert len(tasks) == 3  # the main thread and the two it started
        assert all(os.sched_getaffinity(int(t)) == {ALLOWED[0]} for t in tasks)
    finally:
        child.kill()
        child.wait()
