package replica

import "sort"

// recovery is the volatile state of a recovery this replica coordinates for
// one instance at ballot `ballot` (Fig. 5). It is dropped when the ballot is
// superseded, when it decides, or when it times out (a later attempt starts
// afresh with a higher ballot).
type recovery struct {
	ballot  Ballot
	since   uint64                // tick the attempt started
	replies map[ReplicaID]Message // RecoverOK by sender, this replica's own included

	// Set once lines 51–80 have run on the first N−F replies.
	decided bool
	q       []ReplicaID        // Q, sorted
	inQ     map[ReplicaID]bool // membership in Q
	rMax    int                // |R_max| (line 58)

	// Validation (lines 58–79).
	c           *Payload
	d           Deps
	validateOKs map[ReplicaID][]Invalidator
	inv         []Invalidator // I = ∪ I_q
	waiting     bool          // sent Waiting; waiting for lines 70–79
}

// nextBallot returns the smallest ballot owned by this replica above b.
// Ballot k·N + p belongs to replica p (epaxos-star.md §1).
func (r *Replica) nextBallot(b Ballot) Ballot {
	n := Ballot(r.q.N)
	return (b/n+1)*n + Ballot(r.id)
}

// startRecovery is lines 43–45: pick an owned ballot b > bal[id] and send
// Recover(b, id) to every replica. The message to self is applied at once,
// so this replica's RecoverOK is the first reply counted.
func (r *Replica) startRecovery(in *instance) {
	b := r.nextBallot(in.bal)
	r.stopLeading(in)
	r.counters.Recoveries++
	in.rec = &recovery{ballot: b, since: r.now, replies: make(map[ReplicaID]Message)}
	r.recovering[in.id] = in
	in.bal = b // lines 46–49 at self: bal = b; abal unchanged
	r.markDirty(in)
	in.rec.replies[r.id] = r.recoverOK(in, b, r.id)
	for _, to := range r.peers() {
		r.send(Message{Type: MsgRecover, To: to, Instance: in.id, Ballot: b})
	}
}

// recoverOK is this replica's RecoverOK(b, id, abal, cmd, dep, initDep, phase).
func (r *Replica) recoverOK(in *instance, b Ballot, to ReplicaID) Message {
	return Message{
		Type: MsgRecoverOK, From: r.id, To: to, Instance: in.id, Ballot: b, Abal: in.abal,
		Command: in.cmd, Deps: in.deps, InitCommand: in.initCmd, InitDeps: in.initDeps, Phase: in.phase,
	}
}

// dropRecovery abandons this replica's recovery of in, if any.
func (r *Replica) dropRecovery(in *instance) {
	if in.rec != nil {
		in.rec = nil
		delete(r.recovering, in.id)
	}
}

// onRecover handles Recover(b, id), lines 46–49.
func (r *Replica) onRecover(m Message) {
	in := r.instance(m.Instance)
	b := m.Ballot
	switch {
	case in.phase == Committed:
		// Nothing to recover: hand the recoverer the decision.
		r.sendCommit(m.From, in)
	case in.bal < b:
		// pre: bal < b. Set bal = b; abal is NOT changed (the single-ballot
		// bug of the original EPaxos was to change it here).
		in.bal = b
		r.markDirty(in)
		r.watch(in.id)
		if in.rec != nil && in.rec.ballot < b {
			r.dropRecovery(in) // superseded
		}
		if in.lead != nil && in.lead.ballot < b {
			r.stopLeading(in)
		}
		r.send(r.recoverOK(in, b, m.From))
	case in.bal == b && r.ballotOwner(in.id, b) == m.From:
		// A retransmitted Recover: repeat the reply from the current state,
		// which only this ballot's coordinator can have changed since.
		r.send(r.recoverOK(in, b, m.From))
	default:
		r.send(Message{Type: MsgNack, To: m.From, Instance: in.id, Ballot: in.bal})
	}
}

// onRecoverOK handles RecoverOK(b, id, ...), lines 50–80 and the late
// replies of lines 76–79.
func (r *Replica) onRecoverOK(m Message) {
	in := r.instances[m.Instance]
	if in == nil || in.rec == nil || in.rec.ballot != m.Ballot || in.bal != m.Ballot {
		return // pre: bal = b, and this attempt is still ours
	}
	rec := in.rec
	if rec.decided {
		if rec.waiting {
			r.lateRecoverOK(in, m)
		}
		return
	}
	if _, dup := rec.replies[m.From]; dup {
		return
	}
	rec.replies[m.From] = m
	if len(rec.replies) >= r.q.Slow {
		r.decideRecovery(in)
	}
}

// decideRecovery runs lines 51–80 on Q, the N−F replies received so far.
func (r *Replica) decideRecovery(in *instance) {
	rec := in.rec
	rec.decided = true
	rec.inQ = make(map[ReplicaID]bool, len(rec.replies))
	for q := range rec.replies {
		rec.q = append(rec.q, q)
		rec.inQ[q] = true
	}
	sort.Slice(rec.q, func(i, j int) bool { return rec.q[i] < rec.q[j] })

	// Lines 52–53: b_max = max abal_q; U = {q ∈ Q | abal_q = b_max}.
	var bmax Ballot
	for _, q := range rec.q {
		bmax = max(bmax, rec.replies[q].Abal)
	}
	var u []Message
	for _, q := range rec.q {
		if rec.replies[q].Abal == bmax {
			u = append(u, rec.replies[q])
		}
	}
	// Line 54: some q ∈ U committed: commit its value.
	for _, m := range u {
		if m.Phase == Committed {
			r.recoveryCommit(in, m.Command, m.Deps)
			return
		}
	}
	// Line 55: some q ∈ U accepted: accept its value (Paxos: the value with
	// the highest abal).
	for _, m := range u {
		if m.Phase == Accepted {
			r.recoveryAccept(in, m.Command, m.Deps)
			return
		}
	}
	// Line 56 (optimized): the initial coordinator answered. Recover raised
	// its bal, and the fast path needs bal = 0 there, so id did not and will
	// not fast-commit; had it committed, the commit (persisted before
	// Commit(0) was sent) would have shown in U.
	if rec.inQ[in.id.Replica] {
		r.recoveryAccept(in, NopPayload(), Deps{})
		return
	}
	// Line 57: R = the replies that pre-accepted with dep = initDep, the
	// fast-path voters; R_max (line 58) is all of them.
	var voters []Message
	for _, q := range rec.q {
		m := rec.replies[q]
		if m.Phase == PreAccepted && m.Command != nil && m.Deps.Equal(m.InitDeps) {
			voters = append(voters, m)
		}
	}
	if len(voters) == 0 || len(voters) < len(rec.q)-r.q.E {
		// Line 80: too few voters for id to have fast-committed.
		r.recoveryAccept(in, NopPayload(), Deps{})
		return
	}
	// Lines 58–61: validate (c, D) of any voter with the processes in Q.
	rec.rMax = len(voters)
	rec.c, rec.d = voters[0].Command, voters[0].Deps
	rec.validateOKs = make(map[ReplicaID][]Invalidator, len(rec.q))
	for _, q := range rec.q {
		if q == r.id {
			rec.validateOKs[r.id] = r.validate81(in, rec.c, rec.d)
			continue
		}
		r.send(Message{Type: MsgValidate, To: q, Instance: in.id, Ballot: rec.ballot, Command: rec.c, Deps: rec.d})
	}
	r.checkValidation(in)
}

// onValidate handles Validate(b, id, c, D), lines 81–87.
func (r *Replica) onValidate(m Message) {
	in := r.instance(m.Instance)
	switch {
	case in.phase == Committed:
		r.sendCommit(m.From, in)
	case in.phase == Accepted && in.bal == m.Ballot:
		// A duplicate of Validate(b) arriving after the Accept(b) that the
		// validation led to (bal is still b). Every process in Q answers
		// Validate(b) before the coordinator sends Accept(b), so only a
		// duplicate gets here; applying lines 81–87 would set cmd = c under
		// the accepted abal and dep, a value no coordinator proposed, which
		// a later recovery would adopt by line 55. Ignore it, as if lost.
		// (Found by the simulation: EPAXOS_SIM_SEED=771 go test ./sim -run
		// '^TestSim_N5_Crashes$'; 3.18 committed as write(k1) with deps {}.)
	case in.bal == m.Ballot:
		// pre: bal = b.
		inv := r.validate81(in, m.Command, m.Deps)
		r.send(Message{Type: MsgValidateOK, To: m.From, Instance: in.id, Ballot: m.Ballot, Invalidators: inv})
	case in.bal > m.Ballot:
		r.send(Message{Type: MsgNack, To: m.From, Instance: in.id, Ballot: in.bal})
	}
}

// validate81 is the body of "On Validate", lines 81–87: record (c, D) as
// the initial command and deps (cmd too, so that later conflicting commands
// see id; phase, dep, bal and abal are untouched) and return I, the
// conflicting instances that together with (id, D) would break Visibility.
func (r *Replica) validate81(in *instance, c *Payload, D Deps) []Invalidator {
	in.initCmd, in.initDeps = c, D
	if in.phase != Committed {
		in.cmd = c
	}
	r.learnCommand(in)
	r.markDirty(in)
	var inv []Invalidator
	// Every instance whose (initial) command interferes with c is in the
	// interference index under one of c's keys; those under D's horizon are
	// in D.
	for _, x := range r.index.conflicts(c, in.id, D).IDs() {
		if D.Contains(x) {
			continue
		}
		o := r.instances[x]
		if o.phase == Committed {
			// Committed, cmd ≠ Nop, cmd ⋈ c, id ∉ dep.
			if o.cmd != nil && !o.cmd.Nop && !o.deps.Contains(in.id) {
				inv = append(inv, Invalidator{Instance: x, Phase: Committed})
			}
		} else if o.initCmd != nil && !o.initCmd.Nop && !o.initDeps.Contains(in.id) {
			// Not committed, initCmd ≠ ⊥, initCmd ⋈ c, id ∉ initDep.
			inv = append(inv, Invalidator{Instance: x, Phase: o.phase})
		}
	}
	return inv
}

// onValidateOK handles ValidateOK(b, id, I_q), lines 61–62.
func (r *Replica) onValidateOK(m Message) {
	in := r.instances[m.Instance]
	if in == nil || in.rec == nil || in.rec.ballot != m.Ballot || in.bal != m.Ballot ||
		in.rec.validateOKs == nil || !in.rec.inQ[m.From] {
		return
	}
	if _, dup := in.rec.validateOKs[m.From]; dup {
		return
	}
	in.rec.validateOKs[m.From] = m.Invalidators
	r.checkValidation(in)
}

// checkValidation runs lines 62–68 once every process in Q has answered.
func (r *Replica) checkValidation(in *instance) {
	rec := in.rec
	if rec.waiting || len(rec.validateOKs) < len(rec.q) {
		return
	}
	seen := make(map[Invalidator]bool)
	for _, q := range rec.q {
		for _, x := range rec.validateOKs[q] {
			if !seen[x] {
				seen[x] = true
				rec.inv = append(rec.inv, x)
			}
		}
	}
	sort.Slice(rec.inv, func(i, j int) bool {
		a, b := rec.inv[i], rec.inv[j]
		return a.Instance.Less(b.Instance) || a.Instance == b.Instance && a.Phase < b.Phase
	})
	// Line 63: no invalidator: (c, D) may have fast-committed; accept it.
	if len(rec.inv) == 0 {
		r.recoveryAccept(in, rec.c, rec.d)
		return
	}
	// Line 65: a committed invalidator, or (optimized) |R_max| = |Q| − e
	// and an invalidator whose initial coordinator is outside Q: id cannot
	// have fast-committed; abandon it.
	for _, x := range rec.inv {
		if x.Phase == Committed || rec.rMax == len(rec.q)-r.q.E && !rec.inQ[x.Instance.Replica] {
			r.recoveryAccept(in, NopPayload(), Deps{})
			return
		}
	}
	// Line 68: announce the wait (with |R_max|, optimized) and wait for one
	// of the cases of lines 70–79.
	rec.waiting = true
	for _, to := range r.peers() {
		r.send(Message{Type: MsgWaiting, To: to, Instance: in.id, Count: uint32(rec.rMax)})
	}
	for _, x := range rec.inv {
		r.waiters[x.Instance] = append(r.waiters[x.Instance], in.id)
		r.watch(x.Instance)
	}
	r.checkWaiting(in)
}

// checkWaiting tests the cases of lines 70–75 against this replica's own
// state; it runs when the wait starts and whenever an instance of I commits
// here or a Waiting message for one arrives.
func (r *Replica) checkWaiting(in *instance) {
	rec := in.rec
	if rec == nil || !rec.waiting {
		return
	}
	allCommitted := true
	for _, x := range rec.inv {
		o := r.instances[x.Instance]
		if o == nil || o.phase != Committed {
			allCommitted = false
			continue
		}
		// Line 70: an invalidator committed without id in its deps.
		if !o.cmd.Nop && !o.deps.Contains(in.id) {
			r.recoveryAccept(in, NopPayload(), Deps{})
			return
		}
	}
	// Line 72: every invalidator committed as Nop or with id in its deps.
	if allCommitted {
		r.recoveryAccept(in, rec.c, rec.d)
		return
	}
	// Line 74 (optimized bound): an invalidator's own recovery waits with
	// k' > N − F − E voters.
	for _, x := range rec.inv {
		if k, ok := r.waitingFor[x.Instance]; ok && int(k) > r.q.N-r.q.F-r.q.E {
			r.recoveryAccept(in, NopPayload(), Deps{})
			return
		}
	}
}

// lateRecoverOK is lines 76–79: while waiting, a RecoverOK from outside Q
// that is committed or accepted, or from the initial coordinator, settles
// the recovery.
func (r *Replica) lateRecoverOK(in *instance, m Message) {
	rec := in.rec
	if rec.inQ[m.From] {
		return
	}
	switch {
	case m.Phase == Committed:
		r.recoveryCommit(in, m.Command, m.Deps)
	case m.Phase == Accepted:
		r.recoveryAccept(in, m.Command, m.Deps)
	case m.From == in.id.Replica:
		r.recoveryAccept(in, NopPayload(), Deps{})
	}
}

// onWaiting records Waiting(id', k) (kept even before any wait of ours
// needs it, as the TLA+ spec keeps it in msgs) and re-checks the waits on id'.
func (r *Replica) onWaiting(m Message) {
	if k, ok := r.waitingFor[m.Instance]; !ok || m.Count > k {
		r.waitingFor[m.Instance] = m.Count
	}
	r.wakeWaiters(m.Instance)
}

// wakeWaiters re-checks the recoveries waiting on instance x.
func (r *Replica) wakeWaiters(x InstanceID) {
	ids := r.waiters[x]
	if len(ids) == 0 {
		return
	}
	keep := ids[:0]
	for _, id := range ids {
		in := r.instances[id]
		if in == nil || in.rec == nil || !in.rec.waiting {
			continue
		}
		r.checkWaiting(in)
		if in.rec != nil && in.rec.waiting {
			keep = append(keep, id)
		}
	}
	if len(keep) == 0 {
		delete(r.waiters, x)
	} else {
		r.waiters[x] = keep
	}
}

// recoveryAccept ends the recovery with Accept(b, c, D) through the normal
// slow path at the recovery's ballot.
func (r *Replica) recoveryAccept(in *instance, c *Payload, D Deps) {
	b := in.rec.ballot
	r.dropRecovery(in)
	if in.bal != b || in.phase == Committed {
		return
	}
	in.lead = &leader{ballot: b}
	r.leading[in.id] = in
	r.acceptAsLeader(in, b, c, D)
}

// recoveryCommit ends the recovery with Commit(b, c, D) of a value found
// committed.
func (r *Replica) recoveryCommit(in *instance, c *Payload, D Deps) {
	b := in.rec.ballot
	r.dropRecovery(in)
	if in.phase == Committed {
		return
	}
	r.counters.Recovered++
	r.commitAsLeader(in, b, c, D)
}
