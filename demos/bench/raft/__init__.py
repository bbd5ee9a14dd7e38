"""`python -m demos.bench raft`: actors.ra on three node OS processes beside pysyncobj.

- `run`: the figures, round after round (`run_raft`);
- `ra_side`: our cluster; `pysyncobj_side`: the peer's, whose members are
  `pysyncobj_node` processes; `_common`: what both sides share;
- `trace` (`python -m demos.bench.raft.trace`), with `trace_node` and `trace_report`:
  where a command's time goes, hop by hop.
"""
