"""The benchmark's pysyncobj peers give no code execution to others (issue 13, finding 11).

pysyncobj unpickles what reaches its port. The benchmark's members now bind loopback only
and require the run's random password, so a pickle sent by someone without it is never
loaded. The control sends the same pickle encrypted with the password and sees it run,
which shows the attack is the real one.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pysyncobj")
pytest.importorskip("cryptography")

from pysyncobj.encryptor import getEncryptor

from demos.bench.raft import _common as raft_common
from demos.bench.raft import pysyncobj_side as pso_side
from tests.helpers import wait_until


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.mkdir, (self.marker,))


def _frame(data: bytes) -> bytes:
    return struct.pack("i", len(data)) + data


def _send(addr: str, frames: list[bytes]) -> None:
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        for f in frames:
            s.sendall(f)
        s.settimeout(1.0)
        try:  # until the member drops us or a second passes
            while s.recv(4096):
                pass
        except OSError:
            pass


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    c = pso_side.PsoCluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        for m in c.members:
            m.stop()


def test_the_bench_cookie_is_random_per_run() -> None:
    code = "from demos.bench.raft._common import COOKIE; print(COOKIE)"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, cwd=raft_common.ROOT).stdout for _ in range(2)}
    assert len(runs) == 2 and all(len(r.strip()) == 32 for r in runs)


def test_a_pickle_without_the_password_is_never_loaded(cluster: Any, tmp_path: Path) -> None:
    member = cluster.members[0]
    assert member.status()["counter"] is not None  # the cluster works, with its password
    marker = tmp_path / "pwned"
    payload = zlib.compress(pickle.dumps(_Boom(str(marker))), 3)
    _send(member.addr, [_frame(payload)])  # the attack as it worked before: plain pickle
    _send(member.addr, [_frame(getEncryptor("guess").encrypt(payload))])
    assert not marker.exists()
    # control: with the run's password the same pickle is loaded (so the framing is right)
    _send(member.addr, [_frame(getEncryptor(member.password).encrypt(payload))])
    wait_until(marker.exists, timeout=5)


def test_members_listen_on_loopback_only(cluster: Any) -> None:
    for member in cluster.members:
        port = int(member.addr.rsplit(":", 1)[1])
        listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if line.split()[3] == "0A" and line.split()[1].endswith(f":{port:04X}")]
        assert listening == [f"0100007F:{port:04X}"], listening  # 127.0.0.1, not 0.0.0.0
