"""Line-for-line ports of the Erlang snippets in the seed document (poc-vs-production.md).

Each module keeps the seed's Erlang beside its Python, clause by clause. Where the seed is
wrong or incomplete, the port says why in a comment and shows the correct call next to
the literal one. `python -m demos.erlang_ports.<module>` runs a small demonstration and
exits 0.

POC (global-name leader election, `actors.consensus.poc`):
- `poc_init`: the leader election in init/1 (global:register_name);
- `poc_leader_handle_call`: the leader's handle_call that records an audit entry;
- `poc_follower_forward`: the follower's forwarding handle_call and its noproc catch;
- `poc_down`: the DOWN clause that starts a new election.

Production (ra):
- `ra_cluster_setup`: init_cluster/0 (ra:start_cluster);
- `ra_machine_apply`: the state machine's apply/3;
- `ra_execute_tool`: execute_tool/3 through ra:process_command;
- `migration_steps`: the five steps of the migration path.
"""
