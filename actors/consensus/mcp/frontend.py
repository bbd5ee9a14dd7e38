"""The front end's hand on the cluster: tool calls with retries, progress, cancellation,
status and audit reads. Blocking and thread-safe; the MCP server calls it from worker
threads (each gets its own shell process on this node).

Rules of this module:
- Calls go to the server on the node believed to lead (`_target`), which answers without
  a forward; any node would do (followers forward). After an error that says the leader
  moved or is gone, the front end asks the members who leads and tries again, with backoff,
  until RETRY_S has passed.
- A call is sent only to a node this node is connected to; a leader believed to be on a
  node that is down counts as no leader (nothing was sent, so nothing ran).
- What is retried: with an idempotency key, every transient error (no_leader, not_leader,
  no_quorum, leader_unavailable, leader_timeout, leader_changed, commit_timeout, noproc,
  nodedown): the key makes a retry safe, since the cluster answers a committed key from its
  log (Raft mode). Without a key only the errors that say nothing ran (no_leader,
  no_quorum, noproc): a retry of anything else could run the tool twice.
- Runs: each call has a run token, in the run context its runner keeps. Progress comes to
  the relay process, which hands it to the call's callback (only for calls that want it);
  a call returns only once the relay has handed on the reports that came before its
  answer, so none comes after the result.
  `cancel(token)` asks every node, until the call is over, to kill the runner of that run
  (`tool_runner.cancel_run`: exit signal "cancelled"; the supervisor restarts it, as after
  a timeout). Asking again covers a run that was still queued when the cancel came; a
  cancel that comes before the call starts makes it answer "cancelled" without a run.
- No module state: everything lives in a `Frontend` instance.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors import Exit, Pid, erlang, gen_server, net_kernel, rpc

from .. import client
from ..raft_mode import MEMBER_NAME
from . import schema

__all__ = ["RETRY_S", "Frontend", "ProgressFn", "leader_node", "transient"]

RETRY_S = 10.0  # how long a call keeps retrying transient errors
STATUS_MS = 1000
HAND_ON_MS = 1000  # at most this long, a call waits for the relay to hand on its progress
CANCEL_S, CANCEL_POLL_S = 60.0, 0.05  # how long, how often a cancel looks for its run
ProgressFn = Callable[[float, float | None, str | None], None]

_SAFE = frozenset({"no_leader", "no_quorum", "noproc", "not_leader"})
_UNKNOWN = frozenset({"leader_unavailable", "leader_timeout", "leader_changed",
                      "commit_timeout", "nodedown", "noconnection"})


def _reason(answer: Any) -> str | None:
    """The error's name: "no_leader" for ("error", "no_leader") or ("error", ("nodedown", n))."""
    reason = answer[1] if type(answer) is tuple and len(answer) == 2 else answer
    if type(reason) is tuple and reason:
        reason = reason[0]
    return reason if type(reason) is str else None


def transient(answer: Any, keyed: bool) -> bool:
    """Whether an ("error", reason) answer may be retried (see the module doc)."""
    if type(answer) is not tuple or answer[:1] != ("error",):
        return False
    reason = _reason(answer)
    return reason in _SAFE or (keyed and reason in _UNKNOWN)


@dataclass
class _Run:
    on_progress: ProgressFn | None
    cancelled: bool = False


@dataclass
class Frontend:
    """The cluster `nodes` (their consensus servers), in `mode` ("poc"/"raft"; None: ask).
    `os_pids` names the OS pids of nodes this host started (shown in the status)."""

    nodes: list[str]
    mode: str | None = None
    os_pids: dict[str, int] = field(default_factory=dict)
    retry_s: float = RETRY_S
    _target: str | None = None
    _runs: dict[str, _Run] = field(default_factory=dict)
    _precancelled: set[str] = field(default_factory=set)  # cancelled before they started
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _relay: Pid | None = None
    _tools: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self) -> None:
        """Start the relay process (on this node) and learn the mode and the tools."""
        self._relay = erlang.spawn(self._relay_loop)
        if self.mode is None:
            self.mode = next((s["mode"] for s in self._statuses().values()
                              if isinstance(s, dict)), None)
        self.list_tools()

    def stop(self) -> None:
        if self._relay is not None:
            erlang.send(self._relay, "stop")
            self._relay = None

    # -- tools ------------------------------------------------------------------------------

    def list_tools(self) -> list[dict[str, Any]]:
        """The cluster's tools, described from a live node's registry (cached)."""
        for node in self._nodes_to_try():
            try:
                found = rpc.call(node, "actors.consensus.mcp.schema", "describe_node", [], 5000)
            except Exit:
                continue
            if type(found) is tuple and found[0] == "ok":
                self._tools = {d["name"]: d for d in found[1]}
                break
        return [self._tools[n] for n in sorted(self._tools)]

    def tool(self, name: str) -> dict[str, Any] | None:
        return self._tools.get(name)

    def call_tool(self, name: str, args: dict[str, Any], key: Any = None,
                  on_progress: ProgressFn | None = None,
                  token: str | None = None) -> tuple[str, Any]:
        """("ok", result) | ("error", reason), retrying as the module doc says. `token`
        names the run for `cancel` (default: a fresh one)."""
        token = token or uuid.uuid4().hex
        with self._lock:
            if token in self._precancelled:
                self._precancelled.discard(token)
                return ("error", "cancelled")
            self._runs[token] = _Run(on_progress)
        try:
            return self._call_with_retries(name, args, key, token)
        finally:
            if on_progress is not None:
                self._progress_handed_on()
            with self._lock:
                self._runs.pop(token, None)

    def _progress_handed_on(self) -> None:
        """Before a call with progress returns: the relay hands on what it has. The tool's
        reports left the leader's node before its answer, over the same connection, so
        they are in the relay's mailbox already; without this a busy machine could run
        the caller first, and the last reports would come after the result (or never)."""
        relay = self._relay
        if relay is None:
            return
        ref = erlang.monitor("process", relay)  # a dead relay answers with its DOWN
        erlang.send(relay, ("handed_on", erlang.self(), ref))
        erlang.receive(lambda m: type(m) is tuple and (m == ("handed_on", ref) or (
            len(m) == 5 and m[0] == "DOWN" and m[1] == ref)), HAND_ON_MS)
        erlang.demonitor(ref, ["flush"])

    def _call_with_retries(self, name: str, args: dict[str, Any], key: Any,
                           token: str) -> tuple[str, Any]:
        with self._lock:
            wants_progress = self._runs[token].on_progress is not None
        ctx = {"listener": self._relay, "token": token} if wants_progress else {"token": token}
        deadline = time.monotonic() + self.retry_s
        backoff = 0.02
        timeout = self._call_timeout(name)
        while True:
            target = self._target or self._find_leader() or self.nodes[0]
            if target in erlang.nodes() or net_kernel.connect_node(target):
                answer = client.execute_tool((client.SERVER_NAME, target), name, args, key,
                                             ctx, timeout)
            else:  # not connected (its node is down): nothing is sent, nothing runs
                answer = ("error", "no_leader")
            if not transient(answer, key is not None) or self._cancelled(token):
                return answer
            self._target = None
            if time.monotonic() + backoff > deadline:
                return answer
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.5)
            self._find_leader()

    def _call_timeout(self, name: str) -> int | str:
        described = self._tools.get(name)
        timeout = described["timeout"] if described else client.CALL_TIMEOUT
        return "infinity" if timeout == "infinity" else int(timeout) + client.CALL_TIMEOUT

    def _cancelled(self, token: str) -> bool:
        with self._lock:
            run = self._runs.get(token)
            return run is not None and run.cancelled

    def cancel(self, token: str) -> bool:
        """Cancel the run `token` (see the module doc); returns at once. True if the call
        is going on."""
        with self._lock:
            run = self._runs.get(token)
            if run is None:  # not started yet (or over: then the mark is never read)
                if len(self._precancelled) < 10000:
                    self._precancelled.add(token)
                return False
            run.cancelled = True
        threading.Thread(target=self._kill_run, args=(token,), daemon=True).start()
        return True

    def _kill_run(self, token: str) -> None:
        deadline = time.monotonic() + CANCEL_S
        while time.monotonic() < deadline:
            with self._lock:
                if token not in self._runs:
                    return  # the call is over
            for node in self._nodes_to_try():
                try:
                    if rpc.call(node, "actors.consensus.tool_runner", "cancel_run", [token],
                                STATUS_MS) is True:
                        return
                except Exit:
                    continue
            time.sleep(CANCEL_POLL_S)

    def _relay_loop(self) -> None:
        """(the relay process) Progress, to the runs it belongs to."""
        while True:
            msg = erlang.receive()
            match msg:
                case ("erlmcp_progress", token, progress, total, message):
                    with self._lock:
                        run = self._runs.get(token)
                    if run is not None and run.on_progress is not None:
                        run.on_progress(progress, total, message)
                case ("handed_on", Pid() as caller, ref):
                    erlang.send(caller, ("handed_on", ref))
                case "stop":
                    return

    # -- who leads --------------------------------------------------------------------------

    def _statuses(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for node in self.nodes:
            found[node] = client.get_status((client.SERVER_NAME, node), STATUS_MS)
        return found

    def _find_leader(self) -> str | None:
        for node in self._nodes_to_try():
            status = client.get_status((client.SERVER_NAME, node), STATUS_MS)
            leader = leader_node(status)
            if leader is not None:
                self._target = leader
                return leader
        return None

    def _nodes_to_try(self) -> list[str]:
        first = [self._target] if self._target in self.nodes else []
        return first + [n for n in self.nodes if n not in first]

    # -- reads ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """mode, members, leader, each node's role (and OS pid when known)."""
        statuses = self._statuses()
        per_node: dict[str, Any] = {}
        leaders = set()
        for node, status in statuses.items():
            up = isinstance(status, dict)
            info: dict[str, Any] = {"up": up, "os_pid": self._os_pid(node, up)}
            if up:
                info.update({k: schema.jsonable(status.get(k)) for k in
                             ("role", "term", "commit_index", "execution_count",
                              "audit_log_size")})
                if (leader := leader_node(status)) is not None:
                    leaders.add(leader)
            else:
                info["error"] = schema.jsonable(status)
            per_node[node] = info
        return {"mode": self.mode, "members": list(self.nodes),
                "leader": leaders.pop() if len(leaders) == 1 else None,
                "front_end": erlang.node(), "nodes": per_node}

    def _os_pid(self, node: str, up: bool) -> int | None:
        if node in self.os_pids:
            return self.os_pids[node]
        if not up or node.split("@")[-1] not in ("127.0.0.1", "localhost", os.uname().nodename):
            return None
        try:
            found = rpc.call(node, "os", "getpid", [], STATUS_MS)
        except Exit:
            return None
        if type(found) is int:
            self.os_pids[node] = found
            return found
        return None

    def audit_page(self, after: int | None, limit: int) -> tuple[str, Any]:
        """("ok", (entries oldest first with execution_id > after, at most `limit`; more?))
        from the leader's view (Raft: a consistent read), or ("error", reason)."""
        query = {"node": None, "since": after, "limit": limit + 1, "order": "oldest",
                 "consistent": True}
        answer: Any = ("error", "no_leader")
        for node in self._nodes_to_try():
            try:
                answer = gen_server.call((client.SERVER_NAME, node), ("audit", query), 10000)
            except Exit as exc:
                answer = ("error", client.call_failure(exc.reason))
                continue
            if type(answer) is tuple and answer[0] == "ok":
                return ("ok", (answer[1][:limit], len(answer[1]) > limit))
        return answer


def leader_node(status: Any) -> str | None:
    """The leader's node from a server's status (POC: a pid; Raft: a member id)."""
    if not isinstance(status, dict):
        return None
    leader = status.get("leader_pid")
    if type(leader) is Pid:
        return erlang.node(leader)
    if type(leader) is tuple and len(leader) == 2 and leader[0] == MEMBER_NAME:
        return str(leader[1])
    return None
