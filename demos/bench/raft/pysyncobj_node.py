"""One pysyncobj cluster member for `python -m demos.bench raft`, run as its own OS process.

    python -m demos.bench.raft.pysyncobj_node --self 127.0.0.1:P --partner 127.0.0.1:Q ... \
        --journal DIR/journal --dump DIR/dump [--no-fsync] [--batch]

It runs a `SyncObj` holding a `ReplCounter` (journal file and full-dump file on disk) and a
small control server on a loopback TCP port, printed as `READY <port>` on stdout. The
benchmark drives the member through that port, one newline-terminated command at a time:

    inc <id>      counter.inc() through Raft; answered `ok <id> <value>` once applied here
                  (or `err <id> <reason>`). Many may be in flight on one connection.
    status        a JSON line: state, leader, term, commit index, last applied, counter
    local <n>     n in-process counter.get() calls: `rate <calls per second>`
    batch 0|1     set appendEntriesUseBatch on this member (read by the leader at each command)
    watch         from now on, `leader <self> <monotonic_ns>` whenever this member becomes leader

Security. pysyncobj unpickles what reaches its port, so a member binds its own loopback
address only (`bindAddress`, not pysyncobj's default 0.0.0.0) and encrypts and
authenticates its traffic with the run's random password (`SyncObjConf(password=...)`),
taken from `$ERLPY_PSO_PASSWORD` (never from argv, which other users can read); it refuses
to start without one, or on an address that is not loopback. The control port answers on
127.0.0.1 only, and a bad control line gets an error reply, never a crash.

Durability. pysyncobj 0.3.17 has no fsync option: its FileJournal writes into an mmap and
only msyncs it when the object is destroyed, and its term/vote file is written without
fsync. With `--fsync` (the default) this script adds what Raft needs, as group commit:
- the journal file is fdatasync'ed once at the end of every tick in which the leader
  appended entries (after their AppendEntries went out, so the leader's disk write runs in
  parallel with the followers'; its commit index is only advanced by a later tick);
- a follower fdatasyncs the journal before it acknowledges entries (`next_node_idx`);
- the term/vote file is fsync'ed before it replaces the old one.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import socket
import sys
import threading
import time
from typing import Any

from pysyncobj import SyncObj, SyncObjConf
from pysyncobj import syncobj as syncobj_module
from pysyncobj.batteries import ReplCounter
from pysyncobj.journal import FileJournal, MemoryJournal, MetaStorer
from pysyncobj.pickle import dumps as _meta_dumps

LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER
PASSWORD_ENV = "ERLPY_PSO_PASSWORD"


def _store_meta_synced(self: MetaStorer, meta: Any) -> None:
    """MetaStorer.storeMeta, with the fsync it lacks before the rename."""
    path = self.getPath()
    with open(path + ".tmp", "wb") as f:
        f.write(_meta_dumps(meta))
        f.flush()
        os.fsync(f.fileno())
    shutil.move(path + ".tmp", path)


class _SyncedJournal(FileJournal):
    """A FileJournal that knows whether it has entries not yet on disk."""

    def __init__(self, journal_file: str) -> None:
        super().__init__(journal_file)
        self.dirty = False

    def add(self, command: Any, idx: int, term: int) -> None:
        super().add(command, idx, term)
        self.dirty = True

    def sync(self) -> None:
        if self.dirty:
            self.dirty = False
            mapped = self._FileJournal__journalFile  # type: ignore[attr-defined]
            os.fdatasync(mapped._ResizableFile__f.fileno())


class DurableSyncObj(SyncObj):
    """SyncObj with group-commit fdatasync of its journal (see the module doc). Overridden at
    class level: pysyncobj pickles the instance's __dict__ into its full dump."""

    def _checkCommandsToApply(self) -> None:
        super()._checkCommandsToApply()
        self._SyncObj__raftLog.sync()  # type: ignore[attr-defined]

    def _SyncObj__sendNextNodeIdx(self, *args: Any, **kwargs: Any) -> None:
        self._SyncObj__raftLog.sync()  # type: ignore[attr-defined]
        SyncObj._SyncObj__sendNextNodeIdx(self, *args, **kwargs)  # type: ignore[attr-defined]


def _synced_journal(journal_file: str | None = None) -> Any:
    return _SyncedJournal(journal_file) if journal_file is not None else MemoryJournal()


class _Conn:
    """One control connection: lines in, lines out (written under a lock: pysyncobj's
    callbacks run on its tick thread)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, line: str) -> None:
        with self.lock:
            try:
                self.sock.sendall(line.encode() + b"\n")
            except OSError:
                pass


class Member:
    def __init__(self, args: argparse.Namespace) -> None:
        self.watchers: list[_Conn] = []
        self.counter = ReplCounter()
        conf = SyncObjConf(
            bindAddress=args.self_addr, password=_password(),  # loopback only, encrypted
            journalFile=args.journal, fullDumpFile=args.dump,
            appendEntriesUseBatch=args.batch,
            raftMinTimeout=args.min_timeout, raftMaxTimeout=args.max_timeout,
            connectionRetryTime=0.2,  # not 5 s: the members start one after the other
            logCompactionMinEntries=args.compaction_entries,
            onStateChanged=self._state_changed,
        )
        kind = SyncObj
        if args.fsync:
            MetaStorer.storeMeta = _store_meta_synced  # type: ignore[method-assign]
            syncobj_module.createJournal = _synced_journal
            kind = DurableSyncObj
        self.obj = kind(args.self_addr, args.partner, conf=conf, consumers=[self.counter])

    def _state_changed(self, _old: int, new: int) -> None:
        if new == LEADER:
            stamp = time.monotonic_ns()
            for conn in list(self.watchers):
                conn.send(f"leader {self.obj.selfNode} {stamp}")

    def status(self) -> dict[str, Any]:
        s = self.obj.getStatus()
        leader = s["leader"]
        return {"self": str(s["self"]), "state": s["state"],
                "leader": None if leader is None else str(leader), "term": s["raft_term"],
                "commit_idx": s["commit_idx"], "last_applied": s["last_applied"],
                "counter": self.counter.get()}

    def serve(self, conn: _Conn) -> None:
        reader = conn.sock.makefile("rb")
        for raw in reader:
            parts = raw.decode(errors="replace").split()
            if not parts:
                continue
            match parts:
                case ["inc", ident]:
                    self.counter.inc(callback=lambda res, err, i=ident: conn.send(
                        f"ok {i} {res}" if err == 0 else f"err {i} {err}"))
                case ["status"]:
                    conn.send(json.dumps(self.status()))
                case ["local", n] if n.isdigit() and int(n) <= 100_000_000:
                    get, count = self.counter.get, int(n)
                    t0 = time.perf_counter()
                    for _ in range(count):
                        get()
                    conn.send(f"rate {count / (time.perf_counter() - t0)}")
                case ["batch", flag]:
                    self.obj._SyncObj__conf.appendEntriesUseBatch = flag == "1"  # type: ignore[attr-defined]
                    conn.send(f"batch {flag}")
                case ["watch"]:
                    self.watchers.append(conn)
                    conn.send("watching")
                case _:
                    conn.send(f"error bad_request {raw!r}")
        if conn in self.watchers:
            self.watchers.remove(conn)
        conn.sock.close()


def _password() -> str:
    password = os.environ.pop(PASSWORD_ENV, "")
    if not password:
        raise SystemExit(f"set {PASSWORD_ENV}: members refuse to run unauthenticated")
    return password


def _loopback(addr: str) -> str:
    host = addr.rsplit(":", 1)[0]
    try:
        if ipaddress.ip_address(host).is_loopback:
            return addr
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{addr!r} is not a loopback address")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m demos.bench.raft.pysyncobj_node")
    p.add_argument("--self", dest="self_addr", required=True, type=_loopback)
    p.add_argument("--partner", action="append", default=[], type=_loopback)
    p.add_argument("--journal", required=True)
    p.add_argument("--dump", required=True)
    p.add_argument("--fsync", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--batch", action="store_true",
                   help="appendEntriesUseBatch (pysyncobj's default): AppendEntries every "
                        "appendEntriesPeriod instead of at once")
    p.add_argument("--min-timeout", type=float, default=0.5)
    p.add_argument("--max-timeout", type=float, default=1.0)
    p.add_argument("--compaction-entries", type=int, default=4096)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    member = Member(args)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    # the benchmark holds our stdin: when it goes (however it dies), so do we
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=member.serve, args=(_Conn(sock),), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
