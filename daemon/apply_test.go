package daemon

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// gatedMachine records the keys it applies, in order; its first Apply
// waits until gate is closed (a plugin that stalls under load).
type gatedMachine struct {
	gate chan struct{}
	once sync.Once

	mu      sync.Mutex
	applied []string
}

func (m *gatedMachine) Apply(cmds []plugin.Command) []plugin.Result {
	m.once.Do(func() { <-m.gate })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cmds {
		m.applied = append(m.applied, string(c.Key))
	}
	return make([]plugin.Result, len(cmds))
}

func (m *gatedMachine) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.applied)
}

// A state machine that falls behind by more than maxQueuedExecutions does
// not make the applier hold them all: the queue is dropped and, once the
// plugin moves again, the dropped executions are read back from the
// executed log. Every command is applied exactly once, in log order.
func TestApplier_SpillsToTheExecutedLogWhenThePluginFallsBehind(t *testing.T) {
	sm := &gatedMachine{gate: make(chan struct{})}
	host := plugin.TestHost(t, sm)
	var (
		logMu sync.Mutex
		log   replica.HardState
	)
	load := func() (replica.HardState, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return replica.HardState{Instances: append([]replica.InstanceRecord(nil), log.Instances...),
			Executed: append([]replica.InstanceID(nil), log.Executed...)}, nil
	}
	a := newApplier(func() (*plugin.Host, error) { return host, nil }, load, session.New(), hclog.NewNullLogger())
	if err := a.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// Execute in Readies of 100, persisting each before handing it over,
	// as the persister does.
	const total = (maxQueuedExecutions/100 + 50) * 100
	next := uint64(1)
	maxQueued := 0
	for next <= total {
		var execs []replica.Execution
		logMu.Lock()
		for range 100 {
			id := replica.InstanceID{Replica: 0, Slot: next}
			cmd := replica.Command{ClientID: next, Seq: 1, Access: replica.Write, Key: fmt.Sprint(next)}
			log.Instances = append(log.Instances, replica.InstanceRecord{ID: id, Phase: replica.Committed,
				Command: &replica.Payload{Commands: []replica.Command{cmd}}})
			log.Executed = append(log.Executed, id)
			execs = append(execs, replica.Execution{Instance: id, Commands: []replica.Command{cmd}})
			next++
		}
		logMu.Unlock()
		a.enqueue(next-100, execs)
		a.mu.Lock()
		maxQueued = max(maxQueued, len(a.queue))
		a.mu.Unlock()
	}
	if maxQueued > maxQueuedExecutions {
		t.Fatalf("the applier held %d executions, more than %d", maxQueued, maxQueuedExecutions)
	}
	close(sm.gate)
	waitUntil(t, "every command applied", func() bool { return sm.count() >= total })
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if len(sm.applied) != total {
		t.Fatalf("applied %d commands, want %d", len(sm.applied), total)
	}
	for i, k := range sm.applied {
		if k != fmt.Sprint(i+1) {
			t.Fatalf("command %d applied was %s, want %d: out of log order or twice", i+1, k, i+1)
		}
	}
}
