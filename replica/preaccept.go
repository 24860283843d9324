package replica

// submit is submit(c), Fig. 3 lines 8–10: PreAccept(id, c, D) with
// D = {id' | cmd[id'] ⋈ c}, to every replica including this one. D's
// horizon is this replica's executed frontier (see Deps). The message
// to self is applied at once (atomically with the send, as in the TLA+ spec),
// so the coordinator's own PreAcceptOK is the first reply counted.
func (r *Replica) submit(id InstanceID, c *Payload) {
	r.counters.Proposed++
	in := r.instance(id)
	D := r.conflicts(c, id, r.exec.horizon())
	r.preAccept(in, c, D)
	in.lead = &leader{
		ballot:       0,
		preAcceptOKs: map[ReplicaID]Deps{r.id: in.deps},
		since:        r.now,
	}
	r.leading[id] = in
	targets := r.peers()
	if r.thrifty {
		targets = targets[:r.q.Fast-1]
	}
	for _, to := range targets {
		r.request(Message{Type: MsgPreAccept, To: to, Instance: id, Command: c, Deps: D})
	}
}

// preAccept is the body of "On PreAccept", Fig. 3 lines 11–18, after its
// guard: cmd = initCmd = c, initDep = D, dep = D ∪ {id' | cmd[id'] ⋈ c},
// phase = PREACCEPTED.
func (r *Replica) preAccept(in *instance, c *Payload, D Deps) {
	in.cmd, in.initCmd = c, c
	in.initDeps = D
	in.deps = D.Union(r.conflicts(c, in.id, D))
	in.phase = PreAccepted
	r.learnCommand(in)
	r.markDirty(in)
}

// onPreAccept handles PreAccept(id, c, D) from id's owner.
func (r *Replica) onPreAccept(m Message) {
	in := r.instance(m.Instance)
	switch {
	case in.bal == 0 && in.phase == Initial:
		// Lines 11–18; pre: bal = 0 ∧ phase = INITIAL.
		r.preAccept(in, m.Command, m.Deps)
		r.watch(in.id)
	case in.bal == 0 && in.phase == PreAccepted && in.initCmd.Equal(m.Command) && in.initDeps.Equal(m.Deps):
		// A retransmission (the coordinator timed out waiting for us): our
		// reply may have been lost, so repeat it. dep is unchanged since we
		// pre-accepted, so the repeated reply promises nothing new.
	case in.phase == Committed:
		// The coordinator is behind: tell it the decision.
		r.sendCommit(m.From, in)
		return
	default:
		// Guard fails: a recovery has started (bal > 0) or the instance has
		// moved on. The PreAccept is stale; ignore it.
		return
	}
	r.send(Message{Type: MsgPreAcceptOK, To: m.From, Instance: in.id, Deps: in.deps})
}

// onPreAcceptOK handles PreAcceptOK(id, D_q), Fig. 3 lines 19–25.
func (r *Replica) onPreAcceptOK(m Message) {
	in := r.instances[m.Instance]
	// pre: bal = 0 ∧ phase = PREACCEPTED, and we coordinate id at ballot 0.
	if in == nil || in.lead == nil || in.lead.ballot != 0 || in.bal != 0 || in.phase != PreAccepted {
		return
	}
	if _, dup := in.lead.preAcceptOKs[m.From]; dup {
		return
	}
	in.lead.preAcceptOKs[m.From] = m.Deps
	r.decidePreAccept(in, false)
}

// decidePreAccept applies lines 19–25 to the PreAcceptOKs received so far.
//
// Fast path (line 22): a set Q of at least N−E replies, each with
// D_q = initDep[id], commits (id, cmd, initDep) at ballot 0. Since every
// member of such a Q equals initDep, ∪D_q = initDep.
//
// Slow path (line 24): otherwise, with at least N−F replies, Accept the
// union of every reply's deps at ballot 0. The coordinator does not take the
// slow path while a fast quorum can still form, unless timedOut: the
// pseudocode allows any Q of N−F, and waiting a little for N−E is what makes
// the fast path likely (epaxos-star.md §5, reply ordering).
func (r *Replica) decidePreAccept(in *instance, timedOut bool) {
	replies := in.lead.preAcceptOKs
	matching := 0
	for _, d := range replies {
		if d.Equal(in.initDeps) {
			matching++
		}
	}
	if matching >= r.q.Fast {
		r.counters.FastCommits++
		r.commitAsLeader(in, 0, in.cmd, in.initDeps)
		return
	}
	if len(replies) < r.q.Slow {
		return
	}
	// Replies can still come only from the replicas asked: all of them,
	// or, for a thrifty coordinator that has not widened, its fast quorum.
	// (Counting the others made a thrifty coordinator wait out a whole
	// timeout on every conflict, for replies nobody was asked for.)
	asked := r.q.N
	if r.thrifty && !in.lead.widened {
		asked = r.q.Fast
	}
	fastStillPossible := matching+(asked-len(replies)) >= r.q.Fast
	if fastStillPossible && !timedOut {
		return
	}
	D := in.deps // the coordinator's own reply, equal to initDep
	for _, d := range replies {
		D = D.Union(d)
	}
	r.acceptAsLeader(in, 0, in.cmd, D)
}
