package transport

import (
	"errors"
	"fmt"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
)

// This file converts between the core's value types (package replica) and
// their wire form (package epaxospb). The To* direction trusts its input: it
// comes from our own core. The From* direction reads what a peer sent and
// must reject anything the core could not have produced, with an error that
// names the offending field, and never panic.

// MessageToProto converts a core message to its wire form. Fields the message
// type does not use are encoded as they are (normally empty).
func MessageToProto(m replica.Message) *epaxospb.Message {
	pm := &epaxospb.Message{
		Type:        epaxospb.MessageType(m.Type),
		From:        uint32(m.From),
		To:          uint32(m.To),
		Instance:    InstanceToProto(m.Instance),
		Ballot:      uint64(m.Ballot),
		Command:     PayloadToProto(m.Command),
		Deps:        DepsToProto(m.Deps),
		Abal:        uint64(m.Abal),
		Phase:       epaxospb.Phase(m.Phase),
		InitCommand: PayloadToProto(m.InitCommand),
		InitDeps:    DepsToProto(m.InitDeps),
		Count:       m.Count,
	}
	if len(m.Invalidators) > 0 {
		pm.Invalidators = make([]*epaxospb.Invalidator, len(m.Invalidators))
		for i, inv := range m.Invalidators {
			pm.Invalidators[i] = &epaxospb.Invalidator{
				Instance: InstanceToProto(inv.Instance),
				Phase:    epaxospb.Phase(inv.Phase),
			}
		}
	}
	return pm
}

// MessageFromProto converts a message received from a peer. It returns an
// error, and no message, when the contents are impossible: an unknown message
// type or phase, a missing instance or an instance with slot 0, malformed
// deps, or a malformed payload (see PayloadFromProto, DepsFromProto).
//
// Every message type names an instance, so Instance is required. Deps are
// normalized (sorted, without duplicates). Byte fields of the result may
// share memory with pm; pm must not be modified afterwards.
func MessageFromProto(pm *epaxospb.Message) (replica.Message, error) {
	if pm == nil {
		return replica.Message{}, errors.New("nil message")
	}
	t := replica.MessageType(pm.GetType())
	if int32(pm.GetType()) != int32(t) || !t.Valid() {
		return replica.Message{}, fmt.Errorf("unknown message type %d", int32(pm.GetType()))
	}
	m := replica.Message{
		Type:   t,
		From:   replica.ReplicaID(pm.GetFrom()),
		To:     replica.ReplicaID(pm.GetTo()),
		Ballot: replica.Ballot(pm.GetBallot()),
		Abal:   replica.Ballot(pm.GetAbal()),
		Count:  pm.GetCount(),
	}
	var err error
	fail := func(field string, err error) (replica.Message, error) {
		return replica.Message{}, fmt.Errorf("%s from %d: %s: %w", t, m.From, field, err)
	}
	if pm.GetInstance() == nil {
		return fail("instance", errors.New("missing"))
	}
	if m.Instance, err = InstanceFromProto(pm.GetInstance()); err != nil {
		return fail("instance", err)
	}
	if m.Phase, err = PhaseFromProto(pm.GetPhase()); err != nil {
		return fail("phase", err)
	}
	if m.Command, err = PayloadFromProto(pm.GetCommand()); err != nil {
		return fail("command", err)
	}
	if m.Deps, err = DepsFromProto(pm.GetDeps()); err != nil {
		return fail("deps", err)
	}
	if m.InitCommand, err = PayloadFromProto(pm.GetInitCommand()); err != nil {
		return fail("init_command", err)
	}
	if m.InitDeps, err = DepsFromProto(pm.GetInitDeps()); err != nil {
		return fail("init_deps", err)
	}
	if invs := pm.GetInvalidators(); len(invs) > 0 {
		m.Invalidators = make([]replica.Invalidator, len(invs))
		for i, pinv := range invs {
			if pinv == nil || pinv.GetInstance() == nil {
				return fail(fmt.Sprintf("invalidators[%d]", i), errors.New("missing instance"))
			}
			id, err := InstanceFromProto(pinv.GetInstance())
			if err != nil {
				return fail(fmt.Sprintf("invalidators[%d]", i), err)
			}
			ph, err := PhaseFromProto(pinv.GetPhase())
			if err != nil {
				return fail(fmt.Sprintf("invalidators[%d]", i), err)
			}
			m.Invalidators[i] = replica.Invalidator{Instance: id, Phase: ph}
		}
	}
	return m, nil
}

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

// DepsToProto converts a dependency set to two parallel columns. An empty set
// is encoded as nil.
func DepsToProto(d replica.Deps) *epaxospb.Deps {
	if len(d) == 0 {
		return nil
	}
	pd := &epaxospb.Deps{
		Replicas: make([]uint32, len(d)),
		Slots:    make([]uint64, len(d)),
	}
	for i, id := range d {
		pd.Replicas[i] = uint32(id.Replica)
		pd.Slots[i] = id.Slot
	}
	return pd
}

// DepsFromProto converts received deps. The columns must have the same length
// and no slot may be 0. The result is normalized with replica.NewDeps (sorted,
// unique); nil or empty deps give a nil set.
func DepsFromProto(pd *epaxospb.Deps) (replica.Deps, error) {
	rs, ss := pd.GetReplicas(), pd.GetSlots()
	if len(rs) != len(ss) {
		return nil, fmt.Errorf("columns of different lengths: %d replicas, %d slots", len(rs), len(ss))
	}
	if len(rs) == 0 {
		return nil, nil
	}
	ids := make([]replica.InstanceID, len(rs))
	for i := range rs {
		if ss[i] == 0 {
			return nil, fmt.Errorf("entry %d: instance %d.0: slot 0 names no instance", i, rs[i])
		}
		ids[i] = replica.InstanceID{Replica: replica.ReplicaID(rs[i]), Slot: ss[i]}
	}
	return replica.NewDeps(ids...), nil
}

// PayloadToProto converts a payload; nil (⊥) stays nil.
func PayloadToProto(p *replica.Payload) *epaxospb.Payload {
	if p == nil {
		return nil
	}
	pp := &epaxospb.Payload{Nop: p.Nop}
	if len(p.Commands) > 0 {
		pp.Commands = make([]*epaxospb.Command, len(p.Commands))
		for i, c := range p.Commands {
			pp.Commands[i] = CommandToProto(c)
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
	return &epaxospb.Command{
		ClientId: c.ClientID,
		Seq:      c.Seq,
		Access:   epaxospb.Access(c.Access),
		Key:      []byte(c.Key),
		Value:    c.Value,
	}
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
