"""Interaction tests from `testdata/*.txt` (etcd-io/raft style golden files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .golden import check_file

FILES = sorted((Path(__file__).parent / "testdata").glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden(path: Path) -> None:
    check_file(path)
