"""Client-side coalescing of `ra.pipeline_command`: one relay per (caller, server id).

Rules of this module:
* The first `pipeline_command` of a process to a server id spawns a *relay* on the
  caller's node and keeps its pid in the caller's process dictionary (no shared
  table: several nodes live in one OS process). Later commands go to the relay by
  a local send, which costs no pickling and no network frame.
* The relay takes everything queued in its mailbox (up to `MAX_BATCH`) and casts it
  to the server as one `("$ra_pipeline_many", [(command, correlation), ...], caller)`.
  One caller has one relay per server, so the server sees the caller's commands in
  the order they were given. The server answers the caller directly, as before.
* A batch that cannot be sent (a command that does not pickle) is sent again one
  command at a time; each command that still cannot be sent is answered to the
  caller as the leader answers a command it cannot replicate:
  `("ra_event", server_id, ("applied", [(correlation, ("error", ("bad_command", why)))]))`.
* The relay monitors its caller and ends when the caller ends.
* A member on the caller's own node gets each command directly, by a local cast (no
  pickling, no frame): a relay would only add a process wake-up per command, and the
  member batches what waits in its mailbox itself (`_server._queue`). The order is
  the same: one sender, one receiver, one mailbox.
"""

from __future__ import annotations

from typing import Any

from .. import erlang, gen_server

MAX_BATCH = 1024  # commands per cast at most
_KEY = "$ra_relay"


def send(server_id: tuple[str, str], command: Any, correlation: Any) -> None:
    """Hand one pipelined command to this process's relay for `server_id`, or, for a
    member on this node, to the member itself (see the module rules)."""
    if server_id[1] == erlang.node():
        gen_server.cast(server_id[0], ("$ra_pipeline", command, correlation, erlang.self()))
        return
    key = (_KEY, server_id)
    relay = erlang.get(key)
    if relay == "undefined" or not erlang.is_process_alive(relay):
        relay = erlang.spawn(_relay, erlang.self(), server_id)
        erlang.put(key, relay)
    erlang.send(relay, (_KEY, command, correlation))


def send_many(server_id: tuple[str, str], items: list[tuple[Any, Any]]) -> None:
    """Several `(command, correlation)` at once: one local cast to a member on this node
    (proposed together), else each through the relay (which coalesces them)."""
    if server_id[1] == erlang.node():
        if items:
            gen_server.cast(server_id[0], ("$ra_pipeline_many", items, erlang.self()))
        return
    for command, correlation in items:
        send(server_id, command, correlation)


def _relay(caller: Any, server_id: tuple[str, str]) -> None:
    ref = erlang.monitor("process", caller)
    receive = erlang.receive
    while True:
        msg = receive(None, "infinity")
        batch: list[tuple[Any, Any]] = []
        while True:
            if type(msg) is tuple and len(msg) == 3 and msg[0] == _KEY:
                batch.append((msg[1], msg[2]))
            elif type(msg) is tuple and msg[:2] == ("DOWN", ref):
                _cast(server_id, batch, caller)
                return
            if len(batch) >= MAX_BATCH:
                break
            msg = receive(None, 0)
            if msg is erlang.TIMEOUT:
                break
        _cast(server_id, batch, caller)


def _cast(server_id: tuple[str, str], batch: list[tuple[Any, Any]], caller: Any) -> None:
    if not batch:
        return
    try:
        gen_server.cast(server_id, ("$ra_pipeline_many", batch, caller))
        return
    except Exception:  # some command does not pickle: find it (see the module rules)
        pass
    for command, correlation in batch:
        try:
            gen_server.cast(server_id, ("$ra_pipeline_many", [(command, correlation)], caller))
        except Exception as exc:
            why = f"cannot be sent: {exc!r:.200}"
            erlang.send(caller, ("ra_event", server_id, (
                "applied", [(correlation, ("error", ("bad_command", why)))])))
