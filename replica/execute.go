package replica

import "sort"

// executor orders committed instances for execution (Fig. 1): the strongly
// connected components of the committed dependency graph, dependencies
// first, and inside a component by instance id. It never waits: an attempt
// that reaches an instance not yet committed here (or not known at all) is
// parked on that instance and retried when it commits.
type executor struct {
	r       *Replica
	queue   []*instance                // committed instances to try
	waiting map[InstanceID][]*instance // not-yet-committed id -> attempts parked on it
	output  []Execution

	// frontier is, per column q, the highest slot h such that every
	// instance (q, 1..h) is executed here (a no-op counts once skipped): the
	// horizon this replica puts into the deps of the commands it proposes
	// (see Deps). execWaiting holds the attempts parked on a committed but
	// unexecuted instance under a horizon, woken when the frontier passes it.
	frontier    []uint64
	execWaiting map[InstanceID][]*instance

	// Tarjan's bookkeeping lives in the instances, tagged with the attempt
	// number, so that starting an attempt costs nothing.
	attempts uint64
	stack    []*instance
	frames   []tarjanFrame
}

type tarjanFrame struct {
	in   *instance
	next int // next index into in.deps to explore
}

// tarjan is an instance's per-attempt bookkeeping for Tarjan's algorithm;
// it is valid only while attempt equals the executor's current attempt.
type tarjan struct {
	attempt    uint64
	index, low int
	onStack    bool
	// parkedOn is the uncommitted instance this instance's last attempt
	// stopped at (zero if none); an attempt that reaches this instance while
	// that one is still uncommitted stops there too without walking further.
	parkedOn InstanceID
}

func newExecutor(r *Replica, n int) *executor {
	return &executor{
		r: r, waiting: make(map[InstanceID][]*instance),
		frontier: make([]uint64, n), execWaiting: make(map[InstanceID][]*instance),
	}
}

// horizon returns the executed frontier as the horizon of a new set.
func (e *executor) horizon() Deps { return NewDepsWithHorizon(e.frontier) }

func (e *executor) hasOutput() bool { return len(e.output) > 0 }

func (e *executor) takeOutput() []Execution {
	out := e.output
	e.output = nil
	return out
}

// committed is called when in commits here: it wakes the attempts parked on
// in and tries to execute in itself.
func (e *executor) committed(in *instance) {
	e.queue = append(e.queue, in)
	if parked, ok := e.waiting[in.id]; ok {
		delete(e.waiting, in.id)
		e.queue = append(e.queue, parked...)
	}
	for len(e.queue) > 0 {
		root := e.queue[0]
		e.queue = e.queue[1:]
		if !root.executed {
			e.attempt(root)
		}
	}
	e.queue = nil // release the backing array
}

// blocked returns, for diagnostics and recovery, the ids that execution is
// waiting on: referenced as dependencies but not committed here.
func (e *executor) blocked() []InstanceID {
	out := make([]InstanceID, 0, len(e.waiting))
	for id := range e.waiting {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// park records that root cannot execute before blocker commits.
func (e *executor) park(root *instance, blocker InstanceID) {
	if root.tj.parkedOn == blocker {
		return // already parked there
	}
	root.tj.parkedOn = blocker
	e.waiting[blocker] = append(e.waiting[blocker], root)
	// Execution waits on blocker: make sure it gets committed here, by
	// fetching or recovering it if it does not arrive in time.
	e.r.watch(blocker)
}

// parkExecuted records that root cannot execute before blocker, which is
// committed here but not executed, is executed.
func (e *executor) parkExecuted(root *instance, blocker InstanceID) {
	if root.tj.parkedOn == blocker {
		return
	}
	root.tj.parkedOn = blocker
	e.execWaiting[blocker] = append(e.execWaiting[blocker], root)
}

// horizonBlocker returns the first instance under in's horizon that is not
// executed here, if any.
func (e *executor) horizonBlocker(in *instance) (InstanceID, bool) {
	for q := range min(in.deps.HorizonColumns(), len(e.frontier)) {
		if h := in.deps.Horizon(ReplicaID(q)); h > e.frontier[q] {
			return InstanceID{Replica: ReplicaID(q), Slot: e.frontier[q] + 1}, true
		}
	}
	return InstanceID{}, false
}

// markExecuted marks in executed and advances the frontier of its column
// over it and over the executed instances that follow, waking the attempts
// parked on each instance it passes.
func (e *executor) markExecuted(in *instance) {
	in.executed = true
	e.r.counters.Executed++
	q := in.id.Replica
	if int(q) >= len(e.frontier) || in.id.Slot != e.frontier[q]+1 {
		return
	}
	for {
		next := InstanceID{Replica: q, Slot: e.frontier[q] + 1}
		d := e.r.instances[next]
		if d == nil || !d.executed {
			return
		}
		e.frontier[q]++
		if w, ok := e.execWaiting[next]; ok {
			delete(e.execWaiting, next)
			e.queue = append(e.queue, w...)
		}
	}
}

// uncommitted reports whether id is not committed here (or not known).
func (e *executor) uncommitted(id InstanceID) bool {
	d := e.r.instances[id]
	return d == nil || d.phase != Committed
}

// attempt runs Tarjan's algorithm (iteratively, so that long dependency
// chains cannot overflow the stack) from root over committed, unexecuted
// instances, executing every component as soon as it is complete. If it
// reaches an instance that is not committed here, it parks root on it;
// components completed before that point were executed, which is correct
// because a component is complete only when everything it reaches is.
func (e *executor) attempt(root *instance) {
	e.attempts++
	e.stack = e.stack[:0]
	e.frames = e.frames[:0]
	counter := 0
	push := func(in *instance) {
		in.tj.attempt, in.tj.index, in.tj.low, in.tj.onStack = e.attempts, counter, counter, true
		counter++
		e.stack = append(e.stack, in)
		e.frames = append(e.frames, tarjanFrame{in: in})
	}
	root.tj.parkedOn = InstanceID{}
	push(root)
	for len(e.frames) > 0 {
		f := &e.frames[len(e.frames)-1]
		if deps := f.in.deps.IDs(); f.next < len(deps) {
			dep := deps[f.next]
			f.next++
			d := e.r.instances[dep]
			switch {
			case d == nil || d.phase != Committed:
				e.park(root, dep)
				return
			case d.executed:
				// Already executed: no edge to follow.
			case d.tj.attempt != e.attempts:
				if p := d.tj.parkedOn; p != (InstanceID{}) && e.uncommitted(p) {
					// d cannot execute before p commits, nor can root,
					// which reaches d.
					e.park(root, p)
					return
				}
				push(d)
			case d.tj.onStack:
				f.in.tj.low = min(f.in.tj.low, d.tj.index)
			}
			continue
		}
		// All of f.in's dependencies are explored.
		in := f.in
		e.frames = e.frames[:len(e.frames)-1]
		if len(e.frames) > 0 {
			parent := e.frames[len(e.frames)-1].in
			parent.tj.low = min(parent.tj.low, in.tj.low)
		}
		if in.tj.low == in.tj.index && !e.executeComponent(root, in) {
			return
		}
	}
}

// executeComponent pops the component whose Tarjan root is top off the
// stack and executes it in instance-id order; no-ops are marked executed
// only. Every instance under the horizons of its members must be executed
// first (Deps, point 3: horizon edges are on no cycle, so none of those is
// in the component, and those the attempt reaches were executed in earlier
// components). If one is not, the attempt's root is parked on it and
// executeComponent returns false: the attempt must stop.
func (e *executor) executeComponent(root, top *instance) bool {
	i := len(e.stack) - 1
	for e.stack[i] != top {
		i--
	}
	scc := e.stack[i:]
	for _, in := range scc {
		if in.executed {
			continue
		}
		if b, blocked := e.horizonBlocker(in); blocked {
			// Everything under the horizon is committed somewhere: learn
			// how far each column goes, and fetch what is missing now.
			e.r.learnHorizon(in.deps)
			if e.uncommitted(b) {
				e.park(root, b)
				e.r.hurry(b)
			} else {
				e.parkExecuted(root, b)
			}
			return false
		}
	}
	scc = append([]*instance(nil), scc...)
	e.stack = e.stack[:i]
	sort.Slice(scc, func(a, b int) bool { return scc[a].id.Less(scc[b].id) })
	for _, in := range scc {
		in.tj.onStack = false
		if in.executed {
			continue
		}
		e.markExecuted(in)
		if !in.cmd.Nop {
			e.output = append(e.output, Execution{Instance: in.id, Commands: in.cmd.Commands})
			e.r.counters.ExecutedCmds += uint64(len(in.cmd.Commands))
		}
	}
	return true
}

// recomputeFrontier sets the frontier from the executed flags (Restore).
func (e *executor) recomputeFrontier() {
	for q := range e.frontier {
		for {
			d := e.r.instances[InstanceID{Replica: ReplicaID(q), Slot: e.frontier[q] + 1}]
			if d == nil || !d.executed {
				break
			}
			e.frontier[q]++
		}
	}
}
