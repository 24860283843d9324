package sim

import (
	"slices"

	"github.com/epaxosd/epaxosd/replica"
)

// disk is one replica's storage. Its fields are what the node has written;
// what survives a crash is the durable part: a Ready that does not need a
// sync (replica.Ready.NeedsSync) is written but stays pending until a
// later synced write makes it, and everything before it, durable, as a
// write-ahead log does. A crash drops the pending writes (crash).
// The simulation crashes between writes, never inside one. The disk holds:
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

	// The durable part, as of the last sync, and the writes since.
	durable     map[replica.InstanceID]replica.InstanceRecord
	durableExec int // executed[:durableExec] is durable
	durableRes  uint64
	pending     []replica.InstanceRecord // records written since the last sync
}

func newDisk() *disk {
	return &disk{
		records: make(map[replica.InstanceID]replica.InstanceRecord),
		execSet: make(map[replica.InstanceID]bool),
		durable: make(map[replica.InstanceID]replica.InstanceRecord),
	}
}

// sync makes every write so far durable.
func (d *disk) sync() {
	for _, rec := range d.pending {
		d.durable[rec.ID] = rec
	}
	d.pending = d.pending[:0]
	d.durableExec = len(d.executed)
	d.durableRes = d.reserved
}

// crash drops the writes since the last sync, and reports how many.
func (d *disk) crash() int {
	lost := len(d.pending) + len(d.executed) - d.durableExec
	if lost == 0 && d.reserved == d.durableRes {
		return 0
	}
	d.records = make(map[replica.InstanceID]replica.InstanceRecord, len(d.durable))
	d.committed = 0
	for id, rec := range d.durable {
		d.records[id] = rec
		if rec.Phase == replica.Committed {
			d.committed++
		}
	}
	for _, id := range d.executed[d.durableExec:] {
		delete(d.execSet, id)
	}
	d.executed = d.executed[:d.durableExec]
	d.reserved = d.durableRes
	d.pending = d.pending[:0]
	return lost
}

// durableRecord returns the record of id that would survive a crash now.
func (d *disk) durableRecord(id replica.InstanceID) (replica.InstanceRecord, bool) {
	for i := len(d.pending) - 1; i >= 0; i-- {
		if d.pending[i].ID == id {
			// Written since the last sync: the durable one is older.
			rec, ok := d.durable[id]
			return rec, ok
		}
	}
	rec, ok := d.records[id]
	return rec, ok
}

// put persists rec, replacing the record of its instance, and returns the
// previous record, if any. A record whose command is unchanged
// (InstanceRecord.CommandUnchanged) keeps the previous record's command,
// as the storage package does, which writes it only once: a core that set
// the flag wrongly restarts with the wrong command (and the checker says so
// at once).
func (d *disk) put(rec replica.InstanceRecord) (prev replica.InstanceRecord, had bool) {
	prev, had = d.records[rec.ID]
	if rec.Phase == replica.Committed && (!had || prev.Phase != replica.Committed) {
		d.committed++
	}
	if had && prev.Phase == replica.Committed && rec.Phase != replica.Committed {
		d.committed--
	}
	c := rec.Clone()
	if rec.CommandUnchanged && had {
		c.Command = prev.Command
	}
	d.records[rec.ID] = c
	d.pending = append(d.pending, c)
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
// the executed log, all deep-copied. It is called after crash, so all of it
// is durable.
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
