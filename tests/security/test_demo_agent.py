"""The demo's (and Jepsen's) agent survives whoever connects to it first (issue 13,
finding 15). Other local users connect before the controller: one sends garbage, one a
forged line, one says nothing; the controller is still served, and a bad line on its own
connection gets a refusal, not the agent's death."""

from __future__ import annotations

import hmac
import socket
from typing import Any

import cloudpickle

from actors import erlang
from actors.node import Node
from demos.lab import agent
from tests.helpers import recv
from tests.security._nobody import as_nobody


def _line(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "the agent closed the connection"
        buf += chunk
    return buf


def _forged(obj: Any) -> bytes:
    body = cloudpickle.dumps(obj).hex().encode()
    return hmac.new(b"guessed-cookie", body, "sha256").hexdigest().encode() + b" " + body + b"\n"


def test_the_agent_serves_its_controller_whoever_connects_first(dist_node: Node) -> None:
    erlang.spawn(agent.agent_serve, erlang.self())
    _, port = recv(lambda m: type(m) is tuple and m[0] == "agent")

    def squat(keep: list[Any]) -> list[str]:
        seen = []
        for line in (b"garbage\n", _forged((print, ("pwned",))), None):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            keep.append(s)
            if line is not None:
                s.sendall(line)
                s.settimeout(5)
                seen.append("closed" if s.recv(100) == b"" else "answered")
        return seen

    with as_nobody(squat) as seen:  # the attacker's connections are still open
        assert seen == ["closed", "closed"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as controller:
            controller.sendall(agent.seal((erlang.node, ())))
            assert agent.unseal(_line(controller)) == ("ok", erlang.node())
            controller.sendall(b"not a sealed line\n")
            outcome, why = agent.unseal(_line(controller))
            assert outcome == "raised" and "bad HMAC" in why
            controller.sendall(agent.seal((sum, ([1, 2, 3],))))
            assert agent.unseal(_line(controller)) == ("ok", 6)
