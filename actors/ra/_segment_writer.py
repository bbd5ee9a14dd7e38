"""The node's segment writer (ra's `ra_log_segment_writer`): the one process that
touches members' segment and snapshot files.

Rules of this module:
* `("rolled", [RolledFile, ...])` from the WAL writer: append each file's ops
  to each member's segments (fsynced, as a batch naming the WAL file), oldest
  file first, then tell the WAL writer `("$flushed", path)` so it may delete
  the WAL file. If a member's segments are corrupt, its ops are not written
  and that file, and so every later one, is never reported flushed: the WAL
  keeps them (safety over disk space) until the operator repairs or deletes
  the member (logged).
* Members recover (`("recover", uid, wal_ops)`) and store snapshots
  (`("snapshot", uid, meta, data)`) through calls to this process, so no file
  is ever read while it is half written. A corrupt file gives
  `("error", ("corrupt_log", "<file> at offset <n>: ..."))` to the member, which
  stops with that reason.
* Ops for a uid this node does not know (a deleted member) are dropped.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import erlang, gen_server
from ._member_store import MemberStore
from ._names import SystemNames
from ._records import CorruptLog
from ._wal import RolledFile

log = logging.getLogger("actors.ra")


class SegmentWriter(gen_server.GenServer):
    """State: the data dir, the system's names and one MemberStore per known uid."""

    def init(self, args: tuple[str, dict[str, Any]]) -> Any:
        system, opts = args
        return ("ok", _State(SystemNames(system), opts))

    def handle_info(self, msg: Any, s: _State) -> Any:
        match msg:
            case ("rolled", rolled):
                for r in rolled:
                    if s.flush(r) and not s.stuck:
                        erlang.send(s.names.wal, ("$flushed", r.path))
                    else:
                        s.stuck = True
        return ("noreply", s)

    def handle_call(self, request: Any, _from: Any, s: _State) -> Any:
        match request:
            case ("recover", uid, wal_ops):
                try:
                    return ("reply", ("ok", s.store(uid).recover(wal_ops)), s)
                except CorruptLog as exc:
                    log.error("ra member %s: %s", uid, exc)
                    s.stores.pop(uid, None)
                    return ("reply", ("error", ("corrupt_log", str(exc))), s)
            case ("snapshot", uid, meta, data):
                s.store(uid).save_snapshot(meta, data)
                return ("reply", "ok", s)
            case ("delete", uid):
                s.store(uid).delete()
                s.stores.pop(uid, None)
                return ("reply", "ok", s)
            case "data_dir":
                return ("reply", s.data_dir, s)
            case "options":
                return ("reply", dict(s.opts), s)
        return ("reply", ("error", ("bad_request", request)), s)

    def terminate(self, reason: Any, s: Any) -> Any:
        if isinstance(s, _State):
            for store in s.stores.values():
                store.close()
        return "ok"


class _State:
    def __init__(self, names: SystemNames, opts: dict[str, Any]) -> None:
        self.names = names
        self.opts = opts
        self.data_dir: str = opts["data_dir"]
        self.sync: bool = opts.get("wal_sync", True)
        self.stores: dict[str, MemberStore] = {}
        self.stuck = False  # a rolled file could not be flushed: keep it and all later

    def flush(self, r: RolledFile) -> bool:
        """Append the rolled file's ops to each known member's segments; False if a
        member's segments are corrupt (logged; the others are still written)."""
        ok = True
        for uid, ops in r.ops.items():
            if not os.path.isdir(os.path.join(self.data_dir, "members", uid)):
                continue
            try:
                self.store(uid).segments.write(ops, source=r.number)
            except CorruptLog as exc:
                log.error("ra member %s: %s; keeping WAL file %s", uid, exc, r.path)
                self.stores.pop(uid, None)
                ok = False
        return ok

    def store(self, uid: str) -> MemberStore:
        if uid not in self.stores:
            self.stores[uid] = MemberStore(self.data_dir, uid, sync=self.sync)
        return self.stores[uid]
