// Package daemon runs one epaxosd replica: it owns the goroutines, the
// clock, the network and the state-machine plugin around the deterministic
// protocol core in package replica.
//
// Data flow:
//
//	client gRPC ─Propose/ProposeBatches─▶ proposals ┐
//	peer streams ──Inbox──────────────▶ messages ───┼─▶ core loop ──Ready──▶ persister
//	ticker ─────────────────────────────▶ Tick ─────┘                         │
//	                          storage (one synced batch per run of Readies) ◀─┤
//	                          transport (send, once durable)               ◀──┤
//	                          applier ──▶ plugin ──▶ session table ──▶ waiting clients
//
// The core loop is the only goroutine that touches the replica.Replica. Each
// turn it takes every waiting input, sends the Ready's early requests (a
// coordinator's PreAccepts in reserved slots, replica/reserve.go), then
// queues the Ready for the persister (persist.go), which carries Readies out in the order package
// replica requires: persist (one synced write for everything queued, with
// the slot reservation, confirmed back to the core loop), then
// send, then hand the executions to the applier, which applies them to the
// plugin in order, in batches, and records the results in the session
// table, which answers the waiting clients (a callback per request, no
// goroutine). Every queue between them is bounded (README, "Limits"); the
// client service admits requests against per-connection and global limits
// (admission.go). Every 5 s the core loop reports progress and warns when
// execution stalls (status.go); with a metrics file configured, a writer
// goroutine appends one line of statistics per second (metrics.go), fed by
// the client handlers and the core loop.
package daemon
