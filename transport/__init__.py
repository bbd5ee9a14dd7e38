"""The transport between nodes: sans-I/O frames (`codec`) and connections (`connection`),
the one module that touches ZeroMQ sockets (`zmq_link`), and the port mapper (`epmd`)."""
