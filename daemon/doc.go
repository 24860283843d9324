// Package daemon runs one epaxosd replica: it owns the goroutines, the
// clock, the network and the state-machine plugin around the deterministic
// protocol core in package replica.
//
// Data flow:
//
//	client gRPC ──Propose──▶ proposals ─┐
//	peer streams ──Inbox───▶ messages ──┼─▶ core loop ──Ready──▶ storage (persist)
//	ticker ──────────────────▶ Tick ────┘                   ├──▶ transport (send)
//	                                                        └──▶ applier ──▶ plugin
//	                                                                  └──▶ waiting clients
//
// The core loop is the only goroutine that touches the replica.Replica. It
// handles each Ready in the order package replica requires: persist, then
// send, then hand the executions to the applier, which applies them to the
// plugin in order and answers the clients waiting for them.
package daemon
