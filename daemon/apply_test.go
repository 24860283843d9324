package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// plugin moves again and the dropped executions are written, they are read
// back from the executed log. Every command is applied exactly once, in
// log order.
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
	a := runApplier(t, func() (*plugin.Host, error) { return host, nil }, load, session.New())

	// Execute in Readies of 100, handing each over before writing it, as
	// the core loop and the persister do. From the Ready that overflows the
	// queue on, the writes lag until the plugin moves again, so the dropped
	// executions are not in the log when the applier first wants them.
	const total = (maxQueuedExecutions/100 + 50) * 100
	next := uint64(1)
	maxQueued := 0
	var unwritten [][]replica.InstanceRecord
	write := func(recs []replica.InstanceRecord) {
		logMu.Lock()
		for _, rec := range recs {
			log.Instances = append(log.Instances, rec)
			log.Executed = append(log.Executed, rec.ID)
		}
		upTo := uint64(len(log.Executed))
		logMu.Unlock()
		a.writtenUpTo(upTo)
	}
	for next <= total {
		var execs []replica.Execution
		var recs []replica.InstanceRecord
		for range 100 {
			id := replica.InstanceID{Replica: 0, Slot: next}
			cmd := replica.Command{ClientID: next, Seq: 1, Access: replica.Write, Key: fmt.Sprint(next)}
			recs = append(recs, replica.InstanceRecord{ID: id, Phase: replica.Committed,
				Command: &replica.Payload{Commands: []replica.Command{cmd}}})
			execs = append(execs, replica.Execution{Instance: id, Commands: []replica.Command{cmd}})
			next++
		}
		a.enqueue(next-100, execs)
		a.mu.Lock()
		maxQueued = max(maxQueued, len(a.queue))
		spilled := a.spilled
		a.mu.Unlock()
		if spilled || len(unwritten) > 0 {
			unwritten = append(unwritten, recs)
		} else {
			write(recs)
		}
	}
	if maxQueued > maxQueuedExecutions {
		t.Fatalf("the applier held %d executions, more than %d", maxQueued, maxQueuedExecutions)
	}
	if len(unwritten) == 0 {
		t.Fatal("the queue never overflowed")
	}
	close(sm.gate)
	waitUntil(t, "the applier turned to the executed log", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.spilled
	})
	for _, recs := range unwritten {
		write(recs)
	}
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

// panicOnce panics in its first Apply (the plugin process dies mid-batch,
// as far as the host can tell) and applies normally afterwards.
type panicOnce struct {
	panicked *atomic.Bool
	gatedMachine
}

func (m *panicOnce) Apply(cmds []plugin.Command) []plugin.Result {
	if m.panicked.CompareAndSwap(false, true) {
		panic("state machine crashed")
	}
	return m.gatedMachine.Apply(cmds)
}

// oneCommandLog is an executed log of n single-command instances.
func oneCommandLog(n int) replica.HardState {
	var st replica.HardState
	for i := 1; i <= n; i++ {
		id := replica.InstanceID{Replica: 0, Slot: uint64(i)}
		cmd := replica.Command{ClientID: uint64(i), Seq: 1, Access: replica.Write, Key: fmt.Sprint(i)}
		st.Instances = append(st.Instances, replica.InstanceRecord{ID: id, Phase: replica.Committed,
			Command: &replica.Payload{Commands: []replica.Command{cmd}}})
		st.Executed = append(st.Executed, id)
	}
	return st
}

// A plugin that dies while a starting replica rebuilds it from the executed
// log is started again: the replica starts (the chaos test saw agents exit
// with "replay: ... plugin broken" when the plugin was killed then).
func TestApplier_StartRetriesAPluginThatDiesDuringTheRebuild(t *testing.T) {
	var panicked atomic.Bool
	var launched []*panicOnce
	launch := func() (*plugin.Host, error) {
		sm := &panicOnce{panicked: &panicked, gatedMachine: gatedMachine{gate: make(chan struct{})}}
		close(sm.gate)
		launched = append(launched, sm)
		return plugin.TestHost(t, sm), nil
	}
	st := oneCommandLog(10)
	a := newApplier(launch, func() (replica.HardState, error) { return st, nil }, session.New(), hclog.NewNullLogger(), 10)
	if err := a.start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	if len(launched) != 2 {
		t.Fatalf("launched %d plugins, want 2 (the first died during the rebuild)", len(launched))
	}
	if got := launched[1].count(); got != 10 {
		t.Fatalf("the second plugin applied %d commands, want the whole log of 10", got)
	}
}

// A batch whose plugin the health check dropped meanwhile fails cleanly
// (the chaos test saw a nil-pointer panic) and is applied by the next one.
func TestApplier_ApplyAfterTheHealthCheckDroppedThePluginFails(t *testing.T) {
	sm := &gatedMachine{gate: make(chan struct{})}
	close(sm.gate)
	h := plugin.TestHost(t, sm)
	a := newApplier(func() (*plugin.Host, error) { return h, nil },
		func() (replica.HardState, error) { return replica.HardState{}, nil }, session.New(), hclog.NewNullLogger(), 0)
	if err := a.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.dropIf(h)
	st := oneCommandLog(1)
	batch := []queuedExecution{{pos: 1, exec: replica.Execution{Instance: st.Executed[0], Commands: st.Instances[0].Command.Commands}}}
	if err := a.apply(context.Background(), batch); !errors.Is(err, errPluginDropped) {
		t.Fatalf("apply with the plugin dropped: %v, want errPluginDropped", err)
	}
	if got := sm.count(); got != 0 {
		t.Fatalf("the dropped plugin applied %d commands", got)
	}
}

// The plugin may apply executions before they are written (the round trip
// overlaps the write), but their results reach no client, and enter no
// session, until the persister reports them written: Ready's order
// (persist, then execute) holds for everything outside the plugin process.
func TestApplier_ResultsWaitUntilTheirExecutionsAreWritten(t *testing.T) {
	sm := &gatedMachine{gate: make(chan struct{})}
	close(sm.gate)
	sessions := session.New()
	a := runApplier(t, func() (*plugin.Host, error) { return plugin.TestHost(t, sm), nil },
		func() (replica.HardState, error) { return replica.HardState{}, nil }, sessions)

	st := oneCommandLog(1)
	a.enqueue(1, []replica.Execution{{Instance: st.Executed[0], Commands: st.Instances[0].Command.Commands}})
	waitUntil(t, "the plugin applied the unwritten execution", func() bool { return sm.count() == 1 })
	_, answered, results, cancelWait := sessions.Wait(1, 1)
	defer cancelWait()
	if answered {
		t.Fatal("a result was released before its execution was written")
	}
	a.mu.Lock()
	releasedPos := a.released
	a.mu.Unlock()
	if releasedPos != 0 {
		t.Fatalf("released position %d before the execution was written, want 0", releasedPos)
	}
	a.writtenUpTo(1)
	select {
	case r := <-results:
		if r.Stale || r.Err != "" {
			t.Fatalf("result after the write: %+v, want the applied command's", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no result 10 s after the execution was written")
	}
	if sm.count() != 1 {
		t.Fatalf("the plugin applied %d commands, want 1 (once)", sm.count())
	}
}

// Batches are pipelined: the plugin applies the next batch while the one
// before it waits for its write, and a client's retry split across the two
// is still applied once; results come out, in order, when both are written.
func TestApplier_PipelinedBatchesApplyARetryOnce(t *testing.T) {
	sm := &gatedMachine{gate: make(chan struct{})}
	close(sm.gate)
	sessions := session.New()
	a := runApplier(t, func() (*plugin.Host, error) { return plugin.TestHost(t, sm), nil },
		func() (replica.HardState, error) { return replica.HardState{}, nil }, sessions)

	exec := func(slot uint64, client uint64, key string) replica.Execution {
		return replica.Execution{Instance: replica.InstanceID{Replica: 1, Slot: slot},
			Commands: []replica.Command{{ClientID: client, Seq: 1, Access: replica.Write, Key: key}}}
	}
	_, _, first, cancel1 := sessions.Wait(7, 1)
	defer cancel1()
	_, _, second, cancel2 := sessions.Wait(8, 1)
	defer cancel2()
	a.enqueue(1, []replica.Execution{exec(1, 7, "a")})
	waitUntil(t, "the first batch applied", func() bool { return sm.count() == 1 })
	a.enqueue(2, []replica.Execution{exec(2, 7, "a-retry"), exec(3, 8, "b")})
	waitUntil(t, "the second batch applied while the first is held", func() bool { return sm.count() == 2 })
	select {
	case r := <-first:
		t.Fatalf("answered %+v before anything was written", r)
	default:
	}
	a.writtenUpTo(3)
	for _, ch := range []<-chan session.Result{first, second} {
		select {
		case r := <-ch:
			if r.Stale || r.Err != "" {
				t.Fatalf("result %+v, want the applied command's", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no result 10 s after the executions were written")
		}
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if got := fmt.Sprint(sm.applied); got != "[a b]" {
		t.Fatalf("applied %s, want [a b]: the retry applied again, or out of order", got)
	}
}

// runApplier starts an applier on an executed log that load returns, all
// of it written, runs it until the test ends, and fails the test if run
// returns an error.
func runApplier(t *testing.T, launch func() (*plugin.Host, error), load func() (replica.HardState, error),
	sessions *session.Table) *applier {
	t.Helper()
	st, err := load()
	if err != nil {
		t.Fatal(err)
	}
	a := newApplier(launch, load, sessions, hclog.NewNullLogger(), uint64(len(st.Executed)))
	if err := a.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return a
}
