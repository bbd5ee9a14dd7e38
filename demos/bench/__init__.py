"""The benchmarks, `python -m demos.bench runtime|dist|raft|mcp` (the command line is
`__main__`). Each area has its module: `runtime` (with `supervisor`), `dist`, `raft/` and
`mcp_front`; `_common` holds the rows and the table they share. Every figure is measured
beside a peer in the same run; nothing here is imported by the runtime.
"""
