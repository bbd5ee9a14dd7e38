"""Erlang/OTP semantics for Python: processes, gen_server, links, monitors and supervisors.

Import the modules by their OTP names: `from actors import erlang, gen_server, sys`.
"""

from ._terms import TIMEOUT, Error, Exit, Pid, Ref
from .node import Node, default_node

__all__ = ["TIMEOUT", "Error", "Exit", "Node", "Pid", "Ref", "default_node"]
