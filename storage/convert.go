package storage

import (
	"errors"
	"fmt"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/proto/storagepb"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/wire"
)

// Conversions between the replica types and the stored messages; the values
// inside go through package wire, as on the network. Decoding rejects
// anything the store could not have written (an unknown phase or access, a
// no-op with commands, slot 0, deps columns of different lengths): a value
// that passes its checksum but fails here is still not used.
//
// Mapping: a nil *replica.Payload (⊥) is an absent payload; a no-op is
// {nop: true}; an empty or nil dependency set is absent and loads as nil; an
// empty command value loads as nil.

// recordToProto is the reference encoding of rec (its ID is the key, not part
// of the value). Save writes the same bytes with appendRecord.
func recordToProto(rec *replica.InstanceRecord) *storagepb.InstanceRecord {
	m := &storagepb.InstanceRecord{
		CommandStoredApart: rec.Command != nil,
		Deps:               wire.DepsToProto(rec.Deps),
		InitDeps:           wire.DepsToProto(rec.InitDeps),
		Phase:              epaxospb.Phase(rec.Phase),
		Bal:                uint64(rec.Bal),
		Abal:               uint64(rec.Abal),
	}
	if initIsCommand(rec) {
		m.InitCommandIsCommand = true
	} else {
		m.InitCommand = wire.PayloadToProto(rec.InitCommand)
	}
	return m
}

// commandToProto is the reference encoding of a record's non-nil command,
// stored under its command key. Save writes the same bytes with
// appendCommandValue.
func commandToProto(rec *replica.InstanceRecord) *epaxospb.Payload {
	return wire.PayloadToProto(rec.Command)
}

// initIsCommand reports whether a record's initial command equals its
// command, so that it is stored once.
func initIsCommand(rec *replica.InstanceRecord) bool {
	return rec.InitCommand != nil && rec.Command != nil &&
		(rec.InitCommand == rec.Command || rec.InitCommand.Equal(rec.Command))
}

// recordFromProto converts a stored record of instance id; apart is the
// command stored under its command key, if there is one.
func recordFromProto(id replica.InstanceID, m *storagepb.InstanceRecord, apart *replica.Payload) (replica.InstanceRecord, error) {
	rec := replica.InstanceRecord{ID: id, Bal: replica.Ballot(m.GetBal()), Abal: replica.Ballot(m.GetAbal())}
	var err error
	switch {
	case m.GetCommandStoredApart() && m.GetCommand() != nil:
		return rec, errors.New("command both in the record and said to be stored apart")
	case m.GetCommandStoredApart() && apart == nil:
		return rec, errors.New("command said to be stored apart, and there is none")
	case m.GetCommandStoredApart():
		rec.Command = apart
	default: // format versions 1 and 2
		if rec.Command, err = wire.PayloadFromProto(m.GetCommand()); err != nil {
			return rec, fmt.Errorf("command: %w", err)
		}
	}
	switch {
	case m.GetInitCommandIsCommand() && m.GetInitCommand() != nil:
		return rec, errors.New("initial command both stored and said to equal the command")
	case m.GetInitCommandIsCommand() && rec.Command == nil:
		return rec, errors.New("initial command said to equal an absent command")
	case m.GetInitCommandIsCommand():
		rec.InitCommand = rec.Command
	default:
		if rec.InitCommand, err = wire.PayloadFromProto(m.GetInitCommand()); err != nil {
			return rec, fmt.Errorf("initial command: %w", err)
		}
	}
	if rec.Deps, err = wire.DepsFromProto(m.GetDeps()); err != nil {
		return rec, fmt.Errorf("deps: %w", err)
	}
	if rec.InitDeps, err = wire.DepsFromProto(m.GetInitDeps()); err != nil {
		return rec, fmt.Errorf("initial deps: %w", err)
	}
	if rec.Phase, err = wire.PhaseFromProto(m.GetPhase()); err != nil {
		return rec, err
	}
	return rec, nil
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
