"""A node that cannot start releases everything it opened (issue 13, finding 15).

The port mapper's port is held by a listener that never answers, so `start_node` fails;
its ZeroMQ context, sockets and threads must be gone at once, not left for the garbage
collector (collecting a ZeroMQ context late once hung the process).
"""

from __future__ import annotations

import os
import socket
import threading

import pytest

from actors import net_kernel
from actors._terms import Error
from tests.helpers import wait_until
from transport.epmd import EpmdError


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tasks() -> int:
    return len(os.listdir("/proc/self/task"))


def test_a_node_that_cannot_reach_the_port_mapper_leaks_nothing() -> None:
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("needs /proc")
    with socket.socket() as mute:  # takes the port, accepts (kernel backlog), never answers
        mute.bind(("127.0.0.1", 0))
        mute.listen(64)
        port = mute.getsockname()[1]
        net_kernel.start_node("warm@127.0.0.1", cookie="w" * 32, epmd=False).stop()
        fds, tasks, threads = _fds(), _tasks(), threading.active_count()
        for i in range(3):
            with pytest.raises((Error, EpmdError)):
                net_kernel.start_node(f"leak{i}@127.0.0.1", cookie="x" * 32, epmd_port=port)
        # the epmd reaper threads of the failed daemons end with them; the rest at once
        wait_until(lambda: threading.active_count() <= threads + 0, timeout=10)
        wait_until(lambda: _tasks() <= tasks and _fds() <= fds, timeout=10)
        assert not [t.name for t in threading.enumerate() if t.name.startswith("zmq-link-leak")]
