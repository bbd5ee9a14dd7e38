"""A node driven over stdin/stdout, for tests/test_dist_netns.py (run inside a network namespace).

    python -m tests.netns_driver --name a@10.201.7.1 --listen tcp://10.201.7.1:20001 \\
        --cookie C --other b@10.201.7.2=tcp://10.201.7.2:20002

It starts its node (no port mapper: the other node is a seed), connects to the other node,
spawns a process there and monitors it, and prints `CONNECTED`. Then it obeys lines on stdin:
    cut-wait    wait (at most 10 s) for that monitor's DOWN: prints `DOWN <reason> <ms>`, ms
                counted from the command, or `NODOWN` if none came
    reconnect   connect again (retrying, at most 10 s), spawn and monitor a new process there,
                check an rpc: prints `RECONNECTED <ms>` or `NORECONNECT <why>`
    quit        stop
Every line is flushed at once; anything unexpected prints `ERROR <what>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from actors import erlang, net_kernel, rpc

WAIT_S = 10.0


def _say(line: str) -> None:
    print(line, flush=True)


def _hold() -> None:
    erlang.receive(lambda m: m == "stop", 60_000)


def _connect(other: str) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if net_kernel.connect_node(other) is True:
            return True
        erlang.receive(lambda _: False, 100)  # pause between attempts (the shell's mailbox)
    return False


def _watch(other: str) -> Any:
    pid = erlang.spawn(other, _hold)
    return erlang.monitor("process", pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--other", required=True, help="name@host=tcp://host:port")
    parser.add_argument("--net-ticktime", type=int, default=800)
    args = parser.parse_args(argv)
    other, _, address = args.other.partition("=")
    result = net_kernel.start(args.name, args.cookie, listen=args.listen, epmd=False,
                              seeds={other: address}, net_ticktime=args.net_ticktime)
    if result[0] != "ok":
        _say(f"ERROR start {result!r}")
        return 1
    if not _connect(other):
        _say("ERROR connect")
        return 1
    ref = _watch(other)
    if rpc.call(other, erlang.node, [], 3000) != other:
        _say("ERROR rpc")
        return 1
    _say("CONNECTED")
    for line in sys.stdin:
        command = line.strip()
        t0 = time.monotonic()
        if command == "cut-wait":
            down = erlang.receive(lambda m, r=ref: type(m) is tuple and len(m) == 5
                                  and m[0] == "DOWN" and m[1] == r, int(WAIT_S * 1000))
            if down is erlang.TIMEOUT:
                _say("NODOWN")
            else:
                _say(f"DOWN {down[4]} {(time.monotonic() - t0) * 1000:.0f}")
        elif command == "reconnect":
            if not _connect(other):
                _say("NORECONNECT connect_node")
                continue
            ref = _watch(other)
            if rpc.call(other, erlang.node, [], 3000) != other:
                _say("NORECONNECT rpc")
                continue
            _say(f"RECONNECTED {(time.monotonic() - t0) * 1000:.0f}")
        elif command == "quit":
            break
        else:
            _say(f"ERROR unknown command {command!r}")
    net_kernel.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
