package daemon

import (
	"context"
	"fmt"
	"sync"

	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/storage"
)

// maxQueuedReadies bounds the Readies waiting for the persister; when it is
// full the core loop waits, so memory stays bounded under any load.
const maxQueuedReadies = 256

// readyWork is one Ready and the executed-log position of its first
// execution.
type readyWork struct {
	rd            replica.Ready
	firstExecuted uint64
}

// persister carries out Readies in the order package replica requires —
// persist, then send, then release the executions' results (the applier
// may have applied them already; apply.go) — on its own goroutine, so that the
// core loop goes on stepping messages and proposals while a sync is in
// flight. Every Ready that arrives during a sync is written by the next one
// (group commit across Readies), and a Ready's messages and executions are
// released only once it, and every Ready before it, is written, and synced
// if any of them needs it (replica.Ready.NeedsSync: one with messages or a
// reservation). A batch that needs no sync is written without one; the
// next synced write makes it durable first. The core
// may act on state that is not yet durable; nothing derived from it leaves
// the process before it is, so a crash loses only what no one has seen (the
// same argument as etcd raft's asynchronous storage writes).
type persister struct {
	d *Daemon

	mu    sync.Mutex
	queue []readyWork
	wake  chan struct{} // signalled when queue grows
	space chan struct{} // signalled when queue shrinks
}

func newPersister(d *Daemon) *persister {
	return &persister{d: d, wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// push queues w, waiting while maxQueuedReadies are queued.
func (p *persister) push(ctx context.Context, w readyWork) error {
	for {
		p.mu.Lock()
		if len(p.queue) < maxQueuedReadies {
			p.queue = append(p.queue, w)
			p.mu.Unlock()
			signal(p.wake)
			return nil
		}
		p.mu.Unlock()
		select {
		case <-p.space:
		case <-ctx.Done():
			return nil
		}
	}
}

// run persists, sends and executes queued Readies until ctx ends or
// storage fails.
func (p *persister) run(ctx context.Context) error {
	var records []replica.InstanceRecord
	var executed []replica.InstanceID
	for {
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		signal(p.space)
		records, executed = records[:0], executed[:0]
		var reserve uint64
		sync := false
		for _, w := range batch {
			records = append(records, w.rd.Instances...)
			for _, e := range w.rd.Execute {
				executed = append(executed, e.Instance)
			}
			reserve = max(reserve, w.rd.ReserveSlots)
			sync = sync || w.rd.NeedsSync()
		}
		if len(records) > 0 || len(executed) > 0 || reserve > 0 {
			// Records of one instance from several Readies are written in
			// order; the last wins.
			err := p.d.storage.Write(storage.Update{Records: records, Executed: executed, ReservedSlots: reserve, NoSync: !sync})
			if err != nil {
				return fmt.Errorf("storage: %w", err)
			}
		}
		if reserve > 0 {
			p.d.reserved.raise(reserve)
		}
		var executedUpTo uint64
		for _, w := range batch {
			p.d.transport.Send(w.rd.Messages)
			if n := len(w.rd.Execute); n > 0 {
				executedUpTo = w.firstExecuted + uint64(n) - 1
			}
		}
		if executedUpTo > 0 {
			p.d.applier.writtenUpTo(executedUpTo)
		}
		clear(records)
	}
}

// reservation carries durable slot reservations from the persister to the
// core loop, which hands them to the core (replica.SlotsReserved): the
// latest value wins, and the core loop is woken at most once per change.
type reservation struct {
	mu    sync.Mutex
	upTo  uint64
	ready chan struct{}
}

func newReservation() *reservation { return &reservation{ready: make(chan struct{}, 1)} }

func (r *reservation) raise(upTo uint64) {
	r.mu.Lock()
	r.upTo = max(r.upTo, upTo)
	r.mu.Unlock()
	signal(r.ready)
}

func (r *reservation) load() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upTo
}

// signal wakes the receiver of c, if it is not already due to wake.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
