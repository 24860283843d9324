// Package wire converts the protocol core's value types (package replica)
// to and from their protobuf form (package epaxospb), for the peer
// transport and the durable store alike, so that what is sent and what is
// stored are read by the same checks.
//
// The To* direction trusts its input: it comes from our own core. The From*
// direction reads what a peer sent or a disk returned and rejects anything
// the core could not have produced, with an error that names the offending
// part, and never panics.
package wire

import (
	"errors"
	"fmt"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
)

// InstanceToProto converts an instance id to its wire form.
func InstanceToProto(id replica.InstanceID) *epaxospb.InstanceID {
	return &epaxospb.InstanceID{Replica: uint32(id.Replica), Slot: id.Slot}
}

// InstanceFromProto converts a received instance id; slot 0 names nothing
// and is rejected, as is a nil id.
func InstanceFromProto(p *epaxospb.InstanceID) (replica.InstanceID, error) {
	if p == nil {
		return replica.InstanceID{}, errors.New("nil instance id")
	}
	if p.GetSlot() == 0 {
		return replica.InstanceID{}, fmt.Errorf("instance %d.0: slot 0 names no instance", p.GetReplica())
	}
	return replica.InstanceID{Replica: replica.ReplicaID(p.GetReplica()), Slot: p.GetSlot()}, nil
}

// PhaseFromProto converts a received phase, rejecting unknown values.
func PhaseFromProto(p epaxospb.Phase) (replica.Phase, error) {
	if p < epaxospb.Phase_PHASE_INITIAL || p > epaxospb.Phase_PHASE_COMMITTED {
		return 0, fmt.Errorf("unknown phase %d", int32(p))
	}
	return replica.Phase(p), nil
}

// DepsToProto converts a dependency set: its horizon and its listed ids as
// two parallel columns. The empty set is encoded as nil.
func DepsToProto(d replica.Deps) *epaxospb.Deps {
	if d.IsEmpty() {
		return nil
	}
	pd := &epaxospb.Deps{}
	if n := d.HorizonColumns(); n > 0 {
		pd.Horizon = make([]uint64, n)
		for q := range pd.Horizon {
			pd.Horizon[q] = d.Horizon(replica.ReplicaID(q))
		}
	}
	if ids := d.IDs(); len(ids) > 0 {
		pd.Replicas = make([]uint32, len(ids))
		pd.Slots = make([]uint64, len(ids))
		for i, id := range ids {
			pd.Replicas[i] = uint32(id.Replica)
			pd.Slots[i] = id.Slot
		}
	}
	return pd
}

// DepsFromProto converts received deps. The columns must have the same
// length and no slot may be 0. The result is normalized (sorted, unique,
// nothing listed under the horizon, trailing zeros of the horizon
// dropped): order and redundancy carry no information. Nil or empty deps
// give the empty set.
func DepsFromProto(pd *epaxospb.Deps) (replica.Deps, error) {
	rs, ss := pd.GetReplicas(), pd.GetSlots()
	if len(rs) != len(ss) {
		return replica.Deps{}, fmt.Errorf("columns of different lengths: %d replicas, %d slots", len(rs), len(ss))
	}
	var ids []replica.InstanceID
	if len(rs) > 0 {
		ids = make([]replica.InstanceID, len(rs))
		for i := range rs {
			if ss[i] == 0 {
				return replica.Deps{}, fmt.Errorf("entry %d: instance %d.0: slot 0 names no instance", i, rs[i])
			}
			ids[i] = replica.InstanceID{Replica: replica.ReplicaID(rs[i]), Slot: ss[i]}
		}
	}
	return replica.NewDepsWithHorizon(pd.GetHorizon(), ids...), nil
}

// PayloadToProto converts a payload; nil (⊥) stays nil.
func PayloadToProto(p *replica.Payload) *epaxospb.Payload {
	if p == nil {
		return nil
	}
	pp := &epaxospb.Payload{Nop: p.Nop}
	if len(p.Commands) > 0 {
		// One allocation for every command of the batch, not one each.
		slab := make([]epaxospb.Command, len(p.Commands))
		pp.Commands = make([]*epaxospb.Command, len(p.Commands))
		for i, c := range p.Commands {
			fillCommand(&slab[i], c)
			pp.Commands[i] = &slab[i]
		}
	}
	return pp
}

// PayloadFromProto converts a received payload. A nil payload is ⊥ and maps
// to a nil *replica.Payload, which is legal. A no-op that carries commands is
// rejected, as is any malformed command.
func PayloadFromProto(pp *epaxospb.Payload) (*replica.Payload, error) {
	if pp == nil {
		return nil, nil
	}
	cmds := pp.GetCommands()
	if pp.GetNop() && len(cmds) > 0 {
		return nil, fmt.Errorf("no-op payload carries %d commands", len(cmds))
	}
	p := &replica.Payload{Nop: pp.GetNop()}
	if len(cmds) > 0 {
		p.Commands = make([]replica.Command, len(cmds))
		for i, pc := range cmds {
			c, err := CommandFromProto(pc)
			if err != nil {
				return nil, fmt.Errorf("commands[%d]: %w", i, err)
			}
			p.Commands[i] = c
		}
	}
	return p, nil
}

// CommandToProto converts a command to its wire form.
func CommandToProto(c replica.Command) *epaxospb.Command {
	pc := new(epaxospb.Command)
	fillCommand(pc, c)
	return pc
}

func fillCommand(pc *epaxospb.Command, c replica.Command) {
	pc.ClientId = c.ClientID
	pc.Seq = c.Seq
	pc.Access = epaxospb.Access(c.Access)
	pc.Key = []byte(c.Key)
	pc.Value = c.Value
}

// CommandFromProto converts a received command, rejecting a nil command and
// an unknown access. The key becomes a string; an empty value becomes nil
// (the wire cannot tell them apart). The value may share memory with pc.
func CommandFromProto(pc *epaxospb.Command) (replica.Command, error) {
	if pc == nil {
		return replica.Command{}, errors.New("nil command")
	}
	a, err := AccessFromProto(pc.GetAccess())
	if err != nil {
		return replica.Command{}, err
	}
	c := replica.Command{
		ClientID: pc.GetClientId(),
		Seq:      pc.GetSeq(),
		Access:   a,
		Key:      string(pc.GetKey()),
	}
	if v := pc.GetValue(); len(v) > 0 {
		c.Value = v
	}
	return c, nil
}

// AccessFromProto converts a received access, rejecting ACCESS_UNSPECIFIED
// and unknown values.
func AccessFromProto(a epaxospb.Access) (replica.Access, error) {
	switch a {
	case epaxospb.Access_READ:
		return replica.Read, nil
	case epaxospb.Access_WRITE:
		return replica.Write, nil
	case epaxospb.Access_DELETE:
		return replica.Delete, nil
	}
	return 0, fmt.Errorf("unknown access %d", int32(a))
}
