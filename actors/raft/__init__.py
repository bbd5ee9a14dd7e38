"""A deterministic, I/O-free Raft core.

`RaftCore.step(event) -> list[Effect]` is the whole interface: feed it peer
messages, `Tick`s, storage completions and client requests; execute the
effects it returns, in order (the contract is in `actors.raft.effects`).
"""

from .core import RaftCore
from .effects import (
    Accepted,
    Apply,
    Effect,
    PersistEntries,
    PersistState,
    ReadReady,
    Rejected,
    Reply,
    Role,
    RoleChanged,
    Send,
)
from .log import RaftLog
from .messages import (
    AppendEntries,
    AppendResult,
    Campaign,
    ChangeMembership,
    Entry,
    Event,
    HardState,
    Heartbeat,
    HeartbeatResult,
    Message,
    NodeId,
    Options,
    Propose,
    ReadIndex,
    RequestVote,
    Tick,
    TimeoutNow,
    TransferLeadership,
    Vote,
    Written,
)

__all__ = [
    "Accepted",
    "AppendEntries",
    "AppendResult",
    "Apply",
    "Campaign",
    "ChangeMembership",
    "Effect",
    "Entry",
    "Event",
    "HardState",
    "Heartbeat",
    "HeartbeatResult",
    "Message",
    "NodeId",
    "Options",
    "PersistEntries",
    "PersistState",
    "Propose",
    "RaftCore",
    "RaftLog",
    "ReadIndex",
    "ReadReady",
    "Rejected",
    "Reply",
    "RequestVote",
    "Role",
    "RoleChanged",
    "Send",
    "Tick",
    "TimeoutNow",
    "TransferLeadership",
    "Vote",
    "Written",
]
