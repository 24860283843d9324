package replica

import "fmt"

// commitAsLeader decides (c, D) for id at ballot b: it applies the commit
// locally first (so it is persisted before Commit(b) leaves, which the
// recovery's line 56 relies on) and broadcasts Commit to every replica,
// thrifty or not.
func (r *Replica) commitAsLeader(in *instance, b Ballot, c *Payload, D Deps) {
	r.commit(in, b, c, D)
	for _, to := range r.peers() {
		r.sendCommit(to, in)
	}
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
