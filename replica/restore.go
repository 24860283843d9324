package replica

import (
	"errors"
	"fmt"
	"sort"
)

// HardState is what a replica reloads from stable storage after a restart:
// every instance record it persisted (the latest per instance) and the ids
// of the instances it executed, in execution order.
type HardState struct {
	Instances []InstanceRecord
	Executed  []InstanceID
	// ReservedSlots is the latest durable Ready.ReserveSlots (0 if none).
	ReservedSlots uint64
}

// Restore loads state persisted by an earlier run of this replica. It must
// be called on a new Replica before any other method. Restored records are
// not handed out again for persistence. Committed instances that were not
// executed are executed again from scratch (they appear in the next Ready's
// Execute); executed ones never are. Coordinator bookkeeping is volatile, so
// this replica's own unfinished instances are left for recovery.
func (r *Replica) Restore(st HardState) error {
	if len(r.instances) > 0 || r.now > 0 {
		return errors.New("restore: replica already in use")
	}
	for _, rec := range st.Instances {
		if err := r.validID(rec.ID); err != nil {
			return fmt.Errorf("restore: record %v: %w", rec.ID, err)
		}
		if r.instances[rec.ID] != nil {
			return fmt.Errorf("restore: two records for %v", rec.ID)
		}
		in := r.instance(rec.ID)
		in.cmd, in.initCmd = rec.Command, rec.InitCommand
		in.deps, in.initDeps = rec.Deps, rec.InitDeps
		in.phase, in.bal, in.abal = rec.Phase, rec.Bal, rec.Abal
		r.learnCommand(in)
		if rec.ID.Replica == r.id && rec.ID.Slot >= r.nextSlot {
			r.nextSlot = rec.ID.Slot + 1
		}
	}
	for _, id := range st.Executed {
		in := r.instances[id]
		if in == nil || in.phase != Committed {
			return fmt.Errorf("restore: %v executed but not committed", id)
		}
		in.executed = true
	}
	r.exec.recomputeFrontier()
	r.restoreReservation(st.ReservedSlots)
	var committed []*instance
	for _, in := range r.instances {
		if in.phase == Committed && !in.executed {
			committed = append(committed, in)
		}
	}
	// Every instance known but not committed is waited on: its coordinator
	// may be gone (this replica's own, certainly: coordinator state is
	// volatile), so it is fetched or recovered if it does not commit.
	// (In id order: watch draws jitter from the seeded source.)
	var pending []InstanceID
	for id, in := range r.instances {
		if in.phase != Committed {
			pending = append(pending, id)
		}
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Less(pending[j]) })
	for _, id := range pending {
		r.watch(id)
	}
	sort.Slice(committed, func(i, j int) bool { return committed[i].id.Less(committed[j].id) })
	for _, in := range committed {
		r.exec.committed(in)
	}
	return nil
}
