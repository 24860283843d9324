package replica

// Early requests and slot reservations.
//
// A coordinator's PreAccept and ballot-0 Accept for its own new instance
// promise nothing about its durable state: they ask the peers to vote. So
// they may leave before the coordinator's own record is durable (Ready.Early),
// and the coordinator's own fsync overlaps the peers' instead of preceding
// them (one fsync less on a command's critical path). What makes this safe:
//
//   - The coordinator's own vote (its PreAcceptOK or AcceptOK, counted at
//     once) is used only through decisions it makes; a decision leaves the
//     process (Commit messages, executions, client replies) only with the
//     Ready that records it, and every earlier Ready, durable (the daemon's
//     FIFO persister; Ready's contract). So whatever others learn of a
//     decision, the coordinator's PREACCEPTED/ACCEPTED/COMMITTED record
//     behind it is on disk: Fig. 5 line 56's premise ("a fast commit would
//     have shown as COMMITTED at the initial coordinator", epaxos-star.md
//     §3, §5) holds for every decision anyone acted on. A crash before the
//     record is durable loses only a vote no decision used: the instance is
//     then like one whose coordinator never pre-accepted it, and recovery
//     decides it (possibly as a no-op, re-proposed by nobody: its client
//     never got an answer and retries).
//   - A slot whose PreAccept left may be known to peers although this
//     replica has no record of it. It must never be proposed again with
//     another command, so the core sends early only for slots up to a
//     durable reservation (Ready.ReserveSlots, confirmed by SlotsReserved),
//     kept reserveWindow slots ahead. After a restart, Restore skips every
//     reserved slot and watches the ones it has no record of, so they are
//     fetched from peers or recovered (usually as no-ops).
//
// Everything else (replies, Commit, recovery messages, Accepts at higher
// ballots) waits for durability as before.

// reserveWindow is how many slots ahead of the next proposal the durable
// reservation is kept; a restart recovers at most this many unknown slots.
const reserveWindow = 32

// request queues a coordinator's request to a peer: early when it asks for
// a vote on this replica's own instance at ballot 0 within the durable
// reservation, otherwise after the Ready's records are durable.
func (r *Replica) request(m Message) {
	if m.Ballot == 0 && m.Instance.Replica == r.id && m.Instance.Slot <= r.reserved &&
		(m.Type == MsgPreAccept || m.Type == MsgAccept) {
		m.From = r.id
		r.early = append(r.early, m)
		return
	}
	r.send(m)
}

// reserveAhead returns the reservation the next Ready should ask for, or 0.
func (r *Replica) reserveAhead() uint64 {
	if r.nextSlot+reserveWindow/2 <= max(r.reserved, r.reserving) {
		return 0
	}
	r.reserving = r.nextSlot + reserveWindow
	return r.reserving
}

// SlotsReserved tells the core that a reservation of slots up to upTo (a
// Ready's ReserveSlots) is durable: requests for those slots may go early.
func (r *Replica) SlotsReserved(upTo uint64) {
	if upTo > r.reserved {
		r.reserved = upTo
	}
}

// restoreReservation applies a restarted replica's durable reservation:
// new proposals start above it, and every own slot up to it that this
// replica has no record of (from this restart or an earlier one: a replica
// can crash again before it learned them) is watched by watchGaps, to be
// fetched from peers or recovered.
func (r *Replica) restoreReservation(reserved uint64) {
	r.reserved, r.reserving = reserved, reserved
	if reserved >= r.nextSlot {
		r.nextSlot = reserved + 1
	}
	if c := &r.columns[r.id]; c.top < r.nextSlot {
		c.top = r.nextSlot // watchGaps scans below the top
	}
}
