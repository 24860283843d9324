package replica

// onLeaderTimeout runs when a phase this replica coordinates has waited
// TimeoutTicks: a PreAccept round with a slow quorum of replies settles for
// the slow path; otherwise the phase's message is sent again to every
// replica that has not answered (which is also the thrifty fallback to all).
func (r *Replica) onLeaderTimeout(in *instance) {
	l := in.lead
	l.since = r.now
	if in.bal > l.ballot {
		// A recovery at a higher ballot took over; its coordinator finishes.
		r.stopLeading(in)
		r.watch(in.id)
		return
	}
	switch {
	case in.phase == PreAccepted && l.ballot == 0 && l.acceptOKs == nil:
		if len(l.preAcceptOKs) >= r.q.Slow {
			r.decidePreAccept(in, true)
			return
		}
		for _, to := range r.peers() {
			if _, ok := l.preAcceptOKs[to]; !ok {
				r.request(Message{Type: MsgPreAccept, To: to, Instance: in.id, Command: in.initCmd, Deps: in.initDeps})
			}
		}
		l.widened = true
	case in.phase == Accepted && l.acceptOKs != nil:
		for _, to := range r.peers() {
			if !l.acceptOKs[to] {
				r.request(Message{Type: MsgAccept, To: to, Instance: in.id, Ballot: l.ballot, Command: in.cmd, Deps: in.deps})
			}
		}
		l.widened = true
	}
}
