"""The call floor of `demos.bench dist` (`demos.bench.call_floor`) does the work it claims."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from demos.bench.call_floor import CallFloor, alternating_p50s_us


@pytest.fixture
def floor() -> Iterator[CallFloor]:
    floor = CallFloor()
    yield floor
    floor.close()


def test_both_round_trips_answer_what_was_sent_and_keep_no_state(floor: CallFloor) -> None:
    assert floor.frames(b"abc") == b"abc"
    for i in range(50):
        assert floor.call(("req", i)) == ("req", i)
    assert floor.aliases == set() and floor.monitors == {} and len(floor.mailbox) == 0
    # every frame went through the codec, in order, in both directions
    assert floor.sealer.next_seq == 52 and floor.opener.last_seq == 51


def test_close_stops_the_server(floor: CallFloor) -> None:
    floor.frames(b"x")
    floor.close()
    assert floor.proc.returncode == 0


def test_alternating_p50s_runs_every_op_n_times() -> None:
    counts = [0, 0]

    def op(i: int) -> None:
        counts[i] += 1

    p50s = alternating_p50s_us(250, [lambda: op(0), lambda: op(1)], chunk=100)
    assert counts == [250, 250] and len(p50s) == 2 and all(p >= 0 for p in p50s)


def test_the_server_exits_when_its_parent_closes_its_stdin() -> None:
    floor = CallFloor()
    try:
        assert floor.frames(b"x") == b"x"
        assert floor.proc.stdin is not None
        floor.proc.stdin.close()  # as when the parent dies
        assert floor.proc.wait(10) == 0
    finally:
        floor.proc.kill()
        floor.ctx.destroy(0)
