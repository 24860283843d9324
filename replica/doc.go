// Package replica is the EPaxos* protocol core (Ryabinin, Gotsman, Sutra,
// OPODIS 2025; the line-by-line brief is shared/epaxos-star.md).
//
// The core is a deterministic state machine that does no I/O: no goroutines,
// clocks, sockets, files or randomness of its own. Its caller feeds it
//
//   - client commands, with Enqueue (or Propose, which skips the gate of
//     hold.go and starts an instance at once);
//   - peer messages, with Step;
//   - the passage of time, with Tick (one call per fixed interval);
//
// and collects what to do next with Ready. The caller must handle each Ready
// in this order, completing each step before the next:
//
//  0. Send Ready.Early at once, if it likes: a coordinator's requests for
//     votes on its own instances, in slots durably reserved (reserve.go).
//  1. Persist: write every record in Ready.Instances, with
//     Ready.ReserveSlots if set, and sync them if Ready.NeedsSync (else a
//     later synced write must make them durable first, as a write-ahead
//     log does); once a reservation is durable, call SlotsReserved.
//     A message in Ready.Messages may promise any of them (a PreAcceptOK
//     promises the recorded deps, an AcceptOK the accepted value, a
//     coordinator's Commit its own commit), so nothing may be sent first.
//  2. Send Ready.Messages. Delivery may lose, duplicate, delay and reorder
//     messages; the protocol tolerates all of these.
//  3. Apply Ready.Execute to the state machine in order. Each entry is a
//     committed instance whose dependencies have all been executed; the order
//     is the same on every replica for interfering commands. A caller whose
//     state machine is volatile (rebuilt from the durable executed log after
//     a crash) may apply earlier, while the Ready is being written, provided
//     no result leaves the process (a client answer, a session entry) until
//     step 3's turn: what nobody saw is discarded with the process.
//
// Readys must be handled in the order they were returned: steps 2 and 3 of
// a Ready wait until it and every earlier Ready are written (and synced,
// when one of them needs it) (a caller may
// persist several Readies in one write). Everything a Ready
// holds is owned by the caller and never modified by the core afterwards;
// values handed to the core (messages, commands) must not be modified by the
// caller after the call.
//
// A Replica is not safe for concurrent use: one goroutine drives it.
package replica
