package replica

// instance is one replica's state for one instance id: exactly the variables
// of the paper (epaxos-star.md §1) plus local execution and coordinator
// bookkeeping.
type instance struct {
	id       InstanceID
	cmd      *Payload // cmd[id]: the command, NopPayload, or nil (⊥)
	initCmd  *Payload // initCmd[id]: set by PreAccept or Validate, else nil (⊥)
	deps     Deps     // dep[id]
	initDeps Deps     // initDep[id]: the D of PreAccept or Validate
	phase    Phase
	bal      Ballot // highest ballot promised
	abal     Ballot // ballot of the last accepted or committed value

	// storedCmd is cmd as of the last record handed out in a Ready by
	// this Replica (nil after a restart): see InstanceRecord.CommandUnchanged.
	storedCmd *Payload

	executed bool // executed (or skipped, for a no-op) by this replica
	indexed  bool // cmd has been added to the interference index
	dirty    bool // changed since the last Ready
	tj       tarjan

	// lead is set while this replica coordinates the instance at ballot
	// lead.ballot; volatile, lost on restart.
	lead *leader
	// rec is set while this replica recovers the instance (Fig. 5).
	rec *recovery
	// reproposed is set once this replica's own instance, decided as a
	// no-op, has had its commands proposed again in a new instance.
	reproposed bool
	// gated is set while this replica's own instance, started by Enqueue,
	// is uncommitted and counted in the gate (hold.go).
	gated bool
}

// leader is the coordinator's volatile bookkeeping for one instance.
type leader struct {
	ballot Ballot
	// preAcceptOKs holds D_q from each PreAcceptOK, the coordinator's own included.
	preAcceptOKs map[ReplicaID]Deps
	// acceptOKs holds the replicas that sent AcceptOK(ballot).
	acceptOKs map[ReplicaID]bool
	// since is the tick of the last (re)send; a phase that has not finished
	// TimeoutTicks later is resent to every replica that has not replied.
	since uint64
	// widened is set once a thrifty send has fallen back to all replicas.
	widened bool
}

// InstanceRecord is the durable state of one instance: what a replica must
// have on stable storage before any message that depends on it is sent.
type InstanceRecord struct {
	ID          InstanceID
	Command     *Payload
	InitCommand *Payload
	Deps        Deps
	InitDeps    Deps
	Phase       Phase
	Bal         Ballot
	Abal        Ballot
	// CommandUnchanged says that Command is the command of the last record
	// of this instance that this Replica handed out in a Ready, since it
	// was created or restored: a store that keeps commands apart from the
	// rest of the record need not write it again. It is never set on the
	// first record of an instance after a restart.
	CommandUnchanged bool
}

// Clone returns a deep copy of rec that shares no memory with it.
func (rec InstanceRecord) Clone() InstanceRecord {
	rec.Command = rec.Command.Clone()
	rec.InitCommand = rec.InitCommand.Clone()
	rec.Deps = rec.Deps.Clone()
	rec.InitDeps = rec.InitDeps.Clone()
	return rec
}

// record returns in's durable state for a Ready, and notes its command as
// handed out.
func (in *instance) record() InstanceRecord {
	rec := InstanceRecord{
		ID: in.id, Command: in.cmd, InitCommand: in.initCmd, Deps: in.deps,
		InitDeps: in.initDeps, Phase: in.phase, Bal: in.bal, Abal: in.abal,
		CommandUnchanged: in.cmd != nil && in.cmd == in.storedCmd,
	}
	in.storedCmd = in.cmd
	return rec
}

// sameCommand returns old when c equals it, so that an instance keeps its
// command's identity when a message brings the same command again (as a
// Commit after a PreAccept does): its next record then has
// CommandUnchanged set. Otherwise it returns c.
func sameCommand(old, c *Payload) *Payload {
	if old != nil && old != c && old.Equal(c) {
		return old
	}
	return c
}
