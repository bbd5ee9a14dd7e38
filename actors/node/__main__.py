"""`python -m actors.node --name n1@127.0.0.1 --cookie-file PATH`: a node that stays up.

The equivalent of `erl -name n1@127.0.0.1 -setcookie ... -noshell`. The cookie comes from
`--cookie-file` (a file only its owner can read), else `$ERLPY_COOKIE`, else
`~/.erlpy.cookie`; `--cookie` works but warns, since every local user can read a process's
arguments. The node removes `ERLPY_COOKIE` from its own environment once read, so the
programs it starts do not inherit it. It prints
`READY <name> <address>` once it accepts connections, then runs until SIGTERM or SIGINT.
With `--peer` (used by `actors.peer`) it also stops when its standard input closes: the
node that started it is gone, or gave it up. `--cpu 2` binds every thread of the node
(ZeroMQ's I/O threads included) to CPU 2 before it starts, as `erl +sbt` binds schedulers.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from actors import net_kernel
from actors._affinity import bind_threads, parse_cpus
from actors._cookie import COOKIE_ENV, CookieError, read_cookie_file


def _seeds(values: list[str], *, lookup: bool = False) -> dict[str, str | None]:
    """name@host=tcp://host:port pairs; with `lookup`, a bare name@host too (its address then
    comes from the port mapper of its host)."""
    seeds: dict[str, str | None] = {}
    for value in values:
        name, _, address = value.partition("=")
        if not address and not (lookup and "@" in name):
            raise SystemExit(f"--seed/--address want name@host=tcp://host:port, got {value!r}")
        seeds[name] = address or None
    return seeds


def _cookie(cookie: str | None, cookie_file: str | None) -> str:
    """The cookie from the options or the environment; then drop it from the environment."""
    if cookie is not None and cookie_file is not None:
        raise SystemExit("give --cookie or --cookie-file, not both")
    if cookie is not None:
        logging.getLogger("actors.node").warning(
            "--cookie puts the cookie in this process's arguments, which every local user can "
            "read (/proc/%d/cmdline); use --cookie-file or $ERLPY_COOKIE", os.getpid())
    elif cookie_file is not None:
        try:
            cookie = read_cookie_file(cookie_file)
        except CookieError as exc:
            raise SystemExit(str(exc)) from None
    else:
        try:
            cookie = net_kernel.default_cookie()
        except CookieError as exc:
            raise SystemExit(str(exc)) from None
    os.environ.pop(COOKIE_ENV, None)  # children of this node do not inherit it
    return cookie


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.node", description=__doc__)
    parser.add_argument("--name", required=True, help="name@host, e.g. n1@127.0.0.1")
    parser.add_argument("--cookie", default=None,
                        help="discouraged: other local users can read it; use --cookie-file")
    parser.add_argument("--cookie-file", default=None,
                        help="a file holding the cookie, readable by its owner only "
                             "(default: $ERLPY_COOKIE, else ~/.erlpy.cookie)")
    parser.add_argument("--listen", default="tcp://127.0.0.1:0", help="ZeroMQ bind address")
    parser.add_argument("--advertise", default=None, help="the address peers dial")
    parser.add_argument("--net-ticktime", type=int, default=800, help="ms of silence = down")
    parser.add_argument("--seed", action="append", default=[],
                        help="a node to connect to at boot: name@host, or name@host=tcp://addr")
    parser.add_argument("--address", action="append", default=[],
                        help="name@host=tcp://addr: where a node listens, not dialled at boot")
    parser.add_argument("--no-epmd", action="store_true", help="do not use the port mapper")
    parser.add_argument("--peer", action="store_true", help="stop when stdin closes")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--cpu", default=None, metavar="LIST",
                        help="bind the node's threads to these CPUs, e.g. 2 or 0,2-3 (Linux)")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        try:
            bind_threads(parse_cpus(args.cpu))
        except (ValueError, OSError) as exc:
            parser.error(f"--cpu {args.cpu}: {exc}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    seeds = _seeds(args.seed, lookup=True)
    addresses = {name: address for name, address in {**_seeds(args.address), **seeds}.items()
                 if address is not None}
    cookie = _cookie(args.cookie, args.cookie_file)
    result = net_kernel.start(
        args.name, cookie, listen=args.listen, advertise=args.advertise,
        net_ticktime=args.net_ticktime, seeds=addresses, epmd=not args.no_epmd)
    from actors.node import default_node

    node = default_node()
    assert result[0] == "ok" and node.dist is not None
    for seed in seeds:  # try each seed once; the mesh does the rest
        if not net_kernel.connect_node(seed):
            logging.getLogger("actors.node").warning("seed %s is not reachable", seed)
    try:
        print(f"READY {node.name} {node.dist.address}", flush=True)
    except BrokenPipeError:  # the starter went away while we booted: nobody wants us
        node.stop()
        os._exit(0)
    if args.peer:  # the starter reads nothing more from our stdout: send the rest to stderr
        sys.stdout.flush()
        os.dup2(2, 1)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.peer:
        threading.Thread(target=_watch_stdin, args=(done,), daemon=True).start()
    while not done.wait(1.0):
        pass
    node.stop()
    sys.stdout.flush()
    os._exit(0)


def _watch_stdin(done: threading.Event) -> None:
    """A peer lives as long as the pipe from its starter: EOF (or "stop") ends it."""
    for line in sys.stdin:
        if line.strip() == "stop":
            done.set()
            return
    os._exit(0)  # the starter is gone: halt at once, as OTP's peer does


if __name__ == "__main__":
    sys.exit(main())
