// Package session is the replicated client-session table that makes client
// retries exactly-once, and the registry of clients waiting for results.
package session

import (
	"sync"

	"github.com/epaxosd/epaxosd/plugin"
)

// Result is what a client gets for one command.
type Result struct {
	Value []byte
	Err   string // the state machine's error reply
	Stale bool   // the request's seq was superseded: nothing applied for it
}

// Command is an executed command on its way to the state machine, with the
// client id and request number that identify it.
type Command struct {
	Client, Seq uint64
	Cmd         plugin.Command
}

// session is the last command applied for one client id.
type session struct {
	seq    uint64
	result Result
}

type commandKey struct{ client, seq uint64 }

// maxScratch bounds the size of Filter's scratch map kept between batches.
const maxScratch = 4096

// Table is the replicated client-session table and the local registry of
// clients waiting for results. The table is updated only by the applier, in
// execution order, so every replica holds the same table after the same
// commands: a command whose (client, seq) is not newer than the client's
// last applied one is skipped everywhere, which is what makes client retries
// through other replicas exactly-once.
//
// Filtering and recording may be pipelined: the applier may Filter (and
// apply) later batches before it Records earlier ones, as long as it
// Records batches in the order it filtered them. Filter then counts the
// commands it passed earlier as applied, so a retry split across two such
// batches is still applied once, while Wait and the results clients see
// change only with Record.
type Table struct {
	mu      sync.Mutex
	table   map[uint64]*session
	pending map[uint64]uint64 // client -> newest seq passed by Filter but not yet Recorded
	waiters map[commandKey][]*waiter
	newest  map[uint64]uint64 // Filter's scratch: client -> newest seq in the batch
}

// waiter is one registration of interest in a command's result.
type waiter struct{ notify func(Result) }

// New returns an empty table.
func New() *Table {
	return &Table{table: make(map[uint64]*session), pending: make(map[uint64]uint64),
		waiters: make(map[commandKey][]*waiter), newest: make(map[uint64]uint64)}
}

// ResetState forgets every session, and every batch filtered but not
// recorded, but keeps the waiting clients. It is called before the state
// machine is rebuilt from scratch by replaying the executed log, which
// rebuilds the table too and answers any client whose command is replayed.
func (s *Table) ResetState() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table = make(map[uint64]*session)
	s.pending = make(map[uint64]uint64)
}

// Wait registers interest in (client, seq). If the command was already
// applied it returns its result and done = true; if a newer command of the
// client was applied it returns a stale result. Otherwise the returned
// channel receives the result once it is applied; call cancel when no
// longer interested.
func (s *Table) Wait(client, seq uint64) (r Result, done bool, ch <-chan Result, cancel func()) {
	c := make(chan Result, 1)
	r, done, cancel = s.Subscribe(client, seq, func(r Result) { c <- r })
	if done {
		return r, true, nil, nil
	}
	return Result{}, false, c, cancel
}

// Subscribe is Wait with a callback: if the command was already applied
// (or superseded) it returns the result and done = true; otherwise notify
// is called once with the result when it is applied. notify runs on the
// applier's goroutine with the table locked: it must not block or call
// back into the table. cancel (safe to call at any time, also after
// notify) withdraws the subscription.
func (s *Table) Subscribe(client, seq uint64, notify func(Result)) (r Result, done bool, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last := s.table[client]; last != nil {
		if seq == last.seq {
			return last.result, true, nil
		}
		if seq < last.seq {
			return Result{Stale: true}, true, nil
		}
	}
	k := commandKey{client, seq}
	w := &waiter{notify: notify}
	s.waiters[k] = append(s.waiters[k], w)
	return Result{}, false, func() { s.forget(k, w) }
}

// Waiting returns the number of registrations waiting for results.
func (s *Table) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ws := range s.waiters {
		n += len(ws)
	}
	return n
}

func (s *Table) forget(k commandKey, c *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[k]
	for i, w := range ws {
		if w == c {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiters, k)
	} else {
		s.waiters[k] = ws
	}
}

// Filter decides, in execution order, which commands of a batch the state
// machine must apply. It returns a slot per command: the index into the
// returned plugin batch, or -1 for a duplicate or stale command.
func (s *Table) Filter(cmds []Command) (slots []int, batch []plugin.Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slots = make([]int, len(cmds))
	batch = make([]plugin.Command, 0, len(cmds))
	newest := s.newest
	clear(newest) // keeps its buckets: no allocation per batch
	for i, c := range cmds {
		last := newest[c.Client]
		if last == 0 {
			if t := s.table[c.Client]; t != nil {
				last = t.seq
			}
			last = max(last, s.pending[c.Client])
		}
		if c.Seq <= last {
			slots[i] = -1
			continue
		}
		newest[c.Client] = c.Seq
		slots[i] = len(batch)
		batch = append(batch, c.Cmd)
	}
	for client, seq := range newest {
		s.pending[client] = seq
	}
	if len(newest) > maxScratch {
		// clear costs the map's capacity: do not keep a huge one (a
		// replay of a long executed log) for every later batch.
		s.newest = make(map[uint64]uint64)
	}
	return slots, batch
}

// Record stores the results of an applied batch in execution order and
// wakes the clients waiting for them. slots and results come from Filter
// and the state machine; batches are recorded in the order they were
// filtered.
func (s *Table) Record(cmds []Command, slots []int, results []plugin.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range cmds {
		var r Result
		if slots[i] >= 0 {
			pr := results[slots[i]]
			r = Result{Value: pr.Value, Err: pr.Error}
			if t := s.table[c.Client]; t != nil {
				t.seq, t.result = c.Seq, r
			} else {
				s.table[c.Client] = &session{seq: c.Seq, result: r}
			}
			if s.pending[c.Client] == c.Seq {
				delete(s.pending, c.Client) // no later batch passed a newer one
			}
		} else if t := s.table[c.Client]; t != nil && t.seq == c.Seq {
			r = t.result // a duplicate of the applied command: same answer
		} else {
			r = Result{Stale: true}
		}
		k := commandKey{c.Client, c.Seq}
		for _, w := range s.waiters[k] {
			w.notify(r)
		}
		delete(s.waiters, k)
	}
}
