package plugin

import "fmt"

// Access says how a Command touches its key. It also decides which commands
// epaxosd orders against each other: two commands interfere when they have
// the same key and at least one of them is not a Read.
type Access uint8

const (
	// Read returns what the key holds and must not change any state.
	Read Access = 1
	// Write changes the key, usually using the command's Value.
	Write Access = 2
	// Delete removes the key, or resets it to its initial state.
	Delete Access = 3
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("access(%d)", uint8(a))
}

// Valid reports whether a is one of Read, Write, Delete.
func (a Access) Valid() bool { return a >= Read && a <= Delete }

// Command is one committed client command. Key and Value may be empty; a
// Read or Delete normally carries no Value. Empty and nil are the same.
type Command struct {
	Access Access
	Key    []byte
	Value  []byte
}

// Result is the reply to one Command. A non-empty Error is an error reply: the
// command was still applied, deterministically, on every replica (normally as
// a no-op), and the client is told why it had no effect. Value is ignored by
// convention when Error is set. Empty and nil Values are the same.
type Result struct {
	Value []byte
	Error string
}

// StateMachine is implemented by the application that epaxosd replicates.
// Every replica runs its own instance, in its own plugin process, and keeps it
// identical to the others by applying the same committed commands.
//
// The state machine is rebuilt from the commands alone: after the plugin or
// the daemon restarts, epaxosd starts a fresh plugin process and replays every
// executed command into it from the beginning. epaxosd may apply a batch
// while its commands are still being written to the replica's disk, and
// holds the results until they are; if the replica dies first, the process
// and whatever it applied are discarded unseen. This is one more reason the
// state machine must not act on anything outside its process. A later version of this package
// will add an optional interface, in the manner of hashicorp/raft's
// FSM.Snapshot and Restore, so that replay can start from a snapshot; a
// StateMachine that does not implement it keeps working unchanged.
type StateMachine interface {
	// Apply is invoked with committed commands in execution order, in
	// batches. It must return exactly one Result per command, in the order
	// of cmds; cmds is never empty. Within a batch, each command sees the
	// effects of the commands before it.
	//
	// Apply must be deterministic: from the same initial state, the same
	// commands give the same results and the same state on every replica.
	// Nothing else may influence them: no clocks, randomness, environment,
	// map iteration order, goroutine scheduling, or I/O outside the process.
	//
	// Only interfering commands (see Access) reach every replica in the same
	// order. Commands on different keys, and Reads of the same key, may be
	// applied in a different relative order, and batches may be cut at
	// different places, on different replicas. So the result and effect of
	// a command must depend only on the earlier Writes and Deletes of its own
	// key, a Read must not change state, and batch boundaries must not
	// matter: applying a sequence in one batch or in several must give the
	// same results and state.
	//
	// An error Result must leave the state as every replica will leave it,
	// which in practice means unchanged; it is for commands that are invalid
	// on every replica (a malformed Value, say). A failure that could differ
	// between replicas (out of memory, a broken invariant) must not become an
	// error Result: panic instead. Serve recovers the panic, fails the batch,
	// and refuses all later batches, because the state may be half-modified;
	// epaxosd then treats the plugin as broken and rebuilds it by replay.
	//
	// Apply is never called concurrently with itself: one goroutine calls
	// it, one batch at a time. It must not retain cmds, or any Key or Value
	// in it, after returning; copy what it keeps. The Values it returns may
	// alias its own memory: they are copied before Apply is called again.
	//
	// Apply must never write to standard output, which go-plugin uses for
	// its handshake. Log through Logger instead.
	Apply(cmds []Command) []Result
}
