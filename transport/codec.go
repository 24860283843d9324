package transport

import (
	"errors"
	"fmt"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/wire"
)

// This file converts peer messages between the core's form (package
// replica) and the wire form (package epaxospb); package wire converts the
// values inside them. The From direction reads what a peer sent and must
// reject anything the core could not have produced, with an error that
// names the offending field, and never panic.

// MessageToProto converts a core message to its wire form. Fields the message
// type does not use are encoded as they are (normally empty).
func MessageToProto(m replica.Message) *epaxospb.Message {
	pm := &epaxospb.Message{
		Type:        epaxospb.MessageType(m.Type),
		From:        uint32(m.From),
		To:          uint32(m.To),
		Instance:    wire.InstanceToProto(m.Instance),
		Ballot:      uint64(m.Ballot),
		Command:     wire.PayloadToProto(m.Command),
		Deps:        wire.DepsToProto(m.Deps),
		Abal:        uint64(m.Abal),
		Phase:       epaxospb.Phase(m.Phase),
		InitCommand: wire.PayloadToProto(m.InitCommand),
		InitDeps:    wire.DepsToProto(m.InitDeps),
		Count:       m.Count,

		CommandElided: m.CommandElided,
	}
	if len(m.Invalidators) > 0 {
		pm.Invalidators = make([]*epaxospb.Invalidator, len(m.Invalidators))
		for i, inv := range m.Invalidators {
			pm.Invalidators[i] = &epaxospb.Invalidator{
				Instance: wire.InstanceToProto(inv.Instance),
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

		CommandElided: pm.GetCommandElided(),
	}
	var err error
	fail := func(field string, err error) (replica.Message, error) {
		return replica.Message{}, fmt.Errorf("%s from %d: %s: %w", t, m.From, field, err)
	}
	if pm.GetInstance() == nil {
		return fail("instance", errors.New("missing"))
	}
	if m.Instance, err = wire.InstanceFromProto(pm.GetInstance()); err != nil {
		return fail("instance", err)
	}
	if m.Phase, err = wire.PhaseFromProto(pm.GetPhase()); err != nil {
		return fail("phase", err)
	}
	if m.Command, err = wire.PayloadFromProto(pm.GetCommand()); err != nil {
		return fail("command", err)
	}
	if m.Deps, err = wire.DepsFromProto(pm.GetDeps()); err != nil {
		return fail("deps", err)
	}
	if m.InitCommand, err = wire.PayloadFromProto(pm.GetInitCommand()); err != nil {
		return fail("init_command", err)
	}
	if m.InitDeps, err = wire.DepsFromProto(pm.GetInitDeps()); err != nil {
		return fail("init_deps", err)
	}
	if invs := pm.GetInvalidators(); len(invs) > 0 {
		m.Invalidators = make([]replica.Invalidator, len(invs))
		for i, pinv := range invs {
			if pinv == nil || pinv.GetInstance() == nil {
				return fail(fmt.Sprintf("invalidators[%d]", i), errors.New("missing instance"))
			}
			id, err := wire.InstanceFromProto(pinv.GetInstance())
			if err != nil {
				return fail(fmt.Sprintf("invalidators[%d]", i), err)
			}
			ph, err := wire.PhaseFromProto(pinv.GetPhase())
			if err != nil {
				return fail(fmt.Sprintf("invalidators[%d]", i), err)
			}
			m.Invalidators[i] = replica.Invalidator{Instance: id, Phase: ph}
		}
	}
	return m, nil
}
