"""The node's WAL writer process (ra's `ra_log_wal`): group commit for every member.

Rules of this module:
* Members send `("append", uid, from_index, entries, pid)`. On the first, the
  writer takes every other append already waiting in its mailbox, writes the
  whole batch with one `fdatasync` (group commit), and tells each member the
  last entry it now has on disk with `("$ra_written", index, term)`. Appends
  that arrive during the fsync form the next batch.
* A closed (rolled) WAL file goes to the segment writer, which appends its
  ops to each member's segments and answers `("$flushed", path)`; only then is
  the WAL file deleted. Until then its ops stay here, for members that recover.
* `("ops", uid)` returns the ops a member must replay after its segments: those
  of every WAL file not yet deleted, oldest first.
* A failed write (e.g. a full disk) is logged with the file's path and crashes
  this process; nothing it had not confirmed was acknowledged, and its
  supervisor restarts the members, which recover from disk.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import erlang, gen_server
from ._names import SystemNames
from ._wal import RolledFile, Wal

log = logging.getLogger("actors.ra")


class WalWriter(gen_server.GenServer):
    """State: the `Wal`, the batch's waiting members, and the files out for flushing."""

    def init(self, args: tuple[str, dict[str, Any]]) -> Any:
        system, opts = args
        erlang.process_flag("trap_exit", True)
        wal = Wal(os.path.join(opts["data_dir"], "wal"),
                  max_file_bytes=opts.get("wal_max_bytes", 64 * 1024 * 1024),
                  sync=opts.get("wal_sync", True))
        try:
            wal.recover()
        except Exception as exc:
            log.error("ra system %s: the WAL cannot be recovered: %s", system, exc)
            return ("stop", ("corrupt_log", str(exc)))
        state = _State(SystemNames(system), wal)
        state.hand_off()
        return ("ok", state)

    def handle_info(self, msg: Any, s: _State) -> Any:
        match msg:
            case ("append", uid, from_index, entries, pid):
                s.append(uid, from_index, entries, pid)
                while (more := erlang.receive(_is_append, 0)) is not erlang.TIMEOUT:
                    s.append(*more[1:])  # every append already waiting joins this batch
                s.flush()
            case ("$flushed", path):
                s.out_for_flush = [r for r in s.out_for_flush if r.path != path]
                s.wal.delete(path)
        return ("noreply", s)

    def handle_call(self, request: Any, _from: Any, s: _State) -> Any:
        match request:
            case ("sync_append", uid, from_index, entries):
                s.wal.append(uid, from_index, entries)
                s.flush()
                return ("reply", "ok", s)
            case ("ops", uid):
                s.flush()
                return ("reply", s.ops_for(uid), s)
            case ("forget", uid):
                s.wal.forget(uid)
                s.out_for_flush = [RolledFile(r.path, {u: o for u, o in r.ops.items() if u != uid})
                                   for r in s.out_for_flush]
                return ("reply", "ok", s)
        return ("reply", ("error", ("bad_request", request)), s)

    def terminate(self, reason: Any, s: Any) -> Any:
        if isinstance(s, _State):
            s.wal.close()
        return "ok"


def _is_append(msg: Any) -> bool:
    return type(msg) is tuple and len(msg) == 5 and msg[0] == "append"


class _State:
    def __init__(self, names: SystemNames, wal: Wal) -> None:
        self.names = names
        self.wal = wal
        self.waiting: dict[Any, tuple[int, int]] = {}
        self.out_for_flush: list[RolledFile] = []

    def append(self, uid: str, from_index: int, entries: Any, pid: Any) -> None:
        self.wal.append(uid, from_index, entries)
        if entries:
            self.waiting[pid] = (entries[-1].index, entries[-1].term)

    def flush(self) -> None:
        try:
            self.wal.flush()
        except OSError as exc:  # the exception names no file: say which one, then crash
            log.error("ra system %s: writing WAL file %s failed: %s",
                      self.names.system, self.wal.path, exc)
            raise
        waiting, self.waiting = self.waiting, {}
        for pid, (index, term) in waiting.items():
            erlang.send(pid, ("$ra_written", index, term))
        self.hand_off()

    def hand_off(self) -> None:
        rolled = self.wal.take_rolled()
        if rolled:
            self.out_for_flush.extend(rolled)
            erlang.send(self.names.segment_writer, ("rolled", rolled))

    def ops_for(self, uid: str) -> list[Any]:
        ops = [op for r in self.out_for_flush for op in r.ops.get(uid, ())]
        current = self.wal.current_op(uid)
        return ops + ([current] if current is not None else [])
