"""The demo, `python -m demos.run_demo`: erlmcp's consensus service told as a numbered
story, POC mode against Raft mode, on the lab's nodes (`demos.lab`).

- `main`: the command line and the order of the parts;
- `scenarios`: parts 1, 2 (failover) and 4 (crashing tools);
- `partition`: part 3; `numbers`: part 5;
- `cluster`: the demo's clusters, one per mode; `report`: the story's output.
"""
