"""erlmcp's consensus service: tools run once, on a leader, with an audit trail.

POC mode (`poc`) is a port of erlmcp's `erlmcp_consensus_poc`: the leader is whoever
holds the global name LEADER_NAME. `app.start(mode)` starts the service's tree on a node;
`client` is the protocol, the same in every mode; `tools` the tool registry.
"""

from .app import start, stop
from .client import LEADER_NAME, SERVER_NAME, audit, execute_tool, get_status
from .tools import BadArgs, Tools, default_tools

__all__ = ["LEADER_NAME", "SERVER_NAME", "BadArgs", "Tools", "audit", "default_tools",
           "execute_tool", "get_status", "start", "stop"]
