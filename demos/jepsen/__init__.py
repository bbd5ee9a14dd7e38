"""A Jepsen-style test kit for the cluster: concurrent clients record every operation they
invoke and how it ended in a `history.History`; `linearizability.check` decides, key by key,
whether some order of those operations that respects real time is legal for a `models`
model (a register, an append-only list); `checks` adds the plain data checks a final read
makes possible (acknowledged appends lost, duplicates, members that did not converge).

`python -m demos.jepsen` runs it: clients against five node processes while a seeded
nemesis kills, pauses, partitions and reconfigures them (see `run` and `nemesis`).
"""
