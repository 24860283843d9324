package replica

import "fmt"

// commitAsLeader decides (c, D) for id at ballot b: it applies the commit
// locally first (so it is persisted before Commit(b) leaves, which the
// recovery's line 56 relies on) and broadcasts Commit to every replica,
// thrifty or not.
//
// A replica that answered this coordinator's PreAccept (at ballot 0) or its
// Accept at b holds c already, so its Commit leaves c out
// (Message.CommandElided): a replica that pre-accepted or accepted c for
// the instance can later accept only c, since c is what is decided (any
// higher ballot's proposal is the decided value, and a ballot-0 PreAccept
// only ever carries the coordinator's command), and a replica accepts nothing
// at a lower ballot than one it answered. Its reply was sent only once c
// was durable, so a restart does not lose it either.
func (r *Replica) commitAsLeader(in *instance, b Ballot, c *Payload, D Deps) {
	l := in.lead // commit drops it
	r.commit(in, b, c, D)
	for _, to := range r.peers() {
		if l.holdsCommand(to) {
			r.send(Message{Type: MsgCommit, To: to, Instance: in.id, Ballot: in.abal, Deps: in.deps, CommandElided: true})
			continue
		}
		r.sendCommit(to, in)
	}
}

// holdsCommand reports whether q answered this coordination with the
// command durable: an AcceptOK at its ballot, or a PreAcceptOK at ballot 0.
// A nil leader knows of no one.
func (l *leader) holdsCommand(q ReplicaID) bool {
	if l == nil {
		return false
	}
	if l.acceptOKs[q] {
		return true
	}
	_, ok := l.preAcceptOKs[q]
	return ok && l.ballot == 0
}

// sendCommit tells replica to the committed value of in.
func (r *Replica) sendCommit(to ReplicaID, in *instance) {
	r.send(Message{Type: MsgCommit, To: to, Instance: in.id, Ballot: in.abal, Command: in.cmd, Deps: in.deps})
}

// commit is the body of "On Commit", Fig. 3 lines 37–42: abal = b, cmd = c,
// dep = D, phase = COMMITTED. The figure's guard bal = b is relaxed to any
// ballot: a Commit carries a decided value, and every ballot at which the
// instance can still be decided decides that same value, so learning it is
// safe whatever this replica promised. bal only grows.
func (r *Replica) commit(in *instance, b Ballot, c *Payload, D Deps) {
	in.abal = b
	if b > in.bal {
		in.bal = b
	}
	in.cmd, in.deps = sameCommand(in.cmd, c), D
	in.phase = Committed
	r.forgetLost(in.id)
	r.learnCommand(in)
	r.markDirty(in)
	r.stopLeading(in)
	r.dropRecovery(in)
	delete(r.watched, in.id)
	r.exec.committed(in)
	r.wakeWaiters(in.id)
	r.ungate(in)
	r.reproposeIfNop(in)
}

// reproposeIfNop proposes again, in a new instance, the commands of this
// replica's own instance that recovery decided as a no-op, so that the
// client that submitted them still gets them executed (epaxos-star.md §6).
// The replicated session table makes a re-proposal of a command that was
// also executed elsewhere harmless.
func (r *Replica) reproposeIfNop(in *instance) {
	if in.id.Replica != r.id || !in.cmd.Nop || in.reproposed || in.initCmd == nil || in.initCmd.Nop {
		return
	}
	in.reproposed = true
	r.submit(r.nextOwnID(), in.initCmd)
}

// onCommit handles Commit(b, id, c, D). A Commit that contradicts this
// replica's own commit of the instance means agreement is violated: either a
// protocol bug or a peer that is not following the protocol. It is refused
// with an error (the caller logs it) and changes nothing; a replica never
// crashes on what a peer sends.
func (r *Replica) onCommit(m Message) error {
	in := r.instance(m.Instance)
	if m.CommandElided {
		// The coordinator knows this replica accepted the command; one
		// that does not hold it is refused and changes nothing (recovery
		// or catch-up brings the decision with its command).
		if in.cmd == nil {
			return fmt.Errorf("commit of %v leaves out a command this replica does not hold", in.id)
		}
		m.Command = in.cmd
	}
	if in.phase == Committed {
		if !in.cmd.Equal(m.Command) || !in.deps.Equal(m.Deps) {
			return fmt.Errorf("agreement violated at %v: committed %s %v, got %s %v",
				in.id, in.cmd, in.deps, m.Command, m.Deps)
		}
		return nil
	}
	r.commit(in, m.Ballot, m.Command, m.Deps)
	return nil
}

// stopLeading drops the coordinator bookkeeping of in.
func (r *Replica) stopLeading(in *instance) {
	if in.lead != nil {
		in.lead = nil
		delete(r.leading, in.id)
	}
}
