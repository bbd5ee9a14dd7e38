"""The demo's clusters: one per mode (`Cluster`), kept by the demo's lab (`DemoLab`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from actors import erlang
from actors.consensus import client
from demos.lab import Lab, call_on, elapsed_ms, leader_views, server, wait_for
from demos.lab import node as on_peer


class DemoLab(Lab):
    """The lab, with the demo's clusters: one per mode, made on first use."""

    def __init__(self, peer_log_level: str = "CRITICAL") -> None:
        super().__init__(peer_log_level)
        self.clusters: dict[str, Cluster] = {}

    def cluster(self, mode: str) -> Cluster:
        if mode not in self.clusters:
            self.clusters[mode] = Cluster(self, mode)
        return self.clusters[mode]


class Cluster:
    """One mode's service nodes. `nodes` run the service (in Raft mode: as the members
    of one cluster); `spare` are started nodes that run nothing yet."""

    def __init__(self, lab: Lab, mode: str) -> None:
        self.lab, self.mode = lab, mode
        self.nodes: list[str] = []
        self.spare: list[str] = []
        self.generation = 0  # Raft: each new cluster gets its own data directory
        self._names = 0
        self.election_ms: float | None = None

    def reserve(self, count: int) -> None:
        """Have at least `count` spare nodes (started together: it is faster)."""
        missing = count - len(self.spare)
        if missing > 0:
            names = [f"{self.mode}{self._names + i + 1}" for i in range(missing)]
            self._names += missing
            self.spare += self.lab.start_peers(names)

    def form(self, size: int) -> float:
        """Run the service on exactly `size` live nodes: POC adds nodes to the running ones;
        Raft starts a new cluster (new members, new data) on them. Returns the ms from
        the start of the services to one leader agreed by all (the election)."""
        if self.mode == "raft" and self.nodes:
            for node in self.nodes:
                call_on(node, "stop_service", timeout=20000)
            self.spare = self.nodes + self.spare
            self.nodes = []
        new = size - len(self.nodes)
        self.reserve(new)
        joining, self.spare = self.spare[:new], self.spare[new:]
        self.generation += 1
        members = self.nodes + joining
        data = Path(self.lab.tmp) / f"{self.mode}-{self.generation}"
        t0 = time.monotonic()
        me = erlang.self()
        for node in joining:
            data_dir = str(data / node.split("@")[0])
            erlang.spawn(lambda node=node, d=data_dir: erlang.send(me, ("svc", node, call_on(
                node, "start_service", self.mode, members, d, timeout=20000))))
        for _ in joining:
            msg = erlang.receive(lambda m: type(m) is tuple and m[0] == "svc", 25000)
            if msg is erlang.TIMEOUT or msg[2][0] != "ok":
                raise RuntimeError(f"the service did not start: {msg!r}")
        self.nodes = members
        if self.wait_leader(self.nodes, 15.0) is None:
            raise RuntimeError(f"{self.mode}: no leader agreed by {self.nodes}")
        election = elapsed_ms(t0)
        if self.election_ms is None:
            self.election_ms = election
        return election

    # -- views --------------------------------------------------------------------------

    def wait_leader(self, nodes: list[str], within_s: float) -> tuple[str, Any] | None:
        """(leader's node, leader) once `nodes` agree on one leader among them."""
        return wait_for(lambda: _leader_among(nodes), within_s, step_ms=5)

    def leader(self) -> str:
        found = self.wait_leader(self.nodes, 10.0)
        if found is None:
            raise RuntimeError(f"{self.mode}: no leader agreed by {self.nodes}:\n"
                               f"{leader_views(self.nodes)}")
        return found[0]

    def status(self, node: str) -> Any:
        return client.get_status(server(node))

    def own_log(self, node: str) -> list[dict[str, Any]]:
        found = call_on(node, "own_log")
        return found if type(found) is list else []

    def own_count(self, node: str) -> int:
        found = call_on(node, "own_count")
        return found if type(found) is int else -1

    def tree(self, node: str) -> list[tuple[str, Any, str]]:
        """The service's tree on `node`; [] while it cannot be read (it is restarting)."""
        found = call_on(node, "tree")
        return found if type(found) is list else []

    def retire(self) -> None:
        """Stop every node of this cluster (so that it costs the others no CPU)."""
        self.lab.stop_peers(self.nodes + self.spare)
        self.nodes, self.spare = [], []

    def crash(self, node: str) -> float:
        """SIGKILL `node`; it leaves the cluster's nodes. Returns the time of the kill."""
        t0 = time.monotonic()
        self.lab.kill(node)
        self.nodes.remove(node)
        return t0


def _leader_among(nodes: list[str]) -> tuple[str, Any] | None:
    found = on_peer.converged(nodes)
    return found if found is not None and found[0] in nodes else None
