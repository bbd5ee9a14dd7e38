"""erlmcp's MCP front end: the consensus service's tools, audit trail and status served
over the Model Context Protocol, with the official `mcp` SDK.

    erlmcp serve                      # a local 3-node Raft cluster, MCP over stdio
    erlmcp serve --http 127.0.0.1:8765 --mode poc --nodes 5

`Frontend` is the blocking hand on the cluster, `build_server` the MCP server over it,
`LocalCluster` the nodes `serve` starts, `cli.main` the command.
"""

from .cluster import LocalCluster, load_tools
from .frontend import Frontend
from .server import AUDIT_URI, KEY_META, STATUS_URI, build_server

__all__ = ["AUDIT_URI", "KEY_META", "STATUS_URI", "Frontend", "LocalCluster", "build_server",
           "load_tools"]
