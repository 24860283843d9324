package storage

import (
	"errors"
	"fmt"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/proto/storagepb"
	"github.com/epaxosd/epaxosd/replica"
)

// Conversions between the replica types and the stored messages. Decoding
// rejects anything the store could not have written (an unknown phase or
// access, a no-op with commands, slot 0, deps columns of different lengths):
// a value that passes its checksum but fails here is still not used.
//
// Mapping: a nil *replica.Payload (⊥) is an absent payload; a no-op is
// {nop: true}; an empty or nil dependency set is absent and loads as nil; an
// empty command value loads as nil.

// recordToProto is the reference encoding of rec (its ID is the key, not part
// of the value). Save writes the same bytes with appendRecord.
func recordToProto(rec *replica.InstanceRecord) *storagepb.InstanceRecord {
	return &storagepb.InstanceRecord{
		Command:     payloadToProto(rec.Command),
		InitCommand: payloadToProto(rec.InitCommand),
		Deps:        depsToProto(rec.Deps),
		InitDeps:    depsToProto(rec.InitDeps),
		Phase:       epaxospb.Phase(rec.Phase),
		Bal:         uint64(rec.Bal),
		Abal:        uint64(rec.Abal),
	}
}

// recordFromProto converts a stored record of instance id.
func recordFromProto(id replica.InstanceID, m *storagepb.InstanceRecord) (replica.InstanceRecord, error) {
	rec := replica.InstanceRecord{ID: id, Bal: replica.Ballot(m.GetBal()), Abal: replica.Ballot(m.GetAbal())}
	var err error
	if rec.Command, err = payloadFromProto(m.GetCommand()); err != nil {
		return rec, fmt.Errorf("command: %w", err)
	}
	if rec.InitCommand, err = payloadFromProto(m.GetInitCommand()); err != nil {
		return rec, fmt.Errorf("initial command: %w", err)
	}
	if rec.Deps, err = depsFromProto(m.GetDeps()); err != nil {
		return rec, fmt.Errorf("deps: %w", err)
	}
	if rec.InitDeps, err = depsFromProto(m.GetInitDeps()); err != nil {
		return rec, fmt.Errorf("initial deps: %w", err)
	}
	if rec.Phase, err = phaseFromProto(m.GetPhase()); err != nil {
		return rec, err
	}
	return rec, nil
}

func phaseFromProto(p epaxospb.Phase) (replica.Phase, error) {
	if p < epaxospb.Phase_PHASE_INITIAL || p > epaxospb.Phase_PHASE_COMMITTED {
		return 0, fmt.Errorf("unknown phase %d", int32(p))
	}
	return replica.Phase(p), nil
}

func payloadToProto(p *replica.Payload) *epaxospb.Payload {
	if p == nil {
		return nil
	}
	pp := &epaxospb.Payload{Nop: p.Nop}
	if len(p.Commands) > 0 {
		pp.Commands = make([]*epaxospb.Command, len(p.Commands))
		for i, c := range p.Commands {
			pp.Commands[i] = &epaxospb.Command{
				ClientId: c.ClientID,
				Seq:      c.Seq,
				Access:   epaxospb.Access(c.Access),
				Key:      []byte(c.Key),
				Value:    c.Value,
			}
		}
	}
	return pp
}

func payloadFromProto(pp *epaxospb.Payload) (*replica.Payload, error) {
	if pp == nil {
		return nil, nil
	}
	cmds := pp.GetCommands()
	if pp.GetNop() && len(cmds) > 0 {
		return nil, fmt.Errorf("no-op carries %d commands", len(cmds))
	}
	p := &replica.Payload{Nop: pp.GetNop()}
	if len(cmds) > 0 {
		p.Commands = make([]replica.Command, len(cmds))
		for i, pc := range cmds {
			a := replica.Access(pc.GetAccess())
			if pc.GetAccess() < 0 || pc.GetAccess() > 255 || !a.Valid() {
				return nil, fmt.Errorf("command %d: unknown access %d", i, int32(pc.GetAccess()))
			}
			c := replica.Command{
				ClientID: pc.GetClientId(),
				Seq:      pc.GetSeq(),
				Access:   a,
				Key:      string(pc.GetKey()),
			}
			if len(pc.GetValue()) > 0 {
				c.Value = pc.GetValue()
			}
			p.Commands[i] = c
		}
	}
	return p, nil
}

func depsToProto(d replica.Deps) *epaxospb.Deps {
	if len(d) == 0 {
		return nil
	}
	pd := &epaxospb.Deps{Replicas: make([]uint32, len(d)), Slots: make([]uint64, len(d))}
	for i, id := range d {
		pd.Replicas[i] = uint32(id.Replica)
		pd.Slots[i] = id.Slot
	}
	return pd
}

// depsFromProto converts a stored set. Sets are stored sorted; one that is
// not is sorted rather than refused, since order carries no information.
func depsFromProto(pd *epaxospb.Deps) (replica.Deps, error) {
	rs, ss := pd.GetReplicas(), pd.GetSlots()
	if len(rs) != len(ss) {
		return nil, fmt.Errorf("columns of different lengths: %d replicas, %d slots", len(rs), len(ss))
	}
	if len(rs) == 0 {
		return nil, nil
	}
	d := make(replica.Deps, len(rs))
	sorted := true
	for i := range rs {
		if ss[i] == 0 {
			return nil, fmt.Errorf("entry %d: instance %d.0: slot 0 names no instance", i, rs[i])
		}
		d[i] = replica.InstanceID{Replica: replica.ReplicaID(rs[i]), Slot: ss[i]}
		if i > 0 && !d[i-1].Less(d[i]) {
			sorted = false
		}
	}
	if !sorted {
		d = replica.NewDeps(d...)
	}
	return d, nil
}

func executedFromProto(m *storagepb.Executed) (replica.InstanceID, error) {
	pid := m.GetInstance()
	if pid == nil {
		return replica.InstanceID{}, errors.New("no instance id")
	}
	if pid.GetSlot() == 0 {
		return replica.InstanceID{}, fmt.Errorf("instance %d.0: slot 0 names no instance", pid.GetReplica())
	}
	return replica.InstanceID{Replica: replica.ReplicaID(pid.GetReplica()), Slot: pid.GetSlot()}, nil
}

func metaToProto(id Identity) *storagepb.Meta {
	return &storagepb.Meta{
		FormatVersion: FormatVersion,
		Cluster:       id.Cluster,
		Replica:       id.Replica,
		Replicas:      uint32(id.Replicas),
	}
}

func identityFromProto(m *storagepb.Meta) Identity {
	return Identity{Cluster: m.GetCluster(), Replica: m.GetReplica(), Replicas: int(m.GetReplicas())}
}
