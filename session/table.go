package daemon

import (
	"sync"

	"github.com/epaxosd/epaxosd/plugin"
)

// result is what a client gets for one command.
type result struct {
	value []byte
	err   string // the state machine's error reply
	stale bool   // the request's seq was superseded: nothing applied for it
}

// session is the last command applied for one client id.
type session struct {
	seq    uint64
	result result
}

type commandKey struct{ client, seq uint64 }

// sessions is the replicated client-session table and the local registry of
// clients waiting for results. The table is updated only by the applier, in
// execution order, so every replica holds the same table after the same
// commands: a command whose (client, seq) is not newer than the client's
// last applied one is skipped everywhere, which is what makes client retries
// through other replicas exactly-once.
type sessions struct {
	mu      sync.Mutex
	table   map[uint64]*session
	waiters map[commandKey][]chan result
}

func newSessions() *sessions {
	return &sessions{table: make(map[uint64]*session), waiters: make(map[commandKey][]chan result)}
}

// wait registers interest in (client, seq). If the command was already
// applied it returns its result and done = true; if a newer command of the
// client was applied it returns a stale result. Otherwise the returned
// channel receives the result once it is applied; call cancel when no
// longer interested.
func (s *sessions) wait(client, seq uint64) (r result, done bool, ch <-chan result, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last := s.table[client]; last != nil {
		if seq == last.seq {
			return last.result, true, nil, nil
		}
		if seq < last.seq {
			return result{stale: true}, true, nil, nil
		}
	}
	k := commandKey{client, seq}
	c := make(chan result, 1)
	s.waiters[k] = append(s.waiters[k], c)
	return result{}, false, c, func() { s.forget(k, c) }
}

func (s *sessions) forget(k commandKey, c chan result) {
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

// filter decides, in execution order, which commands of a batch the state
// machine must apply. It returns a slot per command: the index into the
// returned plugin batch, or -1 for a duplicate or stale command.
func (s *sessions) filter(cmds []pendingCommand) (slots []int, batch []plugin.Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slots = make([]int, len(cmds))
	newest := make(map[uint64]uint64) // client -> newest seq seen in this batch
	for i, c := range cmds {
		last := newest[c.client]
		if last == 0 {
			if t := s.table[c.client]; t != nil {
				last = t.seq
			}
		}
		if c.seq <= last {
			slots[i] = -1
			continue
		}
		newest[c.client] = c.seq
		slots[i] = len(batch)
		batch = append(batch, c.cmd)
	}
	return slots, batch
}

// record stores the results of an applied batch in execution order and
// wakes the clients waiting for them. slots and results come from filter
// and the state machine.
func (s *sessions) record(cmds []pendingCommand, slots []int, results []plugin.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range cmds {
		var r result
		if slots[i] >= 0 {
			pr := results[slots[i]]
			r = result{value: pr.Value, err: pr.Error}
			s.table[c.client] = &session{seq: c.seq, result: r}
		} else if t := s.table[c.client]; t != nil && t.seq == c.seq {
			r = t.result // a duplicate of the applied command: same answer
		} else {
			r = result{stale: true}
		}
		k := commandKey{c.client, c.seq}
		for _, w := range s.waiters[k] {
			w <- r
		}
		delete(s.waiters, k)
	}
}
