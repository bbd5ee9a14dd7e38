"""The node's segment writer (ra's `ra_log_segment_writer`): the one process that
touches members' segment and snapshot files.

Rules of this module:
* `("rolled", [RolledFile, ...])` from the WAL writer: append each file's ops
  to each member's segments (fsynced), oldest file first, then tell the WAL
  writer `("$flushed", path)` so it may delete the WAL file.
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
                    for uid, ops in r.ops.items():
                        if os.path.isdir(os.path.join(s.data_dir, "members", uid)):
                            s.store(uid).flush_segments(ops)
                    erlang.send(s.names.wal, ("$flushed", r.path))
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

    def store(self, uid: str) -> MemberStore:
        if uid not in self.stores:
            self.stores[uid] = MemberStore(self.data_dir, uid, sync=self.sync)
        return self.stores[uid]
