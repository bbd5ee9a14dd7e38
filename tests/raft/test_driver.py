"""The one effect interpreter (`actors.raft.driver`): order, queueing, tracing, policy."""

from __future__ import annotations

import pytest

from actors.raft import (
    Campaign,
    Effect,
    Entry,
    PersistEntries,
    Propose,
    RaftCore,
    Send,
    SnapshotMeta,
    Written,
)
from actors.raft.driver import Driver, NullIO, sends_first

from .harness import Network
from .helpers import core, elect


class Recorder(NullIO):
    """Records the calls it gets; completes each write at once through `post`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.driver: Driver | None = None
        self.steps: list[str] = []

    def send(self, to: object, msg: object) -> None:
        self.calls.append(("send", to))

    def persist_entries(self, from_index: int, entries: tuple[Entry, ...]) -> None:
        self.calls.append(("persist", entries[-1].index))
        assert self.driver is not None
        # A synchronous write: the completion is posted, not stepped from in here.
        self.driver.post(Written(entries[-1].index, entries[-1].term))
        assert self.driver.running

    def persist_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        self.calls.append(("snapshot", meta.index))

    def apply(self, entries: tuple[Entry, ...]) -> None:
        self.calls.append(("apply", entries[-1].index))

    def reply(self, correlation: object, result: object) -> None:
        self.calls.append(("reply", correlation))

    def snapshot_data(self, index: int) -> bytes:
        return f"state@{index}".encode()

    def stepped(self, event: object) -> None:
        self.steps.append(type(event).__name__)


def _driven(c: RaftCore, **kw: object) -> tuple[Driver, Recorder]:
    io = Recorder()
    d = Driver(c, io, **kw)  # type: ignore[arg-type]
    io.driver = d
    return d, io


def test_a_follow_up_event_is_queued_and_stepped_after_the_list() -> None:
    d, io = _driven(core(1, voters=(1,)))
    d.step(Campaign())  # a single voter leads at once and appends its no-op
    assert io.steps == ["Campaign", "Written"]
    assert d.core.commit == 1 and ("apply", 1) in io.calls
    assert not d.running and not d.queue


def test_step_returns_the_effects_of_its_own_event() -> None:
    d, _io = _driven(core(1, voters=(1,)))
    effects = d.step(Campaign())
    assert any(isinstance(e, PersistEntries) for e in effects)
    assert d.step(Propose("x", "c1"))
    assert d.core.applied == 2


def test_a_leader_sends_before_it_hands_over_its_own_write() -> None:
    net = Network(3)
    elect(net, 1)
    c = net.cores[1]
    d, io = _driven(c)
    d.step(Propose("x", "c1"))
    kinds = [k for k, _ in io.calls]
    assert kinds.index("persist") > kinds.index("send"), io.calls
    d2, io2 = _driven(c, leader_sends_first=False)
    d2.step(Propose("y", "c2"))
    kinds = [k for k, _ in io2.calls]
    assert kinds.index("persist") < kinds.index("send"), io2.calls


def test_sends_first_moves_only_persist_entries_past_directly_following_sends() -> None:
    p = PersistEntries(1, (Entry(1, 1),))
    s1, s2 = Send(2, None), Send(3, None)  # type: ignore[arg-type]
    assert sends_first([p, s1, s2]) == [s1, s2, p]
    assert sends_first([s1, p]) == [s1, p]
    assert sends_first([p, s1, p, s2]) == [s1, p, s2, p]


def test_trace_sees_each_effect_before_it_runs() -> None:
    seen: list[tuple[int, Effect]] = []
    d, io = _driven(core(1, voters=(1,)),
                    trace=lambda c, e: seen.append((len(io.calls), e)))
    d.step(Campaign())
    persists = [n for n, e in seen if isinstance(e, PersistEntries)]
    assert persists and io.calls[persists[0]][0] == "persist"


def test_snapshot_policy_posts_snapshot_taken() -> None:
    d, io = _driven(core(1, voters=(1,)), snapshot_every=2)
    d.step(Campaign())
    d.step(Propose("x", "c1"))
    assert "SnapshotTaken" in io.steps
    assert d.core.log.snapshot_index == 2 and ("snapshot", 2) in io.calls


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        Driver(core(1), NullIO(), snapshot_every=-1)
    d = Driver(core(1), NullIO())
    with pytest.raises(TypeError):
        d.execute("not an effect")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        d.step(SnapshotMeta(1, 1, frozenset()))  # type: ignore[arg-type]
    assert not d.running and not d.queue
