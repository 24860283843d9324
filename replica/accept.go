package replica

// acceptAsLeader sends Accept(b, id, c, D) to every replica (a slow quorum
// when thrifty). The message to self is applied at once, so the
// coordinator's own accepted state is in the same Ready as the Accepts and
// is persisted before they leave (epaxos-star.md §5; reserve.go shows what
// goes wrong when an Accept leaves first).
func (r *Replica) acceptAsLeader(in *instance, b Ballot, c *Payload, D Deps) {
	r.accept(in, b, c, D)
	in.lead.ballot = b
	in.lead.acceptOKs = map[ReplicaID]bool{r.id: true}
	in.lead.since = r.now
	in.lead.widened = false
	targets := r.peers()
	if r.thrifty {
		targets = targets[:r.q.Slow-1]
	}
	for _, to := range targets {
		r.request(Message{Type: MsgAccept, To: to, Instance: in.id, Ballot: b, Command: c, Deps: D})
	}
	r.checkAcceptQuorum(in)
}

// accept is the body of "On Accept", Fig. 3 lines 26–33, after its guard:
// bal = abal = b, cmd = c, dep = D, phase = ACCEPTED.
func (r *Replica) accept(in *instance, b Ballot, c *Payload, D Deps) {
	in.bal, in.abal = b, b
	in.cmd, in.deps = sameCommand(in.cmd, c), D
	in.phase = Accepted
	r.learnCommand(in)
	r.markDirty(in)
}

// onAccept handles Accept(b, id, c, D), Fig. 3 lines 26–33.
func (r *Replica) onAccept(m Message) {
	in := r.instance(m.Instance)
	b := m.Ballot
	switch {
	case in.phase == Committed:
		// The value is decided; whatever is accepted at b ≥ the deciding
		// ballot equals it. Rather than un-commit (the figure's guard allows
		// b > bal), answer with the decision so the coordinator finishes.
		r.sendCommit(m.From, in)
	case in.bal <= b:
		// pre: bal ≤ b ∧ (bal = b ⇒ phase ≠ COMMITTED); the second conjunct
		// holds because the instance is not committed here.
		r.accept(in, b, m.Command, m.Deps)
		if in.lead != nil && in.lead.ballot < b {
			r.stopLeading(in) // another replica recovers it at a higher ballot
		}
		if in.rec != nil && in.rec.ballot < b {
			r.dropRecovery(in)
		}
		r.watch(in.id)
		r.send(Message{Type: MsgAcceptOK, To: m.From, Instance: in.id, Ballot: b})
	default:
		// A higher ballot was promised: tell the stale coordinator.
		r.send(Message{Type: MsgNack, To: m.From, Instance: in.id, Ballot: in.bal})
	}
}

// onAcceptOK handles AcceptOK(b, id), Fig. 3 lines 34–36.
func (r *Replica) onAcceptOK(m Message) {
	in := r.instances[m.Instance]
	if in == nil || in.lead == nil || in.lead.acceptOKs == nil || in.lead.ballot != m.Ballot {
		return
	}
	in.lead.acceptOKs[m.From] = true
	r.checkAcceptQuorum(in)
}

// checkAcceptQuorum commits once N−F replicas accepted; pre: bal = b ∧
// phase = ACCEPTED (line 34).
func (r *Replica) checkAcceptQuorum(in *instance) {
	if in.bal != in.lead.ballot || in.phase != Accepted || len(in.lead.acceptOKs) < r.q.Slow {
		return
	}
	if in.lead.ballot == 0 {
		r.counters.SlowCommits++
	} else {
		r.counters.Recovered++
	}
	r.commitAsLeader(in, in.lead.ballot, in.cmd, in.deps)
}

// onNack handles a peer's refusal: it promised a higher ballot, so another
// replica is recovering the instance and this replica stops coordinating or
// recovering it at its lower ballot. Its watch retries later, higher.
func (r *Replica) onNack(m Message) {
	in := r.instances[m.Instance]
	if in == nil {
		return
	}
	if in.rec != nil && m.Ballot > in.rec.ballot {
		r.dropRecovery(in)
		r.watch(in.id)
		if w := r.watched[in.id]; w != nil && m.Ballot > in.bal {
			// Retry above the ballot we were refused with.
			in.bal = m.Ballot
			r.markDirty(in)
		}
	}
	if in.lead == nil || m.Ballot <= in.lead.ballot {
		return
	}
	r.stopLeading(in)
	r.watch(in.id)
}
