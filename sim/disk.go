package sim

import (
	"slices"

	"github.com/epaxosd/epaxosd/replica"
)

// disk is one replica's stable storage: what survives a crash. Every write
// is synced when it returns (the simulation crashes between writes, never
// inside one), so the disk holds exactly what the node persisted:
//
//   - the latest InstanceRecord per instance id (the core's durable state,
//     with the committed commands, so the state machine can be rebuilt);
//   - the executed log: the ids of the Execute entries the node took on, in
//     order. The state machine and the session table are volatile and are
//     rebuilt after a restart by replaying this log's commands.
//
// The disk stores deep copies: nothing the core or the network holds
// aliases it, and a restart hands the core fresh copies.
type disk struct {
	records  map[replica.InstanceID]replica.InstanceRecord
	executed []replica.InstanceID
	execSet  map[replica.InstanceID]bool
	reserved uint64 // the node's own slots reserved (Ready.ReserveSlots)

	committed int // records in the committed phase
}

func newDisk() *disk {
	return &disk{
		records: make(map[replica.InstanceID]replica.InstanceRecord),
		execSet: make(map[replica.InstanceID]bool),
	}
}

// put persists rec, replacing the record of its instance, and returns the
// previous record, if any.
func (d *disk) put(rec replica.InstanceRecord) (prev replica.InstanceRecord, had bool) {
	prev, had = d.records[rec.ID]
	if rec.Phase == replica.Committed && (!had || prev.Phase != replica.Committed) {
		d.committed++
	}
	if had && prev.Phase == replica.Committed && rec.Phase != replica.Committed {
		d.committed--
	}
	d.records[rec.ID] = rec.Clone()
	return prev, had
}

// appendExecuted persists that id was executed. It reports false, changing
// nothing, if id is already in the log.
func (d *disk) appendExecuted(id replica.InstanceID) bool {
	if d.execSet[id] {
		return false
	}
	d.execSet[id] = true
	d.executed = append(d.executed, id)
	return true
}

// hardState is what a restarting replica reloads: every record, in instance
// order (map order would make the restart depend on Go's hash seed), and
// the executed log, all deep-copied.
func (d *disk) hardState() replica.HardState {
	ids := sortedIDs(d.records)
	st := replica.HardState{
		Instances: make([]replica.InstanceRecord, 0, len(ids)),
		Executed:  slices.Clone(d.executed),

		ReservedSlots: d.reserved,
	}
	for _, id := range ids {
		st.Instances = append(st.Instances, d.records[id].Clone())
	}
	return st
}

func sortedIDs[V any](m map[replica.InstanceID]V) []replica.InstanceID {
	out := make([]replica.InstanceID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.SortFunc(out, cmpID)
	return out
}

func cmpID(a, b replica.InstanceID) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
