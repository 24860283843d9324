package replica

import (
	"fmt"
	"sort"
)

// Status summarises a replica's progress for operators' logs and
// diagnostics. It is computed on demand and costs a pass over the
// instances.
type Status struct {
	Instances int // instances known
	Committed int // of which committed
	Executed  int // of which executed (no-ops count once skipped)
	// Frontier is, per column, the highest slot up to which every instance
	// is executed here (the horizon of this replica's new deps).
	Frontier []uint64
	// Blocked are the first ids, in id order, that execution waits for
	// because they are not committed here; ExecWaiting those it waits for
	// because they are committed but not executed yet (under a horizon).
	Blocked, ExecWaiting []InstanceID
	Watched              int // instances being fetched or recovered
	Recovering           int // recoveries this replica leads
}

// Counters are running totals kept as the replica works, cheap to read at
// any time (metrics): they never go down, except that a restarted replica
// starts from zero.
type Counters struct {
	Proposed     uint64 // instances this replica started as coordinator
	FastCommits  uint64 // of those, committed on the fast path (ballot 0, no Accept)
	SlowCommits  uint64 // of those, committed after Accept at ballot 0
	Recovered    uint64 // instances this replica committed as a recovery coordinator
	Recoveries   uint64 // recoveries started
	Executed     uint64 // instances executed here (no-ops count once skipped)
	ExecutedCmds uint64 // commands handed out for execution
}

// Counters returns the running totals.
func (r *Replica) Counters() Counters { return r.counters }

// statusIDs bounds the ids Status lists.
const statusIDs = 8

// Status returns the replica's current Status.
func (r *Replica) Status() Status {
	st := Status{
		Instances:  len(r.instances),
		Frontier:   append([]uint64(nil), r.exec.frontier...),
		Watched:    len(r.watched),
		Recovering: len(r.recovering),
	}
	for _, in := range r.instances {
		if in.phase == Committed {
			st.Committed++
		}
		if in.executed {
			st.Executed++
		}
	}
	st.Blocked = firstIDs(r.exec.waiting)
	st.ExecWaiting = firstIDs(r.exec.execWaiting)
	return st
}

func firstIDs(m map[InstanceID][]*instance) []InstanceID {
	ids := make([]InstanceID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Less(ids[j]) })
	if len(ids) > statusIDs {
		ids = ids[:statusIDs]
	}
	return ids
}

// Describe returns a one-line account of instance id at this replica, for
// diagnostics: phase, ballots, command, deps, and what its last execution
// attempt was parked on.
func (r *Replica) Describe(id InstanceID) string {
	in := r.instances[id]
	if in == nil {
		return id.String() + ": unknown"
	}
	return fmt.Sprintf("%v: %v bal=%d abal=%d cmd=%v deps=%v executed=%v parked_on=%v",
		id, in.phase, in.bal, in.abal, in.cmd, in.deps, in.executed, in.tj.parkedOn)
}
