package replica

import "sort"

// maxFetch bounds the ids asked for in one Fetch message.
const maxFetch = 256

// watchState tracks an instance this replica waits on: one it knows that
// has not committed (a peer's stalled instance, its own after a restart) or
// one that execution needs but that it has never seen.
type watchState struct {
	deadline uint64 // tick at which to act next
	attempts int    // recoveries started
	fetched  bool   // asked peers for the commit since the last recovery
}

// watch starts waiting on id unless it is committed or already watched.
// The first deadline leaves the coordinator time to finish on its own.
func (r *Replica) watch(id InstanceID) {
	if in := r.instances[id]; in != nil && in.phase == Committed {
		return
	}
	if _, ok := r.watched[id]; ok {
		return
	}
	r.watched[id] = &watchState{deadline: r.now + 2*r.timeout + r.jitter()}
}

// column is what a replica knows of another replica's column of instances:
// the highest slot it has heard of, and how far it has looked for gaps.
type column struct {
	top     uint64 // highest slot heard of
	scanned uint64 // every slot up to here is known or watched
	// executed is the highest slot that some coordinator's horizon says it
	// had executed: every slot up to it is committed somewhere, so a
	// replica missing one asks for its commit at once.
	executed uint64
}

// learnHorizon raises the columns' executed marks to d's horizon: every slot under it exists and is committed (Deps, point 4).
// A replica that was down or cut off learns from one dependency set how
// much of each column it misses, and fetches it all in batches (watchGaps)
// instead of one missing dependency at a time.
func (r *Replica) learnHorizon(d Deps) {
	for q := 0; q < d.HorizonColumns() && q < len(r.columns); q++ {
		if ReplicaID(q) == r.id {
			continue
		}
		h := d.Horizon(ReplicaID(q))
		c := &r.columns[q]
		c.executed = max(c.executed, h)
	}
}

// hurry makes a watched instance that is known to be committed elsewhere
// ask the peers for its commit at the next tick, rather than after the
// grace period that lets a live coordinator finish on its own.
func (r *Replica) hurry(id InstanceID) {
	if w, ok := r.watched[id]; ok && !w.fetched && w.attempts == 0 {
		w.deadline = min(w.deadline, r.now)
	}
}

// maxGapScan bounds the slots watchGaps looks at per tick, so that an id with
// an absurd slot costs a bounded amount of work per tick.
const maxGapScan = 4 * maxFetch

// learnColumn is called when this replica first hears of id and raises the
// top of id's column.
func (r *Replica) learnColumn(id InstanceID) {
	if c := &r.columns[id.Replica]; id.Replica != r.id && id.Slot > c.top {
		c.top = id.Slot
	}
}

// watchGaps watches the instances below the top of each column that this
// replica has never heard of. The owner never reuses a slot it may have
// sent (reserve.go), so every lower slot is a real instance or one that
// recovery must fill with a no-op; its own column has gaps only after a
// restart (restoreReservation sets its top); a
// replica that missed both its PreAccept and its Commit (loss, a partition,
// thrifty PreAccepts, a crash) would otherwise never learn it unless an
// instance it executes depends on it. The watch fetches the commit from the
// peers, or recovers the instance.
func (r *Replica) watchGaps() {
	budget := maxGapScan
	for i := range r.columns {
		c := &r.columns[i]
		// Below the top (the top itself is known), and up to the highest
		// slot a horizon says exists.
		limit := c.executed
		if c.top > 0 {
			limit = max(limit, c.top-1)
		}
		for ; c.scanned < limit && budget > 0; budget-- {
			c.scanned++
			if id := (InstanceID{Replica: ReplicaID(i), Slot: c.scanned}); r.instances[id] == nil {
				r.watch(id)
				if id.Slot <= c.executed {
					r.hurry(id)
				}
			}
		}
	}
}

// Column probes: every probeEvery timeouts, a replica asks its peers (with
// a Fetch) for the next probeSlots slots of every other replica's column
// after the highest it knows. A peer answers with the Commits it has, and
// learnColumn takes it from there. Without this, a replica that missed the
// PreAccept and the Commit of the last instances of a column (it was down or
// cut off, or they were lost) would never learn them: Commit is sent once,
// and no later instance of the column reveals the gap.
const (
	probeEvery = 4
	probeSlots = 8
)

// probeColumns sends the column probe when it is due.
func (r *Replica) probeColumns() {
	if r.now%(probeEvery*r.timeout) != 0 {
		return
	}
	ids := make([]InstanceID, 0, (r.q.N-1)*probeSlots)
	for c := ReplicaID(0); int(c) < r.q.N; c++ {
		if c == r.id {
			continue
		}
		top := r.columns[c].top
		for s := top + 1; s <= top+probeSlots; s++ {
			ids = append(ids, InstanceID{Replica: c, Slot: s})
		}
	}
	d := NewDeps(ids...)
	for _, to := range r.peers() {
		r.send(Message{Type: MsgFetch, To: to, Instance: d.IDs()[0], Deps: d})
	}
}

// jitter is a random delay in [0, N·timeout) that spreads competing
// recoveries of one instance apart so that one of them finishes.
func (r *Replica) jitter() uint64 {
	return r.rand.Uint64N(uint64(r.q.N) * r.timeout)
}

// checkWatched acts on every watched instance whose deadline has passed, in
// instance-id order (determinism): first ask the peers for its commit (the
// cheap catch-up of a replica that missed it), then recover it with a
// higher ballot, backing off a little more after each attempt.
func (r *Replica) checkWatched() {
	var due []InstanceID
	for id, w := range r.watched {
		if r.now >= w.deadline {
			due = append(due, id)
		}
	}
	if len(due) == 0 {
		return
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Less(due[j]) })
	var fetch []InstanceID
	for _, id := range due {
		w := r.watched[id]
		in := r.instances[id]
		switch {
		case in != nil && in.phase == Committed:
			delete(r.watched, id)
			continue
		case in != nil && in.lead != nil && in.bal == in.lead.ballot:
			// This replica coordinates it and resends on its own timer.
			w.deadline = r.now + r.timeout
			continue
		case in != nil && in.rec != nil && r.now-in.rec.since < r.recoveryPatience(in.rec):
			w.deadline = in.rec.since + r.recoveryPatience(in.rec)
			continue
		case !w.fetched:
			fetch = append(fetch, id)
			w.fetched = true
			w.deadline = r.now + r.timeout
			continue
		}
		// Recover it (again): a previous attempt that has not finished by
		// now is abandoned for a higher ballot.
		if in == nil {
			in = r.instance(id)
		}
		r.dropRecovery(in)
		r.startRecovery(in)
		w.attempts++
		w.fetched = false
		w.deadline = r.now + r.backoff(w.attempts)
	}
	for len(fetch) > 0 {
		n := min(len(fetch), maxFetch)
		ids := NewDeps(fetch[:n]...)
		for _, to := range r.peers() {
			r.send(Message{Type: MsgFetch, To: to, Instance: ids.IDs()[0], Deps: ids})
		}
		fetch = fetch[n:]
	}
}

// maxBackoffShift caps the exponential backoff of repeated recoveries at
// 2^5 = 32 timeouts (16 s with the default 500 ms).
const maxBackoffShift = 5

// backoff is the wait after the attempts-th recovery of one instance: it
// doubles with each attempt, so that once the network is timely again the
// delay exceeds a round trip and one attempt finishes (partial synchrony),
// and is randomised over as much again so competing recoverers separate.
func (r *Replica) backoff(attempts int) uint64 {
	d := (2 * r.timeout) << min(attempts-1, maxBackoffShift)
	return d + r.rand.Uint64N(d*uint64(r.q.N)/2+1)
}

// recoveryPatience is how long a recovery attempt may run before it is
// retried with a higher ballot: a waiting recovery (lines 68–79) depends on
// other instances committing and gets longer.
func (r *Replica) recoveryPatience(rec *recovery) uint64 {
	if rec.waiting {
		return 4 * r.timeout
	}
	return 2 * r.timeout
}

// onFetch answers a catch-up request with a Commit for every requested
// instance committed here.
func (r *Replica) onFetch(m Message) {
	for i, id := range m.Deps.IDs() {
		if i == maxFetch {
			break
		}
		if in := r.instances[id]; in != nil && in.phase == Committed {
			r.sendCommit(m.From, in)
		}
	}
}
