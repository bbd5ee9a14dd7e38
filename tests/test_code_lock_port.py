"""demos/erlang_ports/code_lock.py: OTP's code lock door (gen_statem chapter), in both
callback modes, run as a module and driven in-process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from actors import Node, erlang, gen_statem
from actors import sys as sys_
from demos.erlang_ports import code_lock
from tests.helpers import down_of, recv, wait_until

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_runs_and_shows_the_door() -> None:
    done = subprocess.run([sys.executable, "-m", "demos.erlang_ports.code_lock"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for mode in ("state_functions", "handle_event_function"):
        at = lines.index(next(x for x in lines if x.startswith("== ") and mode in x))
        expected = ["Lock", "state after 9, 1, 2: locked", "Unlock", "state after 3, 4: open",
                    *(["code_length: 4"] if mode == "handle_event_function" else []),
                    "Lock", "state after the open time: locked"]
        assert lines[at + 1:at + 1 + len(expected)] == expected
    assert lines.count("state after the open time: locked") == 2


class Quick(code_lock.CodeLock):
    OPEN_TIME = 200


class QuickEvents(code_lock.CodeLockEvents):
    OPEN_TIME = 200


@pytest.mark.parametrize("lock", [Quick, QuickEvents])
def test_the_right_code_opens_the_door_until_its_state_timeout(node: Node, lock: Any,
                                                               capsys: Any) -> None:
    _, pid = lock.start_link([1, 2, 3])
    for b in (1, 2, 4, 1, 2):  # wrong, then the right code's first two buttons
        lock.button(b)
    assert sys_.get_state(code_lock.NAME) == ("locked", {"code": [1, 2, 3], "length": 3,
                                                          "buttons": [4, 1, 2]})
    lock.button(3)
    assert sys_.get_state(code_lock.NAME)[0] == "open"
    lock.button(3)  # buttons do nothing while open
    assert sys_.get_state(code_lock.NAME)[0] == "open"
    wait_until(lambda: sys_.get_state(code_lock.NAME)[0] == "locked", 3.0)
    assert capsys.readouterr().out.split() == ["Lock", "Unlock", "Lock"]
    ref = erlang.monitor("process", pid)
    gen_statem.stop(code_lock.NAME)
    recv(down_of(ref))


def test_terminate_locks_an_open_door(node: Node, capsys: Any) -> None:
    Quick.start_link([7])
    Quick.button(7)
    assert sys_.get_state(code_lock.NAME)[0] == "open"
    gen_statem.stop(code_lock.NAME)
    assert capsys.readouterr().out.split() == ["Lock", "Unlock", "Lock"]


def test_code_length_is_a_call(node: Node) -> None:
    QuickEvents.start_link([1, 2, 3, 4, 5])
    assert QuickEvents.code_length() == 5
    gen_statem.stop(code_lock.NAME)
