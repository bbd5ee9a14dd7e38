"""demos/bench/supervisor.py: the figures it reports, on small sizes (the real run is 1k/100k)."""

from __future__ import annotations

import pytest

from demos.bench import supervisor as bench_supervisor


def test_run_reports_per_child_costs_for_each_size() -> None:
    result = bench_supervisor.run([20, 60])
    assert [row["n"] for row in result["sizes"]] == [20, 60]
    for row in result["sizes"]:
        assert row["start_us_per_child"] > 0 and row["stop_us_per_child"] > 0
        assert row["cpu_us_per_child"] > 0
    assert result["scaling"] > 0 and result["cpu_scaling"] > 0


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10"])
def test_a_size_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError):
        bench_supervisor.measure(bad)  # type: ignore[arg-type]
