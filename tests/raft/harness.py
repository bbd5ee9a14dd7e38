"""A step-by-step network of cores for interaction tests (golden files, paper tests).

Unlike the simulator, nothing happens on its own here: messages wait in
per-member inboxes until `deliver`, writes wait until `persist`, and time
moves only with `tick`. Every effect is rendered as one line of text so a
golden file can show exactly what each command caused.
"""

from __future__ import annotations

import random
import shlex
from collections.abc import Iterable

from actors.raft import (
    Accepted,
    AppendEntries,
    AppendResult,
    Apply,
    ArmNotice,
    Campaign,
    ChangeMembership,
    Effect,
    Entry,
    Event,
    HardState,
    Heartbeat,
    HeartbeatResult,
    InstallSnapshot,
    Message,
    NodeId,
    NoticeDue,
    Options,
    PersistEntries,
    PersistSnapshot,
    PersistState,
    Propose,
    RaftCore,
    ReadIndex,
    ReadReady,
    Reply,
    RequestVote,
    RestoreSnapshot,
    RoleChanged,
    Send,
    SnapshotMeta,
    SnapshotResult,
    SnapshotTaken,
    SnapshotWritten,
    Tick,
    TimeoutNow,
    TransferLeadership,
    Vote,
    Written,
)
from actors.raft.driver import Driver, NullIO


def fmt_entry(e: Entry) -> str:
    if e.kind == "noop":
        what = "noop"
    elif e.kind == "config":
        assert isinstance(e.command, frozenset)
        what = "conf{" + ",".join(str(m) for m in sorted(e.command)) + "}"
    else:
        what = str(e.command)
    return f"{e.index}/{e.term}:{what}"


def fmt_entries(entries: Iterable[Entry]) -> str:
    return "[" + " ".join(fmt_entry(e) for e in entries) + "]"


def fmt_msg(m: Message) -> str:
    if isinstance(m, RequestVote):
        flags = (" pre" if m.pre_vote else "") + (" transfer" if m.transfer else "")
        return f"MsgVote term={m.term} last={m.last_index}/{m.last_term}{flags}"
    if isinstance(m, Vote):
        verdict = "granted" if m.granted else "rejected"
        return f"MsgVoteResp term={m.term} {verdict}" + (" pre" if m.pre_vote else "")
    if isinstance(m, AppendEntries):
        return (f"MsgApp term={m.term} prev={m.prev_index}/{m.prev_term} commit={m.commit} "
                f"entries={fmt_entries(m.entries)}")
    if isinstance(m, AppendResult):
        if m.success:
            return f"MsgAppResp term={m.term} ok index={m.index}"
        return f"MsgAppResp term={m.term} reject index={m.index} hint={m.hint_index}/{m.hint_term}"
    if isinstance(m, Heartbeat):
        return f"MsgHeartbeat term={m.term} commit={m.commit} ctx={m.read_ctx}"
    if isinstance(m, HeartbeatResult):
        return f"MsgHeartbeatResp term={m.term} ctx={m.read_ctx}"
    if isinstance(m, InstallSnapshot):
        done = " done" if m.done else ""
        return (f"MsgSnap term={m.term} snap={m.meta.index}/{m.meta.term} "
                f"offset={m.offset} bytes={len(m.data)}{done}")
    if isinstance(m, SnapshotResult):
        return f"MsgSnapResp term={m.term} snap={m.index} offset={m.offset}"
    assert isinstance(m, TimeoutNow)
    return f"MsgTimeoutNow term={m.term}"


def fmt_effect(node: int, eff: Effect) -> str:
    if isinstance(eff, Send):
        return f"{node}->{eff.to} {fmt_msg(eff.msg)}"
    if isinstance(eff, PersistState):
        return f"{node} persist-state term={eff.term} vote={eff.voted_for}"
    if isinstance(eff, PersistEntries):
        return f"{node} persist-entries from={eff.from_index} {fmt_entries(eff.entries)}"
    if isinstance(eff, PersistSnapshot | RestoreSnapshot):
        verb = "persist-snapshot" if isinstance(eff, PersistSnapshot) else "restore-snapshot"
        voters = ",".join(str(v) for v in sorted(eff.meta.voters))
        return f"{node} {verb} {eff.meta.index}/{eff.meta.term} voters={{{voters}}} {eff.data!r}"
    if isinstance(eff, Apply):
        return f"{node} apply {fmt_entries(eff.entries)}"
    if isinstance(eff, Reply):
        r = eff.result
        if isinstance(r, Accepted):
            return f"{node} reply {eff.correlation} accepted index={r.index}"
        return f"{node} reply {eff.correlation} rejected {r.reason} leader={r.leader}"
    if isinstance(eff, ReadReady):
        return f"{node} read-ready {eff.correlation} index={eff.index}"
    if isinstance(eff, ArmNotice):
        return f"{node} arm-notice"
    assert isinstance(eff, RoleChanged)
    return f"{node} role {eff.role} term={eff.term} leader={eff.leader}"


class _NetIO(NullIO):
    """The harness's I/O: inboxes, a disk completed on demand by `persist`."""

    def __init__(self, net: Network, node: int) -> None:
        self.net = net
        self.node = node

    def send(self, to: NodeId, msg: Message) -> None:
        net = self.net
        if net._connected(self.node, to):
            net.inbox[to].append((self.node, msg))

    def persist_state(self, term: int, voted_for: NodeId | None) -> None:
        disk = self.net.disk
        disk[self.node] = (HardState(term, voted_for), disk[self.node][1])

    def persist_entries(self, from_index: int, entries: tuple[Entry, ...]) -> None:
        self.net.writes[self.node].append(PersistEntries(from_index, entries))

    def persist_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        self.net.writes[self.node].append(PersistSnapshot(meta, data))

    def apply(self, entries: tuple[Entry, ...]) -> None:
        self.net.applied[self.node].extend(entries)


class Network:
    """Cores 1..n with inboxes, a synchronous-on-demand disk, and partitions."""

    def __init__(self, n: int = 0, options: Options | None = None) -> None:
        self.options = options or Options()
        self.cores: dict[int, RaftCore] = {}
        self.drivers: dict[int, Driver] = {}
        self.inbox: dict[int, list[tuple[int, Message]]] = {}
        self.writes: dict[int, list[PersistEntries | PersistSnapshot]] = {}
        self.disk: dict[int, tuple[HardState, list[Entry]]] = {}
        self.applied: dict[int, list[Entry]] = {}
        self.isolated: set[int] = set()
        self.output: list[str] = []
        self.next_corr = 1
        if n:
            self.add_nodes(n)

    def add_nodes(self, n: int, voters: Iterable[int] | None = None) -> None:
        start = len(self.cores) + 1
        ids = range(start, start + n)
        members = frozenset(voters) if voters is not None else frozenset(ids)
        for i in ids:
            self._install(i, RaftCore(i, members, random.Random(i), self.options))
            self.inbox[i], self.writes[i], self.applied[i] = [], [], []
            self.disk[i] = (HardState(), [])

    # ------------------------------------------------------------ driving

    def _install(self, node: int, core: RaftCore) -> None:
        """Run `core` through the shared driver, rendering each effect as it executes
        (in the core's order: the harness shows what the core returned)."""
        self.cores[node] = core
        def trace(_core: RaftCore, eff: Effect) -> None:
            self.output.append(fmt_effect(node, eff))

        self.drivers[node] = Driver(core, _NetIO(self, node), leader_sends_first=False,
                                    trace=trace)

    def step(self, node: int, event: Event) -> list[Effect]:
        return self.drivers[node].step(event)

    def _connected(self, a: int, b: int) -> bool:
        if a not in self.cores or b not in self.cores:
            return False
        return (a in self.isolated) == (b in self.isolated) or not self.isolated

    def persist(self, node: int) -> None:
        """Complete every pending write of `node`, oldest first."""
        for _ in range(len(self.writes[node])):
            op = self.writes[node].pop(0)
            if isinstance(op, PersistSnapshot):
                self.step(node, SnapshotWritten(op.meta.index, op.meta.term))
                continue  # the harness disk keeps the whole log: restarts replay it
            log = self.disk[node][1]
            del log[op.from_index - 1 :]
            log.extend(op.entries)
            last = op.entries[-1]
            self.step(node, Written(last.index, last.term))

    def deliver(self, node: int) -> int:
        """Deliver what is in `node`'s inbox now; return how many messages."""
        batch, self.inbox[node] = self.inbox[node], []
        for _, msg in batch:
            self.step(node, msg)
        return len(batch)

    def stabilize(self, limit: int = 1000) -> None:
        for _ in range(limit):
            busy = False
            for i in sorted(self.cores):
                if self.writes[i]:
                    self.persist(i)
                    busy = True
            for i in sorted(self.cores):
                busy = self.deliver(i) > 0 or busy
            if not busy:
                return
        raise AssertionError("network did not stabilize")

    def tick(self, node: int, n: int = 1) -> None:
        for _ in range(n):
            self.step(node, Tick())

    def propose(self, node: int, command: object) -> str:
        corr = f"p{self.next_corr}"
        self.next_corr += 1
        self.step(node, Propose(command, corr))
        return corr

    def read(self, node: int) -> str:
        corr = f"r{self.next_corr}"
        self.next_corr += 1
        self.step(node, ReadIndex(corr))
        return corr

    def crash(self, node: int) -> None:
        """Lose unsynced writes and volatile state; `restart` rebuilds from the disk."""
        self.writes[node] = []
        self.inbox[node] = []
        self.applied[node] = []

    def restart(self, node: int) -> None:
        hard, log = self.disk[node]
        old = self.cores[node]
        self.crash(node)
        self._install(node, RaftCore(
            node, old.base_voters, random.Random(node * 7919), self.options, hard, list(log)
        ))

    def leader(self) -> int | None:
        leaders = [i for i, c in self.cores.items() if c.role == "leader"]
        return max(leaders, key=lambda i: self.cores[i].term) if leaders else None

    def take_output(self) -> str:
        out, self.output = self.output, []
        return "\n".join(out) if out else "ok"

    # ------------------------------------------------------------ script language

    def run_command(self, line: str) -> str:
        """Run one golden-file command and return its rendered output."""
        words = shlex.split(line)
        cmd, args = words[0], words[1:]
        nums = [int(a) for a in args if a.lstrip("-").isdigit()]
        if cmd == "add-nodes":
            opts = dict(a.split("=") for a in args if "=" in a)
            self.options = Options(
                pre_vote=opts.get("pre-vote", "true") == "true",
                check_quorum=opts.get("check-quorum", "true") == "true",
                max_batch=int(opts.get("max-batch", "16")),
                snapshot_chunk=int(opts.get("snapshot-chunk", "65536")),
                commit_notice=opts.get("commit-notice", "true") == "true",
                defer_notice=opts.get("defer-notice", "false") == "true",
            )
            self.add_nodes(nums[0])
        elif cmd == "campaign":
            self.step(nums[0], Campaign())
        elif cmd == "propose":
            self.propose(nums[0], args[1])
        elif cmd == "read-index":
            self.read(nums[0])
        elif cmd == "transfer-leadership":
            self.step(nums[0], TransferLeadership(nums[1]))
        elif cmd in ("add-member", "remove-member"):
            op = "add" if cmd == "add-member" else "remove"
            self.step(nums[0], ChangeMembership(op, nums[1], f"m{nums[1]}"))  # type: ignore[arg-type]
        elif cmd == "deliver":
            for i in nums or sorted(self.cores):
                self.deliver(i)
        elif cmd == "persist":
            for i in nums or sorted(self.cores):
                self.persist(i)
        elif cmd == "stabilize":
            self.stabilize()
        elif cmd == "tick":
            self.tick(nums[0], nums[1] if len(nums) > 1 else 1)
        elif cmd == "notice-due":  # the delay an `arm-notice` asked for has passed
            self.step(nums[0], NoticeDue())
        elif cmd == "partition":
            self.isolated = set(nums)
            for i in nums:
                self.inbox[i] = []
        elif cmd == "heal":
            self.isolated = set()
        elif cmd == "crash":
            self.crash(nums[0])
        elif cmd == "restart":
            self.restart(nums[0])
        elif cmd == "drop":
            for i in nums or sorted(self.cores):
                self.inbox[i] = []
        elif cmd == "snapshot":
            c = self.cores[nums[0]]
            self.step(nums[0], SnapshotTaken(c.applied, f"state@{c.applied}".encode()))
        elif cmd == "status":
            self.output.extend(self.cores[i].status() for i in sorted(self.cores))
        elif cmd == "log":
            for i in nums or sorted(self.cores):
                self.output.append(f"{i}: {fmt_entries(self.cores[i].log.entries())}")
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return self.take_output()
