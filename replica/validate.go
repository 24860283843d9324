package replica

import "fmt"

// maxDeps bounds the listed ids of the dependency sets a peer may send.
// Listed ids are the interfering instances above the coordinator's executed
// horizon (see Deps), normally those in flight, but a coordinator that was
// cut off for long has a low horizon; the bound only stops a hostile peer
// from exhausting memory.
const maxDeps = 1 << 20

// validate rejects messages that no correct peer could have sent: unknown
// replicas, ids outside any column, malformed deps or commands, and ballot
// 0 messages from a replica other than the instance's owner.
func (r *Replica) validate(m Message) error {
	n := ReplicaID(r.q.N)
	switch {
	case !m.Type.Valid():
		return fmt.Errorf("unknown message type %d", m.Type)
	case m.From >= n:
		return fmt.Errorf("unknown sender %d", m.From)
	case m.From == r.id:
		return fmt.Errorf("message claims to come from this replica")
	case m.To != r.id:
		return fmt.Errorf("addressed to %d", m.To)
	}
	if err := r.validID(m.Instance); err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	if err := r.validDeps(m.Deps); err != nil {
		return fmt.Errorf("deps: %w", err)
	}
	if err := r.validDeps(m.InitDeps); err != nil {
		return fmt.Errorf("init deps: %w", err)
	}
	if err := validPayload(m.Command); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if err := validPayload(m.InitCommand); err != nil {
		return fmt.Errorf("init command: %w", err)
	}
	if m.Phase > Committed || m.Abal > m.Ballot && m.Type == MsgRecoverOK {
		return fmt.Errorf("impossible phase %d or abal %d > ballot %d", m.Phase, m.Abal, m.Ballot)
	}
	for _, inv := range m.Invalidators {
		if err := r.validID(inv.Instance); err != nil {
			return fmt.Errorf("invalidator: %w", err)
		}
	}
	switch m.Type {
	case MsgPreAccept:
		if m.From != m.Instance.Replica {
			return fmt.Errorf("PreAccept for %v from a replica that does not own it", m.Instance)
		}
		if m.Command == nil || m.Command.Nop {
			return fmt.Errorf("PreAccept without a command")
		}
	case MsgCommit:
		if m.Command == nil && !m.CommandElided || m.Command != nil && m.CommandElided {
			return fmt.Errorf("Commit with %s and elided=%v", m.Command, m.CommandElided)
		}
	case MsgAccept, MsgValidate:
		if m.Command == nil {
			return fmt.Errorf("%s without a command", m.Type)
		}
	}
	if m.CommandElided && m.Type != MsgCommit {
		return fmt.Errorf("%s with an elided command", m.Type)
	}
	switch m.Type {
	case MsgAccept, MsgRecover, MsgValidate:
		// Only the owner of ballot b coordinates at b.
		if r.ballotOwner(m.Instance, m.Ballot) != m.From {
			return fmt.Errorf("%s at ballot %d, which replica %d does not own", m.Type, m.Ballot, m.From)
		}
	}
	return nil
}

// ballotOwner returns the replica that may coordinate id at ballot b.
func (r *Replica) ballotOwner(id InstanceID, b Ballot) ReplicaID {
	if b == 0 {
		return id.Replica
	}
	return ReplicaID(uint64(b) % uint64(r.q.N))
}

func (r *Replica) validID(id InstanceID) error {
	if id.Replica >= ReplicaID(r.q.N) {
		return fmt.Errorf("%v names unknown replica %d", id, id.Replica)
	}
	if id.Slot == 0 {
		return fmt.Errorf("%v has slot 0", id)
	}
	return nil
}

func (r *Replica) validDeps(d Deps) error {
	if d.Len() > maxDeps {
		return fmt.Errorf("%d dependencies exceed the limit of %d", d.Len(), maxDeps)
	}
	if d.HorizonColumns() > r.q.N {
		return fmt.Errorf("horizon of %d columns for %d replicas", d.HorizonColumns(), r.q.N)
	}
	ids := d.IDs()
	for i, id := range ids {
		if err := r.validID(id); err != nil {
			return err
		}
		if i > 0 && !ids[i-1].Less(id) {
			return fmt.Errorf("not a sorted set at %v", id)
		}
	}
	return nil
}

func validPayload(p *Payload) error {
	if p == nil {
		return nil
	}
	if p.Nop && len(p.Commands) > 0 {
		return fmt.Errorf("no-op with %d commands", len(p.Commands))
	}
	if !p.Nop && len(p.Commands) == 0 {
		return fmt.Errorf("empty batch")
	}
	for i, c := range p.Commands {
		if !c.Access.Valid() {
			return fmt.Errorf("command %d: invalid access %d", i, c.Access)
		}
	}
	return nil
}
