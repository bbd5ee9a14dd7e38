"""The line-for-line ports of the seed's POC snippets (demos/erlang_ports/poc_*.py) run as
`python -m demos.erlang_ports.<port>`, exit 0, and show what each says about the seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {
    "poc_init": [
        "roles: [('leader', 'undefined'), ('follower', <",
        "the seed's followers never hear of it",
        "the followers saw its DOWN and elected one",
    ],
    "poc_leader_handle_call": [
        "nope{} -> ('ok', ('error', {'reason': 'unknown_tool', 'tool': 'nope'}))",
        "its log, newest first (a prepend): ['nope', 'multiply', 'add']",
        "the leader died, and its log with it",
        "the leader lives on",
    ],
    "poc_follower_forward": [
        "fixed: hang -> ('error', 'leader_timeout')",
        "seed : hang -> ('exit', 'timeout'): {timeout, _} is not caught",
        "seed : add(1, 2) -> ('error', 'no_leader') (still following the dead pid)",
        "fixed: add(1, 2) -> ('error', 'leader_unavailable')",
    ],
    "poc_down": [
        "seed : the leader's (role, leader) -> ('follower', 'itself'): it follows itself",
        "fixed: the leader's (role, leader) -> ('leader', 'itself')",
        "SeedDown: the follower is now ('leader', 'itself')",
        "FixedDown: the follower is now ('leader', 'itself')",
    ],
}


@pytest.mark.parametrize("port", sorted(EXPECTED))
def test_a_port_runs_and_shows_what_the_seed_gets_wrong(port: str) -> None:
    done = subprocess.run([sys.executable, "-m", f"demos.erlang_ports.{port}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in [*EXPECTED[port], f"{port}: done"]:
        assert line in done.stdout, f"{line!r} not in:\n{done.stdout}"
