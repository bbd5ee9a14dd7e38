"""The `erlmcp` command. `erlmcp serve --help` says what it does.

Rules of this module:
- stdout belongs to MCP in stdio mode: everything else (logs, the ready line) goes to
  stderr.
- Whatever ends `serve` (stdin closed, Ctrl-C, SIGTERM, an error), the nodes it started
  are stopped, the port mapper too, and a default data directory removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .cluster import DEFAULT_TOOLS, LocalCluster, join
from .frontend import RETRY_S, Frontend

__all__ = ["entry", "main", "parse_address"]

log = logging.getLogger("erlmcp")

STOP_TIMEOUT_S = 15.0  # after SIGTERM or Ctrl-C, stopping the nodes takes at most this


def parse_address(value: str) -> tuple[str, int]:
    """"HOST:PORT" -> (host, port); argparse's type for --http."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"--http wants HOST:PORT, e.g. 127.0.0.1:8765, "
                                         f"not {value!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="erlmcp", description="erlmcp's consensus service "
                                     "as an MCP server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start (or join) a cluster and serve MCP",
                           description="Start a local cluster (default: 3 nodes, Raft mode) "
                           "and serve its tools over MCP, on stdio unless --http is given.")
    serve.add_argument("--http", type=parse_address, metavar="HOST:PORT",
                       help="serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    serve.add_argument("--json-response", action="store_true",
                       help="with --http: answer each POST with plain JSON instead of an SSE "
                       "stream (about half the SDK's cost per call; no progress notifications)")
    serve.add_argument("--mode", choices=("raft", "poc"), default="raft")
    serve.add_argument("--nodes", type=int, default=3, help="how many nodes to start")
    serve.add_argument("--tools", default=DEFAULT_TOOLS, metavar="MODULE:ATTR",
                       help="the Tools registry to serve (a Tools, or a function returning "
                       "one); the default is the five erlmcp tools")
    serve.add_argument("--data-dir", default=None,
                       help="Raft data (kept); default: a fresh dir under the user's data "
                       "dir, removed on exit")
    serve.add_argument("--join", metavar="NODE", default=None,
                       help="front an existing cluster through NODE instead of starting one")
    serve.add_argument("--cookie-file", type=Path, default=None,
                       help="the cluster's cookie (with --join)")
    serve.add_argument("--retry-s", type=float, default=RETRY_S,
                       help="how long a call retries while the cluster has no leader")
    serve.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    if args.join and args.cookie_file is None:
        _parser().error("--join needs --cookie-file")
    if args.nodes < 1:
        _parser().error("--nodes is at least 1")
    previous = signal.signal(signal.SIGTERM, _terminate)
    cluster: LocalCluster | None = None
    front: Frontend | None = None
    try:
        if args.join:
            cookie = args.cookie_file.read_text().strip()
            nodes, os_pids = join(args.join, cookie), {}
            if not nodes:
                raise RuntimeError(f"no node of {args.join}'s cluster runs the service")
        else:
            cluster = LocalCluster(args.mode, args.nodes, args.tools, args.data_dir)
            nodes = cluster.start()
            os_pids = dict(cluster.os_pids)
        front = Frontend(nodes, None if args.join else args.mode, os_pids, args.retry_s)
        front.start()
        _serve(front, args.http, args.json_response)
    except BaseException as exc:
        if _interrupted(exc):
            # Stopping is bounded, like erl's -shutdown_time: if it hangs, every thread's
            # stack goes to stderr and the process exits 1 (its nodes halt as its pipes close).
            faulthandler.dump_traceback_later(STOP_TIMEOUT_S, exit=True)
            return 0
        if not isinstance(exc, RuntimeError | ValueError | TypeError | OSError | ImportError):
            raise
        print(f"erlmcp: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if front is not None:
            with contextlib.suppress(Exception):
                front.stop()
        if cluster is not None:
            cluster.stop()
    return 0


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C or SIGTERM: a KeyboardInterrupt, perhaps inside task groups' exception groups
    (with the cancellations it caused beside it)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = list(_leaves(exc))
        return any(isinstance(e, KeyboardInterrupt) for e in leaves) and all(
            isinstance(e, KeyboardInterrupt | asyncio.CancelledError) for e in leaves)
    return isinstance(exc, KeyboardInterrupt)


def _leaves(group: BaseExceptionGroup[BaseException]) -> Any:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def entry() -> None:
    """The console script: `main`, then exit at once. Once the nodes are stopped nothing is
    left to wait for, but a worker thread may still be blocked reading stdin (stdio mode,
    after SIGTERM), and a normal exit would wait for it."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _terminate(_signum: int, _frame: Any) -> None:
    _interrupt()


def _interrupt() -> None:
    raise KeyboardInterrupt  # unwinds the serving loop; main's finally stops the nodes


def _serve(front: Frontend, http: tuple[str, int] | None, json_response: bool = False) -> None:
    import anyio

    from .server import build_server

    server = build_server(front)
    status = front.status()
    ready = f"erlmcp: {status['mode']} cluster {status['members']}, leader {status['leader']}"
    if http is None:
        from mcp.server.stdio import stdio_server

        async def stdio() -> None:
            # SIGTERM and Ctrl-C become loop callbacks that raise KeyboardInterrupt out of the
            # loop (the loop's wake-up fd sees them whichever thread the kernel picks).
            # asyncio's own Ctrl-C handling would cancel the task group instead, which then
            # waits for the stdin reader thread: for ever, while the client holds stdin.
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, _interrupt)
            print(ready, file=sys.stderr, flush=True)
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(stdio)
        return
    import uvicorn

    print(ready, file=sys.stderr, flush=True)
    host, port = http
    app = server.streamable_http_app(host=host, json_response=json_response)
    print(f"erlmcp: serving MCP at http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    uvicorn.Server(config).run()
