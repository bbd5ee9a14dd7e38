"""`peer`: start and stop nodes in new OS processes, as OTP's `peer` module.

    ("ok", peer_pid, node) = peer.start(name="n2")   # or start_link
    rpc.call(node, ...)
    peer.stop(peer_pid)

`peer_pid` is a local controller process. The child node lives exactly as long as it:
when the controller dies, however it dies (killed too), the pipe to the child's standard
input closes and the child halts. So linking to `peer_pid` (start_link does) ties the
child's life to the caller's, and a dead starter OS process leaves no orphan node.
The caller's node must be distributed (`net_kernel.start`); the child gets its cookie.
"""

from __future__ import annotations

import os
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from . import _context, gen_server
from ._terms import Error, Exit, Pid

__all__ = ["get_state", "os_pid", "start", "start_link", "stop"]


class _Controller(gen_server.GenServer):
    """State: (popen, node name)."""

    def init(self, args: Any) -> Any:
        return ("ok", args)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        popen, _node = state
        if request == "os_pid":
            return ("reply", popen.pid, state)
        if request == "halt":
            _halt(popen, 5000)
            return ("reply", "ok", state)
        if request == "get_state":
            return ("reply", "running" if popen.poll() is None else "down", state)
        return ("reply", ("error", "bad_request"), state)


def _halt(popen: subprocess.Popen[str], graceful_ms: int) -> None:
    """Close the child's stdin (it halts on EOF); SIGKILL it if it is still there later."""
    try:
        if popen.stdin is not None:
            popen.stdin.close()
    except OSError:
        pass
    try:
        popen.wait(graceful_ms / 1000.0)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(5.0)


_MAP_KEYS = {"name": "name", "host": "host", "args": "args", "env": "env",
             "wait_boot": "wait_boot", "exec_prefix": "exec_prefix",
             "net_ticktime": "net_ticktime", "connection": None}


def _from_map(options: dict[Any, Any]) -> tuple[Any, dict[str, Any]]:
    """OTP's peer:start(#{...}) form: (name, keyword options). badarg for a key we do not
    know, and for a `connection` other than distribution (the only one we have)."""
    name = options.get("name")
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key not in _MAP_KEYS:
            raise Error(("badarg", ("option", key)))
        if key == "connection":
            raise Error(("badarg", ("connection", value)))  # standard_io / a port: not here
        if key == "env" and type(value) is list:
            value = dict(value)  # OTP's [{Name, Value}]
        if key != "name":
            kwargs[_MAP_KEYS[key]] = value  # type: ignore[index]
    return name, kwargs


def _check_options(name: Any, host: Any, args: Any, env: Any, wait_boot: Any) -> None:
    """badarg at once for options that cannot name or start a node."""
    if name is not None and (type(name) is not str or not name or "@" in name):
        raise Error(("badarg", ("name", name)))
    if type(host) is not str or not host or "@" in host:
        raise Error(("badarg", ("host", host)))
    if args is not None and (type(args) is not list
                             or any(type(a) is not str for a in args)):
        raise Error(("badarg", ("args", args)))
    if env is not None and (type(env) is not dict or any(
            type(k) is not str or type(v) is not str for k, v in env.items())):
        raise Error(("badarg", ("env", env)))
    if type(wait_boot) is not int or wait_boot < 0:
        raise Error(("badarg", ("wait_boot", wait_boot)))


def start(name: Any = None, *, host: str = "127.0.0.1", args: list[str] | None = None,
          env: dict[str, str] | None = None, wait_boot: int = 20000, link: bool = False,
          net_ticktime: int | None = None,
          exec_prefix: list[str] | None = None) -> tuple[str, Pid, str] | tuple[str, Any]:
    """Start node `name@host` in a new OS process and connect to it.

    `name` may also be OTP's options map: {"name": ..., "host": ..., "args": [...],
    "env": [(k, v)] or {k: v}, "wait_boot": ms}; other keyword options go alongside.
    Bad options raise Error(("badarg", what)) at once.

    Returns ("ok", peer_pid, node), or ("error", reason) if it does not come up within
    `wait_boot` ms. `args` are extra `python -m actors.node` arguments. `exec_prefix` (as
    OTP peer's `exec`) goes before the command, e.g. ["ip", "netns", "exec", ns]: it must
    exec the command, so that the OS pid (`os_pid`, `kill`) stays the node's."""
    if type(name) is dict:
        name, extra = _from_map(name)
        opts = {"host": host, "args": args, "env": env, "wait_boot": wait_boot,
                "net_ticktime": net_ticktime, "exec_prefix": exec_prefix, **extra}
        return start(name, link=link, **opts)
    _check_options(name, host, args, env, wait_boot)
    me = _context.self_process()
    local = me.node
    if local.dist is None:
        raise Error("not_alive")
    node = f"{name or 'peer-' + secrets.token_hex(4)}@{host}"
    command = [*(exec_prefix or []), sys.executable, "-m", "actors.node", "--name", node, "--peer",
               "--net-ticktime", str(net_ticktime or local.dist.config.net_ticktime),
               *(args or [])]
    # the cookie goes by the environment, which other users cannot read (argv they can)
    child_env = {**os.environ, **(env or {}), "ERLPY_COOKIE": local.dist.config.cookie}
    popen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=child_env, start_new_session=True)
    address = _wait_ready(popen, node, wait_boot)
    if address is None:
        _halt(popen, 0)
        return ("error", "timeout")
    local.dist.config.seeds[node] = address  # a new peer of an old name has a new address
    if not _connect(local.dist, node, 3):
        _halt(popen, 0)
        return ("error", "noconnection")
    starter = gen_server.start_link if link else gen_server.start
    _, pid = starter(_Controller(), (popen, node))
    local.at_exit(pid, lambda _reason: threading.Thread(
        target=_halt, args=(popen, 2000), daemon=True).start())
    return ("ok", pid, node)


def _connect(dist: Any, node: str, attempts: int) -> bool:
    """Connect, trying again if an attempt fails: one already under way when the peer came
    up (a send to the old node of that name) dials the old address and fails."""
    return any(dist.connect_wait(node) for _ in range(attempts))


def start_link(name: Any = None, **options: Any) -> Any:
    """`start` (also with OTP's options map), with the controller linked to the caller."""
    return start(name, link=True, **options)


def _wait_ready(popen: subprocess.Popen[str], node: str, wait_ms: int) -> str | None:
    """Read the child's `READY <name> <address>` line, within `wait_ms`."""
    deadline = time.monotonic() + wait_ms / 1000.0
    assert popen.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(popen.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                continue
            line = popen.stdout.readline()
            if not line:
                return None  # the child exited
            parts = line.split()
            if len(parts) == 3 and parts[0] == "READY" and parts[1] == node:
                return parts[2]
    return None


def stop(peer_pid: Pid) -> str:
    """Stop the peer node and its controller. "ok"; exits noproc if it is gone."""
    gen_server.call(peer_pid, "halt", 15000)
    try:
        gen_server.stop(peer_pid, "normal", 10000)
    except Exit as exc:
        if exc.reason == "noproc":
            raise
    return "ok"


def os_pid(peer_pid: Pid) -> int:
    """The child's OS pid (for tests that SIGKILL or SIGSTOP it)."""
    return gen_server.call(peer_pid, "os_pid")


def get_state(peer_pid: Pid) -> str:
    return gen_server.call(peer_pid, "get_state")


def kill(peer_pid: Pid, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the child OS process (tests: SIGKILL, SIGSTOP, SIGCONT)."""
    os.kill(os_pid(peer_pid), sig)
