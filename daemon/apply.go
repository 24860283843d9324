package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// maxApplyBatch bounds the commands sent to the plugin in one Apply.
const maxApplyBatch = 4096

// maxQueuedExecutions bounds the executions waiting for the plugin. Beyond
// it (a slow, hung or restarting plugin under load) the queue is dropped:
// everything in it is in the executed log already, and the applier reads
// it back from there when the plugin is ready (catchUp), so memory stays
// bounded without ever holding back the core loop.
const maxQueuedExecutions = 1 << 16

// Plugin supervision.
const (
	healthInterval   = time.Second     // how often the plugin is pinged
	healthTimeout    = 3 * time.Second // a ping slower than this means the plugin hangs
	restartBackoff   = 100 * time.Millisecond
	maxRestartWait   = 10 * time.Second
	crashLoopReports = 5 // consecutive failed restarts before the loud report
)

// queuedExecution is an executed instance with its position in the
// replica's executed log (1-based), the order in which it must be applied.
type queuedExecution struct {
	pos  uint64
	exec replica.Execution
}

// applier owns the state-machine plugin. It applies executed commands in
// executed-log order, batching whatever has accumulated, and records each
// result in the session table, which answers the waiting clients.
//
// Executions are handed over as soon as the core produces them, before the
// persister has written their Ready, so that the plugin's round trip
// overlaps the write (and its fsync) instead of following it. Nothing the
// plugin computed leaves the process early: a batch's results enter the
// session table, which answers clients and filters retries, only once the
// persister reports its executions written (writtenUpTo), the point at
// which package replica allows them to be applied. Until then they exist
// only inside the plugin process and this applier, and both are discarded
// if the replica dies: a restarted replica rebuilds a new plugin from its
// durable executed log, so a speculatively applied execution that never
// became durable is never seen. Batches are applied while earlier ones are
// still held back; the session table counts the commands it passed as
// applied (session.Table's pipelining rule), and held batches are recorded
// in order. Whatever later reads the plugin's state other than through
// results (a snapshot) must likewise take it at a written position.
//
// It also supervises the plugin: if the process dies, misbehaves or stops
// answering health checks, the applier stops applying, starts a new
// process, rebuilds it by replaying the executed log from the beginning (the
// state machine is deterministic) and resumes where the log ends. Nothing
// is applied twice to one process or skipped. Meanwhile the core loop keeps
// ordering commands with its peers: handing executions over never blocks.
type applier struct {
	launch   func() (*plugin.Host, error)
	load     func() (replica.HardState, error)
	sessions *session.Table
	log      hclog.Logger

	mu       sync.Mutex
	queue    []queuedExecution
	spilled  bool               // executions were dropped from queue; read them from the log
	wake     chan struct{}      // signalled when queue grows
	host     *plugin.Host       // nil while the plugin is being restarted
	abort    context.CancelFunc // cancels the Apply in flight (health check)
	applied  uint64             // executed-log position applied to host
	released uint64             // executed-log position whose results are recorded
	spillTo  uint64             // the last executed-log position dropped from queue

	// held are the batches applied to host whose results wait for their
	// executions to be written, oldest first. Only the run goroutine uses it.
	held []heldBatch

	written     uint64        // executed-log positions up to this are written (writtenUpTo)
	writtenWake chan struct{} // signalled when written grows
}

// heldBatch is an applied batch whose results are not released yet.
type heldBatch struct {
	last    uint64 // executed-log position of its last execution
	cmds    []session.Command
	slots   []int
	results []plugin.Result
}

// newApplier returns an applier whose executed log already holds written
// positions: what New loaded from storage.
func newApplier(launch func() (*plugin.Host, error), load func() (replica.HardState, error),
	sessions *session.Table, log hclog.Logger, written uint64) *applier {
	return &applier{launch: launch, load: load, sessions: sessions, log: log, wake: make(chan struct{}, 1),
		written: written, writtenWake: make(chan struct{}, 1)}
}

// writtenUpTo reports that the persister has carried out every Ready up to
// the one holding executed-log position upTo: its records are written (and
// synced if it needed it), so its executions' results may leave.
func (a *applier) writtenUpTo(upTo uint64) {
	a.mu.Lock()
	grew := upTo > a.written
	a.written = max(a.written, upTo)
	a.mu.Unlock()
	if grew {
		signal(a.writtenWake)
	}
}

// awaitWritten waits until executed-log position pos is written.
func (a *applier) awaitWritten(ctx context.Context, pos uint64) error {
	for {
		a.mu.Lock()
		done := a.written >= pos
		a.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.writtenWake:
		}
	}
}

// enqueue hands over the executions of one Ready, possibly before it is
// written; first is the executed-log position of execs[0]. It never blocks.
func (a *applier) enqueue(first uint64, execs []replica.Execution) {
	a.mu.Lock()
	if len(a.queue)+len(execs) > maxQueuedExecutions {
		if !a.spilled {
			a.log.Warn("state machine is behind; executions will be read back from the executed log",
				"queued", len(a.queue), "applied", a.applied)
		}
		a.queue, a.spilled = nil, true
		a.spillTo = max(a.spillTo, first+uint64(len(execs))-1)
	} else {
		for i, e := range execs {
			a.queue = append(a.queue, queuedExecution{pos: first + uint64(i), exec: e})
		}
	}
	a.mu.Unlock()
	signal(a.wake)
}

// start launches the first plugin process and rebuilds it from the executed
// log. An error here (a missing or broken plugin binary) stops the replica
// before it serves.
//
// A plugin that starts but fails during the rebuild (it crashed, or was
// killed) is started again, a few times, as the running applier would.
func (a *applier) start(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		h, err := a.launch()
		if err != nil {
			return err
		}
		err = a.rebuild(ctx, h)
		var fatal *logError
		if err == nil || errors.As(err, &fatal) || attempt == startAttempts || ctx.Err() != nil {
			return err
		}
		a.log.Error("state machine failed while being rebuilt; restarting it", "attempt", attempt, "error", err)
	}
}

// startAttempts is how many times start launches a plugin that fails while
// being rebuilt.
const startAttempts = 5

// rebuild replays the written executed log into the new process h, through
// a reset session table, and makes h the current plugin. What comes after
// the written part is still queued (or, after a spill, read by catchUp).
func (a *applier) rebuild(ctx context.Context, h *plugin.Host) error {
	a.mu.Lock()
	written := a.written
	a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		h.Close()
		return &logError{fmt.Errorf("reading the executed log: %w", err)}
	}
	upTo := min(uint64(len(st.Executed)), written)
	a.sessions.ResetState()
	if err := replayFrom(ctx, h, a.sessions, st, 1, upTo); err != nil {
		h.Close()
		return err
	}
	a.mu.Lock()
	a.host, a.applied, a.released = h, upTo, upTo
	a.mu.Unlock()
	// Batches held for the previous process are replayed from the log or
	// applied again from the queue; the session table forgot them.
	a.held = nil
	if upTo > 0 {
		a.log.Info("state machine rebuilt from the executed log", "instances", upTo)
	}
	return nil
}

// run applies until ctx ends, restarting the plugin whenever it fails. It
// returns an error only if the executed log cannot be read.
func (a *applier) run(ctx context.Context) error {
	go a.checkHealth(ctx)
	failures := 0
	for ctx.Err() == nil {
		if a.current() == nil {
			if err := a.restart(ctx, &failures); err != nil {
				return err
			}
			continue
		}
		if err := a.catchUp(ctx); err != nil {
			var fatal *logError
			if errors.As(err, &fatal) {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			a.log.Error("state machine failed; restarting it", "error", err)
			a.drop()
			continue
		}
		batch := a.next(ctx)
		if batch == nil {
			continue
		}
		if err := a.apply(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Error("state machine failed; restarting it", "error", err)
			a.drop()
			continue
		}
		failures = 0
	}
	return nil
}

func (a *applier) current() *plugin.Host {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.host
}

// drop closes the current plugin process.
func (a *applier) drop() {
	a.mu.Lock()
	h := a.host
	a.host = nil
	a.mu.Unlock()
	if h != nil {
		h.Close()
	}
}

// restart starts a new plugin process and rebuilds it, backing off after
// each failure. A plugin that keeps failing is reported loudly; the replica
// stays up and keeps ordering commands with its peers meanwhile.
func (a *applier) restart(ctx context.Context, failures *int) error {
	if *failures > 0 {
		wait := min(restartBackoff<<min(*failures-1, 10), maxRestartWait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	*failures++
	h, err := a.launch()
	if err == nil {
		err = a.rebuild(ctx, h)
		var fatal *logError
		if errors.As(err, &fatal) {
			return err
		}
	}
	switch {
	case err == nil:
		a.log.Info("state machine plugin restarted", "attempt", *failures)
		*failures = 0
	case *failures >= crashLoopReports:
		a.log.Error("state machine plugin keeps failing: commands are ordered but not executed here until it starts",
			"attempts", *failures, "error", err)
	default:
		a.log.Warn("state machine plugin restart failed", "attempt", *failures, "error", err)
	}
	return nil
}

// catchUp, after the queue was dropped, applies from the executed log what
// the plugin has not applied, up to the written end of the log, once that
// covers every dropped execution; the executions queued since are then
// skipped by position (next).
func (a *applier) catchUp(ctx context.Context) error {
	a.mu.Lock()
	spilled, h, from, spillTo := a.spilled, a.host, a.applied+1, a.spillTo
	if h == nil {
		// The health check dropped the plugin; the next one is rebuilt
		// from the whole log, then catches up from there.
		a.mu.Unlock()
		return nil
	}
	a.spilled = false
	a.mu.Unlock()
	if !spilled {
		return nil
	}
	retry := func(err error) error {
		a.mu.Lock()
		a.spilled = true // try again, with the next plugin if this one failed
		a.mu.Unlock()
		return err
	}
	if err := a.awaitWritten(ctx, spillTo); err != nil {
		return retry(err)
	}
	// Everything applied is written now (applied <= spillTo): release the
	// held batches before the replay records anything after them.
	a.releaseWritten()
	a.mu.Lock()
	written := a.written
	a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return &logError{fmt.Errorf("reading the executed log: %w", err)}
	}
	upTo := min(uint64(len(st.Executed)), written)
	if err := replayFrom(ctx, h, a.sessions, st, from, upTo); err != nil {
		return retry(err)
	}
	a.mu.Lock()
	a.applied = max(a.applied, upTo)
	a.released = max(a.released, upTo)
	a.mu.Unlock()
	a.log.Info("state machine caught up from the executed log", "from", from, "to", upTo)
	return nil
}

// errPluginDropped ends an apply whose plugin the health check dropped.
var errPluginDropped = errors.New("plugin dropped by the health check")

// logError marks a failure to read the executed log, which no restart can fix.
type logError struct{ err error }

func (e *logError) Error() string { return e.err.Error() }
func (e *logError) Unwrap() error { return e.err }

// maxHeldBatches bounds the applied batches waiting to be released: the
// plugin gets no further ahead of the persister than this.
const maxHeldBatches = 64

// next releases the held batches that are written, waits for queued
// executions, and takes whole executions, up to maxApplyBatch commands,
// that the current plugin has not applied yet.
func (a *applier) next(ctx context.Context) []queuedExecution {
	for {
		a.releaseWritten()
		a.mu.Lock()
		if a.spilled {
			// The queue lost executions: catch up from the log first.
			a.mu.Unlock()
			return nil
		}
		// Executions whose results are recorded (or that are in the log
		// the plugin was rebuilt from) leave the queue; those applied and
		// held stay until they are released.
		for len(a.queue) > 0 && a.queue[0].pos <= a.released {
			a.queue = a.queue[1:]
		}
		// Queued positions are consecutive (enqueue), so those this
		// plugin has applied and holds come first: skip them by count.
		i := 0
		if len(a.queue) > 0 && a.applied >= a.queue[0].pos {
			i = int(min(uint64(len(a.queue)), a.applied-a.queue[0].pos+1))
		}
		if i < len(a.queue) && len(a.held) < maxHeldBatches {
			n, cmds := i, 0
			for n < len(a.queue) && (n == i || cmds+len(a.queue[n].exec.Commands) <= maxApplyBatch) {
				cmds += len(a.queue[n].exec.Commands)
				n++
			}
			batch := append([]queuedExecution(nil), a.queue[i:n]...)
			a.mu.Unlock()
			return batch
		}
		if len(a.queue) == 0 {
			a.queue = nil // release the backing array
		}
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
		case <-a.writtenWake:
		}
	}
}

// releaseWritten records, in order, the results of the held batches whose
// executions are all written, which answers their clients.
func (a *applier) releaseWritten() {
	a.mu.Lock()
	written := a.written
	a.mu.Unlock()
	n := 0
	for n < len(a.held) && a.held[n].last <= written {
		b := a.held[n]
		a.sessions.Record(b.cmds, b.slots, b.results)
		n++
	}
	if n == 0 {
		return
	}
	a.mu.Lock()
	a.released = a.held[n-1].last
	a.mu.Unlock()
	a.held = append(a.held[:0], a.held[n:]...)
}

// apply applies one batch to the current plugin and holds its results
// until the batch is written (releaseWritten).
func (a *applier) apply(ctx context.Context, batch []queuedExecution) error {
	h := a.current()
	if h == nil {
		// The health check dropped the plugin since run looked.
		return errPluginDropped
	}
	actx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	a.abort = cancel
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.abort = nil
		a.mu.Unlock()
		cancel()
	}()
	a.mu.Lock()
	if want := a.applied + 1; batch[0].pos != want {
		a.mu.Unlock()
		return fmt.Errorf("internal error: batch starts at executed-log position %d, want %d", batch[0].pos, want)
	}
	a.mu.Unlock()
	n := 0
	execs := make([]replica.Execution, len(batch))
	for i, q := range batch {
		n += len(q.exec.Commands)
		execs[i] = q.exec
	}
	cmds := appendCommands(make([]session.Command, 0, n), execs...)
	last := batch[len(batch)-1].pos
	slots, results, err := applyToPlugin(actx, h, a.sessions, cmds)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.applied = last
	a.mu.Unlock()
	a.held = append(a.held, heldBatch{last: last, cmds: cmds, slots: slots, results: results})
	a.releaseWritten()
	return nil
}

// checkHealth pings the plugin and aborts the Apply in flight when the
// process stops answering, so a hung plugin is restarted like a dead one.
func (a *applier) checkHealth(ctx context.Context) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := a.current()
		if h == nil {
			continue
		}
		if err := pingWithin(h, healthTimeout); err != nil {
			a.log.Error("state machine plugin failed its health check", "error", err)
			a.mu.Lock()
			if a.abort != nil {
				a.abort()
			}
			a.mu.Unlock()
			if a.current() == h {
				a.dropIf(h)
			}
		}
	}
}

// dropIf closes h if it is still the current plugin.
func (a *applier) dropIf(h *plugin.Host) {
	a.mu.Lock()
	if a.host != h {
		a.mu.Unlock()
		return
	}
	a.host = nil
	a.mu.Unlock()
	h.Close()
}

// pingWithin pings h, giving up after d (go-plugin's Ping takes no context).
func pingWithin(h *plugin.Host, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- h.Ping() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("no answer to a ping within %v", d)
	}
}

// appendCommands appends the commands of execs to cmds for the state
// machine. Their keys are copied into one buffer per call, not one each.
func appendCommands(cmds []session.Command, execs ...replica.Execution) []session.Command {
	size := 0
	for _, e := range execs {
		for _, c := range e.Commands {
			size += len(c.Key)
		}
	}
	keys := make([]byte, 0, size)
	for _, e := range execs {
		for _, c := range e.Commands {
			start := len(keys)
			keys = append(keys, c.Key...)
			cmds = append(cmds, session.Command{
				Client: c.ClientID, Seq: c.Seq,
				Cmd: plugin.Command{Access: plugin.Access(c.Access), Key: keys[start:len(keys):len(keys)], Value: c.Value},
			})
		}
	}
	return cmds
}

// applyToPlugin runs commands through the session table's filter and the
// plugin h, and returns what sessions.Record needs to record their results.
func applyToPlugin(ctx context.Context, h *plugin.Host, sessions *session.Table, cmds []session.Command) (
	slots []int, results []plugin.Result, err error) {
	slots, batch := sessions.Filter(cmds)
	if len(batch) > 0 {
		if results, err = h.Apply(ctx, batch); err != nil {
			return nil, nil, fmt.Errorf("state machine: %w", err)
		}
	}
	return slots, results, nil
}

// applyCommands applies commands, which are written, to h and records the
// results (which answers waiting clients).
func applyCommands(ctx context.Context, h *plugin.Host, sessions *session.Table, cmds []session.Command) error {
	slots, results, err := applyToPlugin(ctx, h, sessions, cmds)
	if err != nil {
		return err
	}
	sessions.Record(cmds, slots, results)
	return nil
}
