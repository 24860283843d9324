// Package sim is the seeded, deterministic simulation that is epaxosd's main
// test of durability and recovery (shared/style.md, "TigerBeetle: simulation
// as the main test").
//
// A run drives N copies of the real protocol core (package replica), each
// wrapped the way the daemon wraps it — a disk, the replicated client-session
// table (package session) and the kv state machine (plugins/kv) — through a
// simulated network and a closed-loop client workload (node.go, client.go).
// Everything that could vary between runs comes from one seed: a single
// math/rand/v2 PCG drives the network (delay, loss, duplication, reordering,
// partitions; network.go), the clocks (per-replica tick rates and jitter),
// the crashes and restarts, and the clients; replica.Config.Seed is derived
// from it too. Time is virtual (scheduler.go: units, a replica ticking about
// every TickUnits of them); there are no goroutines, no sleeps and no wall
// clock in a run, so a seed replays a run event for event (see
// Result.Fingerprint).
//
// Each replica handles every Ready as the daemon must: (1) persist the
// records and the ids of the Execute entries to its disk (disk.go), synced
// when the Ready needs it (else pending until the next sync: a crash loses
// them);
// (2) send the messages; (3) apply the executions through the session table
// to the state machine and answer the clients waiting there. A crash drops
// everything but the disk, possibly between those steps or before a Ready is
// taken at all; a restart restores the core from the disk and rebuilds the
// session table and the state machine by replaying the executed log.
//
// A run has three phases:
//
//  1. faults: the configured fault mix (Mix) is active and clients issue
//     requests, retry them at other replicas on timeout, and sometimes give
//     up (the outcome is then unknown to the client);
//  2. calm: every fault is healed (partitions removed, crashed replicas
//     restarted, no more loss, duplication or crashes; delays and reordering
//     stay), clients keep issuing for a while and then stop;
//  3. liveness: the run continues until every client request completed and
//     every instance any replica persisted is committed at every replica and
//     executed (unless a no-op) by every replica, or the budget runs out.
//
// The invariants of shared/epaxos-notes.md ("Invariants every simulation run
// checks") are checked continuously where cheap and over the whole run at its
// end (checks.go, linearizability.go):
//
//  1. agreement: one committed (command, deps) per instance, over every
//     record any replica ever persisted, across crashes; committed commands
//     are ones a client issued;
//  2. interference: of two committed interfering instances, one is in the
//     other's deps;
//  3. execution consistency: no instance executed twice by a replica, no
//     command applied twice to a state machine, the replay after a restart
//     reproduces what was applied before it, the same per-key order of
//     writes (and place of reads) everywhere, the same applied commands and
//     state-machine contents everywhere, every completed request applied
//     everywhere;
//  4. linearizability of the client history: porcupine (kv model, per key)
//     and an exact witness check of the replicas' common execution order
//     against real time and read results;
//  5. liveness once the faults heal (the run must finish within a budget).
//
// Plus: persist-before-send (every message is backed by the sender's disk),
// durable-state sanity (bal never decreases, a commit is final), and an
// exactly-once check that a client never takes a Stale answer for a result.
//
// Run returns the first violation as a *Failure that names the invariant and
// carries the last events of the trace; the tests print the seed and the
// command that replays it (sim_test.go).
//
// The package never runs protocol code concurrently and never touches the
// file system except to write a porcupine visualisation when linearizability
// fails.
package sim
