package replica

// Early requests and slot reservations.
//
// A coordinator's PreAccept for its own new instance promises nothing about
// its durable state: it asks the peers to vote. So it may leave before the
// coordinator's own record is durable (Ready.Early),
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
// Everything else (replies, Commit, recovery messages, every Accept) waits
// for durability as before. An early Accept is NOT safe, and the simulator
// showed why (EPAXOS_SIM_SEED=300076 go test ./sim -run
// '^TestSim_N3_Crashes$', before this was fixed): r0 sends Accept(0, 0.25,
// D) early, r1 accepts it, r0 crashes before its own records of 0.25 are
// durable and restarts knowing nothing of 0.25; it then answers r2's
// PreAccept of the conflicting 2.16 without 0.25, and 2.16 fast-commits;
// a recovery of 0.25 with Q = {r0, r1} finds r1's ballot-0 ACCEPTED value
// (line 55 comes before line 56) and commits (0.25, D) with neither in the
// other's deps. A pre-accepted value at another replica is different: with
// the initial coordinator in Q, line 56 makes it a no-op, and without it a
// value is only recovered through Validate, which reports 2.16.
//
// A forgotten PreAccept needs one more rule, also found by the simulator
// (EPAXOS_SIM_SEED=300138 go test ./sim -run '^TestSim_N5_Crashes$',
// before the rule): r0 proposes 0.37, its PreAccepts reach peers, r0
// crashes before its record of 0.37 is durable and restarts knowing nothing
// of it; r3 then fast-commits the conflicting 3.69 with r0 in its fast
// quorum, r0's reply not mentioning 0.37; a recovery of 3.69 with
// Q = {r1, r2, r4} hears of 0.37 (pre-accepted, without 3.69) and, by line
// 65's second disjunct, aborts 3.69 as a no-op: the disjunct assumes that
// the initial coordinator of an invalidator (r0, outside Q) pre-accepted
// 3.69 only after submitting 0.37, so with 0.37 in its reply. So a
// restarted replica treats every own slot up to its reservation that it
// has no record of as a command that interferes with everything (lost,
// added to every dependency set it computes) until it learns the slot's
// command or decision. Extra dependencies never break agreement or
// visibility (see conflicts); the cost is paid only after a restart, until
// the watches of restoreReservation have settled those slots.

// reserveWindow is how many slots ahead of the next proposal the durable
// reservation is kept; a restart recovers at most this many unknown slots.
const reserveWindow = 32

// request queues a coordinator's request to a peer: early when it is a
// PreAccept of this replica's own instance within the durable reservation,
// otherwise after the Ready's records are durable.
func (r *Replica) request(m Message) {
	if m.Type == MsgPreAccept && m.Ballot == 0 && m.Instance.Replica == r.id && m.Instance.Slot <= r.reserved {
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

// forgetLost drops id from the lost own slots once its command or decision
// is known here.
func (r *Replica) forgetLost(id InstanceID) {
	if len(r.lost) > 0 {
		delete(r.lost, id)
	}
}

// withLost adds to d every lost own slot but self (restoreReservation).
func (r *Replica) withLost(d Deps, self InstanceID) Deps {
	if len(r.lost) == 0 {
		return d
	}
	ids := make([]InstanceID, 0, len(r.lost))
	for id := range r.lost {
		if id != self {
			ids = append(ids, id)
		}
	}
	return d.Union(NewDeps(ids...))
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
	for s := uint64(1); s <= reserved; s++ {
		if id := (InstanceID{Replica: r.id, Slot: s}); r.instances[id] == nil {
			r.lost[id] = true
		}
	}
	if reserved >= r.nextSlot {
		r.nextSlot = reserved + 1
	}
	if c := &r.columns[r.id]; c.top < r.nextSlot {
		c.top = r.nextSlot // watchGaps scans below the top
	}
}
