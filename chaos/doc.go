// Package chaos is a Jepsen-style fault test of the real system: `make
// chaos`, or `go test ./chaos/` (which runs a short version of it).
//
// TestChaos starts clusters of 3 and then 5 real epaxosd replicas (separate
// `epaxosd agent` processes built once, statically, by TestMain; the
// built-in kv plugin; a durable data_dir each), drives 8 concurrent
// clients doing reads, writes and deletes through the Go client on five
// keys at a time, so that operations conflict (a fresh set of five every
// 10s, like Jepsen's independent keys: porcupine checks each key's history
// on its own, and its memory grows with the square of a key's operations),
// and meanwhile injects faults on a schedule derived from one seed:
//
//   - kill: SIGKILL of one, several or all replicas, restarted later from
//     their data_dir;
//   - pause: SIGSTOP of replicas, SIGCONT later;
//   - plugin-kill: SIGKILL of the kv plugin process under a live replica
//     (the daemon restarts and rebuilds it);
//   - partition-minority: a minority cut off from the majority;
//   - partition-split: every side smaller than a quorum (3: all isolated;
//     5: {2},{2},{1});
//   - partition-bridge: one replica sees both sides, the sides do not see
//     each other;
//
// each held for a while and then undone (heal, SIGCONT, restart). A step of
// the schedule sometimes combines a partition with a process fault.
//
// Every replica is its own host: its own network namespace with a veth to
// a bridge, its own 10.x address and lo. The bridge lives in a namespace of
// its own (a "switch"), joined to the root namespace by one more veth, so
// that the host's firewall (for example Docker's FORWARD policy DROP, which
// br_netfilter applies to bridged traffic) never sees the replicas' traffic
// and the test never touches the host's firewall. Partitions are nftables
// DROP rules installed inside the replicas' namespaces (the daemon does not
// cooperate): each replica drops packets from and to the peers it must not
// see, in both directions.
//
// Clients run in the root namespace and are never cut off: like Jepsen's
// default, partitions are between replicas only. This is the harder case
// for safety: a replica on a minority side keeps receiving proposals that it
// cannot commit, and clients time out there and retry the same (client id,
// seq) at a replica of the majority, so the minority's copy of the command
// may surface after the heal, when it must be applied at most once and in
// a linearizable place. Cutting clients too would mostly exercise the
// client's failover on connection loss, which the fault kinds above already
// cause (kills and pauses make replicas unreachable).
//
// Every operation's invocation and completion time is recorded. An
// operation is ok (acknowledged, with its result), failed (a definite
// refusal: a state machine error reply or an invalid request; it did not
// take effect) or indeterminate (a timeout, an unavailable replica, any
// other error: it may or may not have taken effect).
//
// At the end everything is healed, paused replicas are resumed and killed
// ones restarted; then every key ever used is read through every replica
// (each read is a command executed by that replica's own state machine),
// until all replicas agree. These reads are part of the history, which is
// checked for linearizability with porcupine against a kv register per
// key (a delete makes the key absent, which reads as empty). An indeterminate
// write or delete is open until the end of the history and its output is
// unknown; an indeterminate write whose value no read ever returned is left
// out (it may as well not have happened: nothing observed it), which keeps
// porcupine's search small; an indeterminate read constrains nothing and
// is left out. An explicit check also reports every acknowledged write that
// no later or concurrent mutation can explain away and that the final reads
// do not show.
//
// On a failure, the seed, the fault schedule, the history, porcupine's HTML
// visualisation and every replica's log go to an artifacts folder,
// chaos/artifacts/<test>-<seed>/ (the base folder is EPAXOS_CHAOS_ARTIFACTS
// if set), whose path is printed.
//
// Environment:
//
//	EPAXOS_CHAOS_SEED       replay a seed (default: time based; always printed)
//	EPAXOS_CHAOS_DURATION   fault-run time of each cluster size (default 30s)
//	EPAXOS_CHAOS_ARTIFACTS  base folder of the artifacts
//	EPAXOS_CHAOS_LOG_LEVEL  the replicas' log_level (default debug)
//	EPAXOS_CHAOS_KEEP       when set, write the artifacts even if the run passes
//	EPAXOS_CHAOS_BIN        test this epaxosd binary instead of building ./cmd/epaxosd
//	CI                      when set, a missing prerequisite (root, ip netns,
//	                        nft) fails the test instead of skipping it
//
// Names of namespaces and interfaces start with "epc" and carry the test
// process's pid; a run removes what crashed earlier runs left behind
// (names whose pid is no longer a running process).
package chaos
