package sim

import "container/heap"

// scheduler is the simulation's only clock: a queue of events ordered by
// virtual time and, at equal times, by the order they were scheduled. Run
// pops one event at a time; nothing happens between events, and nothing
// depends on wall-clock time or goroutine scheduling.
type scheduler struct {
	now    int64
	nextID uint64
	q      eventQueue
}

type event struct {
	at int64
	id uint64 // scheduling order, the tie-break at equal times
	fn func()
}

// after schedules fn to run d units from now (d ≥ 0).
func (s *scheduler) after(d int64, fn func()) {
	if d < 0 {
		d = 0
	}
	s.nextID++
	heap.Push(&s.q, event{at: s.now + d, id: s.nextID, fn: fn})
}

// pop removes the earliest event and advances the clock to it.
func (s *scheduler) pop() (event, bool) {
	if len(s.q) == 0 {
		return event{}, false
	}
	e := heap.Pop(&s.q).(event)
	s.now = e.at
	return e, true
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].id < q[j].id
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*q = old[:len(old)-1]
	return e
}
