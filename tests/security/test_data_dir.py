"""Attacks on a ra data dir (issue 13, findings 13 and 15's truncated config).

Recovery unpickles the WAL, so a WAL file another user could write is code that would run
as the node. The attacker (uid `nobody`) plants one that creates a marker file when it is
unpickled; starting ra must refuse the data dir before reading it, and the marker must
never appear. A control run without the check shows the attack is real.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import ra
from actors.node import Node
from actors.ra import _system
from actors.ra._records import encode
from tests.security._nobody import NOBODY, as_nobody, need_root


class _Boom:
    """Unpickling this makes the directory `marker` (any callable would do)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.mkdir, (self.marker,))


def _plant_wal(data_dir: Path, marker: Path) -> None:
    """As `nobody`: put a WAL whose one record runs code on recovery into `data_dir`."""
    record = encode(pickle.dumps(_Boom(str(marker))))

    def plant(keep: list[Any]) -> None:
        wal = data_dir / "wal"
        wal.mkdir(exist_ok=True)
        (wal / "00000001.wal").write_bytes(record)

    with as_nobody(plant):
        pass


@pytest.fixture
def box() -> Iterator[Path]:
    """A directory in /tmp that other users can reach (pytest's tmp_path is root-only)."""
    need_root()
    path = Path(tempfile.mkdtemp(prefix="erlpy-sec-", dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _shared_dir(box: Path) -> Path:
    """A data dir as on a shared box: made world-writable for a team (no sticky bit)."""
    shared = box / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    return shared


def test_a_planted_wal_in_a_shared_data_dir_runs_no_code(dist_node: Node, box: Path
                                                          ) -> None:
    data_dir = _shared_dir(box)
    marker = box / "pwned"
    _plant_wal(data_dir, marker)
    result = ra.start(str(data_dir), "sec_shared")
    assert result[0] == "error" and result[1][0] == "untrusted_data_dir", result
    assert not marker.exists()


def test_a_planted_wal_is_refused_even_in_a_private_data_dir(dist_node: Node,
                                                             box: Path) -> None:
    data_dir = _shared_dir(box)
    marker = box / "pwned"
    _plant_wal(data_dir, marker)
    os.chmod(data_dir, 0o700)  # the owner locked the door after the file was planted
    result = ra.start(str(data_dir), "sec_private")
    assert result[0] == "error" and "owned by uid 65534" in result[1][1], result
    assert not marker.exists()


def test_control_without_the_check_the_planted_wal_runs(dist_node: Node, box: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    data_dir = _shared_dir(box)
    marker = box / "pwned"
    _plant_wal(data_dir, marker)
    monkeypatch.setattr(_system, "secure_data_dir", lambda path: None)
    ra.start(str(data_dir), "sec_control")  # fails one way or another, after unpickling
    assert marker.exists()  # so the two tests above test something real
    ra.stop("sec_control")


def test_a_data_dir_under_another_users_directory_is_refused(dist_node: Node,
                                                             box: Path) -> None:
    need_root()
    theirs = box / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)  # they could rename our dir away and put theirs there
    result = ra.start(str(theirs / "node"), "sec_theirs")
    assert result[0] == "error" and "owned by uid 65534" in result[1][1], result


def test_a_new_data_dir_is_private_and_stays_so(dist_node: Node, box: Path) -> None:
    data_dir = box / "ra"
    old_umask = os.umask(0o022)
    try:
        assert ra.start(str(data_dir), "sec_new") == "ok"
        ra.stop("sec_new")
        loose = data_dir / "servers" / "left.cfg"  # a file some tool wrote world-readable
        loose.write_bytes(b"")
        loose.chmod(0o644)
        assert ra.start(str(data_dir), "sec_new") == "ok"
        ra.stop("sec_new")
    finally:
        os.umask(old_umask)
    assert (data_dir.stat().st_mode & 0o777) == 0o700
    for entry in data_dir.rglob("*"):
        want = 0o700 if entry.is_dir() else 0o600
        assert (entry.stat().st_mode & 0o777) == want, entry

    def snoop(keep: list[Any]) -> str:
        try:
            os.listdir(data_dir)
        except PermissionError:
            return "denied"
        return "listed"

    if os.geteuid() == 0:
        with as_nobody(snoop) as seen:
            assert seen == "denied"


def test_a_truncated_member_config_is_reported(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    servers = tmp_path / "servers"
    servers.mkdir()
    whole = encode(pickle.dumps({"name": "m", "running": True}))
    (servers / "s_m.cfg").write_bytes(whole[: len(whole) // 2])
    caplog.set_level(logging.ERROR, logger="actors.ra")
    assert _system._configs(str(tmp_path)) == []
    assert any("s_m.cfg is damaged" in r.getMessage() and "will not be restarted"
               in r.getMessage() for r in caplog.records)
