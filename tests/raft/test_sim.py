"""The seeded simulator in CI: a few hundred seeds, plus determinism and bug-catching."""

from __future__ import annotations

import time

import pytest

from actors.raft import RaftLog
from demos.sim import Sim, SimFailure, run_seed

CI_SEEDS = range(300)


def test_simulated_seeds_hold_every_invariant() -> None:
    started = time.perf_counter()
    failures = []
    for seed in CI_SEEDS:
        try:
            run_seed(seed)
        except SimFailure as e:
            failures.append(str(e))
            if len(failures) >= 3:
                break
    took = time.perf_counter() - started
    assert not failures, "\n\n".join(failures)
    assert took < 120, f"{len(CI_SEEDS)} seeds took {took:.0f}s"


def test_same_seed_same_run() -> None:
    for seed in (3, 42):
        first, second = run_seed(seed), run_seed(seed)
        assert first == second, f"seed {seed} is not deterministic"
    assert run_seed(3)[0] != run_seed(4)[0]


def test_failure_message_names_the_seed_and_replay_command() -> None:
    sim = Sim(7)
    try:
        sim.fail("synthetic")
    except SimFailure as e:
        assert "seed 7: synthetic" in str(e)
        assert "python -m demos.sim --seed 7" in str(e)
    else:  # pragma: no cover
        raise AssertionError("fail() must raise")


def test_checkers_catch_a_broken_election_restriction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation check: with §5.4.1 disabled, some early seed must fail, naming itself."""
    monkeypatch.setattr(RaftLog, "is_up_to_date", lambda self, index, term: True)
    for seed in range(50):
        try:
            run_seed(seed)
        except SimFailure as e:
            assert f"python -m demos.sim --seed {seed}" in str(e)
            return
    raise AssertionError("the simulator missed a broken election restriction in 50 seeds")
