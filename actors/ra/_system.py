"""A node's ra system: its supervision tree and its member configurations on disk.

The tree (names from `SystemNames`), `rest_for_one` because each child depends
on the ones before it::

    ra_<system>_sup (rest_for_one)
    ├── ra_<system>_segment_writer   segment and snapshot files
    ├── ra_<system>_log_wal          the shared WAL, group commit
    └── ra_<system>_server_sup (one_for_one)
        └── <server name> ...        one RaServer per member on this node

If the WAL writer dies, the members restart after it and recover from disk; a
member that dies is restarted alone. Acknowledged entries are on disk before
they are acknowledged, so no restart loses one.

Member configurations are kept in ``<data_dir>/servers/<name>.cfg`` so that
`restart_server` can bring a stopped member back with its cluster, machine and
storage uid.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from supervision import supervisor

from .. import erlang, gen_server
from .._terms import Pid
from ._member_store import check_uid
from ._names import SystemNames, member_uid
from ._records import atomic_write, dumps, encode, loads, make_dirs, scan
from ._segment_writer import SegmentWriter
from ._server import RaServer
from ._trust import UntrustedDataDir, secure_data_dir
from ._wal_writer import WalWriter

DATA_DIR_ENV = "ERLPY_RA_DATA_DIR"

log = logging.getLogger("actors.ra")

MEMBER_SHUTDOWN_MS = 5000  # a member's shutdown time under its supervisor


def default_data_dir(node_name: str) -> str:
    """`$ERLPY_RA_DATA_DIR/<node>` or `~/.erlpy/ra/<node>`: derived from the node name."""
    base = os.environ.get(DATA_DIR_ENV) or str(Path.home() / ".erlpy" / "ra")
    return os.path.join(base, member_uid("node", node_name))


class _SystemSup(supervisor.Supervisor):
    def init(self, args: tuple[str, dict[str, Any]]) -> Any:
        system, opts = args
        names = SystemNames(system)
        flags = {"strategy": "rest_for_one", "intensity": 5, "period": 10}
        return ("ok", (flags, [
            {"id": "segment_writer",
             "start": (gen_server.start_link, [("local", names.segment_writer), SegmentWriter,
                                               (system, opts)])},
            {"id": "wal",
             "start": (gen_server.start_link, [("local", names.wal), WalWriter, (system, opts)])},
            {"id": "server_sup", "type": "supervisor",
             "start": (supervisor.start_link, [("local", names.server_sup), _ServerSup,
                                               (system, opts["data_dir"])])},
        ]))


class _ServerSup(supervisor.Supervisor):
    """one_for_one over the members. When it (re)starts inside a running system (after a
    crash of the WAL writer, say), it brings back every member that was running then."""

    def init(self, args: tuple[str, str]) -> Any:
        _system, directory = args
        running = [c for c in _configs(directory) if c.get("running")]
        _await_orphans([c["name"] for c in running])
        return ("ok", ({"strategy": "one_for_one", "intensity": 10, "period": 10},
                       [_member_spec(c) for c in running]))


def _await_orphans(names: list[str], shutdown_ms: int = MEMBER_SHUTDOWN_MS) -> None:
    """Members of a server supervisor that was killed outlive it for a moment: they trap
    exits, so its death is a message each reaches in turn. Wait for each member still
    registered, as that supervisor would have at its shutdown, and kill one that takes over
    `shutdown_ms`: the new members need their names (a start while the old one is still
    registered fails with already_started, and the restarts it costs can use up the
    system supervisor's intensity)."""
    member_call = (RaServer.__name__, "init", 1)
    for name in names:
        pid = erlang.whereis(name)
        if not isinstance(pid, Pid) or erlang.process_info(pid, "initial_call") != \
                ("initial_call", member_call):
            continue  # gone, or not a member: a start under its name fails as in OTP
        ref = erlang.monitor("process", pid)

        def down(m: Any, ref: Any = ref) -> bool:
            return type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref

        if erlang.receive(down, shutdown_ms) is erlang.TIMEOUT:
            erlang.exit(pid, "kill")
            erlang.receive(down, "infinity")  # a kill takes effect at once


def start(system: str = "default", data_dir: str | None = None, **opts: Any) -> Any:
    """Start the system's tree on this node, unlinked from the caller. Idempotent."""
    if erlang.whereis(SystemNames(system).sup) != "undefined":
        return "ok"
    trapping = erlang.process_flag("trap_exit", True)  # a failed start must not kill us
    try:
        result = start_link(system, data_dir, **opts)
    finally:
        erlang.process_flag("trap_exit", trapping)
    match result:
        case ("ok", pid):
            erlang.unlink(pid)  # the system outlives whoever started it (an rpc, say)
            erlang.receive(lambda m: m == ("EXIT", pid, "normal"), 0)
            return "ok"
        case ("error", ("already_started", _pid)):
            return "ok"
        case ("error", reason):
            erlang.receive(lambda m: type(m) is tuple and len(m) == 3 and m[0] == "EXIT"
                           and m[2] == reason, 0)  # the failed start's exit signal
            return ("error", reason)
    return result


def start_link(system: str = "default", data_dir: str | None = None, **opts: Any) -> Any:
    """Start the system's tree linked to the caller (to put it under a supervisor):
    ("ok", pid) | ("error", reason). A data dir that others could have written is refused,
    ("error", ("untrusted_data_dir", why)), before anything in it is read (see `_trust`)."""
    opts["data_dir"] = os.path.abspath(data_dir or default_data_dir(erlang.node()))
    try:
        secure_data_dir(opts["data_dir"])
    except UntrustedDataDir as exc:
        log.error("ra system %s: %s", system, exc)
        return ("error", ("untrusted_data_dir", str(exc)))
    make_dirs(os.path.join(opts["data_dir"], "servers"))
    for cfg in _configs(opts["data_dir"]):  # a new system: nothing of it runs yet
        if cfg.get("running"):
            _write_config({**cfg, "running": False})
    return supervisor.start_link(("local", SystemNames(system).sup), _SystemSup, (system, opts))


def stop(system: str = "default") -> Any:
    """Stop the system's tree on this node."""
    sup = erlang.whereis(SystemNames(system).sup)
    if sup == "undefined":
        return ("error", "system_not_started")
    return gen_server.stop(sup, "shutdown", 10000)


def data_dir(system: str) -> str:
    return str(gen_server.call(SystemNames(system).segment_writer, "data_dir", "infinity"))


def _cfg_path(system: str, name: str, directory: str | None = None) -> str:
    base = directory or data_dir(system)
    return os.path.join(base, "servers", check_uid(member_uid("s", name)) + ".cfg")


def _configs(directory: str) -> list[dict[str, Any]]:
    """Every member config stored under the data dir `directory`."""
    folder = os.path.join(directory, "servers")
    found = []
    for file in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if file.endswith(".cfg"):
            cfg = _read_config(os.path.join(folder, file))
            if cfg is not None:
                found.append(cfg)
    return found


def _read_config(path: str) -> dict[str, Any] | None:
    """The config in `path`; None if there is none. A file that holds no whole config (torn,
    truncated) is logged as an error: its member will not be restarted."""
    try:
        with open(path, "rb") as f:
            found = scan(f.read(), path)
    except FileNotFoundError:
        return None
    if not found.payloads:
        log.error("ra member config %s is damaged (%s): that member will not be restarted; "
                  "restore the file or start the member again", path,
                  found.detail or "empty file")
        return None
    return loads(found.payloads[0], path, 0)  # type: ignore[return-value]


def _write_config(cfg: dict[str, Any]) -> None:
    path = _cfg_path(cfg["system"], cfg["name"], cfg["data_dir"])
    atomic_write(path, [encode(dumps(cfg))])


MEMBER_OPTIONS = ("tick_ms", "election_ticks", "snapshot_interval", "machine_tick_ms",
                  "max_batch", "max_inflight", "commit_notice", "notice_delay_ms")


def new_member_config(system: str, cluster_name: str, name: str, machine: Any,
                      members: list[tuple[str, str]], opts: dict[str, Any]) -> dict[str, Any]:
    """A fresh member's config, with a uid naming this incarnation of it. Member options
    not in `opts` default to those the system was started with."""
    defaults = gen_server.call(SystemNames(system).segment_writer, "options", "infinity")
    defaults = {k: v for k, v in defaults.items() if k in MEMBER_OPTIONS}
    return {**defaults, **opts, "system": system, "cluster_name": cluster_name, "name": name,
            "machine": machine, "members": [tuple(m) for m in members],
            "uid": f"{member_uid(cluster_name, name)}_{secrets.token_hex(4)}",
            "data_dir": data_dir(system)}


def save_config(cfg: dict[str, Any]) -> None:
    _write_config(cfg)


def load_config(system: str, name: str) -> dict[str, Any] | None:
    return _read_config(_cfg_path(system, name))


def forget_config(system: str, name: str) -> None:
    try:
        os.remove(_cfg_path(system, name))
    except FileNotFoundError:
        pass


def _member_spec(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"id": cfg["name"], "restart": "transient", "shutdown": MEMBER_SHUTDOWN_MS,
            "start": (gen_server.start_link, [("local", cfg["name"]), RaServer, cfg])}


def start_member(cfg: dict[str, Any]) -> Any:
    """Start (or restart) a member under the server supervisor: "ok" | ("error", r).
    Its config is marked running, so a restart of the server supervisor brings it back."""
    names = SystemNames(cfg["system"])
    supervisor.delete_child(names.server_sup, cfg["name"])  # a stopped earlier incarnation
    match supervisor.start_child(names.server_sup, _member_spec(cfg)):
        case ("ok", _pid) | ("ok", _pid, _):
            _write_config({**cfg, "running": True})
            return "ok"
        case ("error", ("already_started", _pid)) | ("error", ("already_present", _pid)):
            return ("error", "already_started")
        case ("error", (reason, dict(_child_spec))):  # OTP's {error, {What, Child}}
            return ("error", reason)
        case ("error", reason):
            return ("error", reason)
    return ("error", "unexpected")


def stop_member(system: str, name: str) -> Any:
    """Stop a member's process; its data stays. "ok" | ("error", "not_found")."""
    names = SystemNames(system)
    result = supervisor.terminate_child(names.server_sup, name)
    if result != "ok":
        return ("error", "not_found")
    supervisor.delete_child(names.server_sup, name)
    cfg = load_config(system, name)
    if cfg is not None:
        _write_config({**cfg, "running": False})
    return "ok"
