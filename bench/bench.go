// Package bench is epaxosd's load generator: the library behind
// `epaxosd bench`. It drives anything that implements Proposer (the Go
// client, or a fake in tests) and measures throughput and latency.
//
// # Modes
//
// A run is either of fixed duration (Config.Duration) or of a fixed number
// of operations (Config.Ops); exactly one must be given. Before it, an
// optional warmup (Config.Warmup) runs the same load, and every operation
// that starts during the warmup is left out of the results.
//
// Load is either closed loop, Config.Clients clients that each issue one
// command, wait for its reply and issue the next, or open loop, Poisson
// arrivals at Config.Rate per second: the gaps between arrivals are
// exponentially distributed, drawn from an RNG seeded with Config.Seed, and
// every arrival is scheduled in advance, whether or not the system under test
// keeps up. An open-loop operation's latency is measured from its scheduled
// arrival time, not from when it was sent, so that a slow system is not
// excused from the time its requests spend waiting to be sent (no
// coordinated omission). At most Config.MaxOutstanding requests are in
// flight; arrivals that find them all busy wait in a backlog of
// Config.Backlog (they are counted as late if they are sent more than
// LateThreshold after their scheduled time), and arrivals that find the
// backlog full are dropped and counted.
//
// # What is measured
//
// An operation belongs to the results when its start (closed loop) or its
// scheduled arrival (open loop) is at or after the end of the warmup. In
// duration mode, the operations still in flight when the duration ends are
// cancelled and counted as unfinished, neither as operations nor as errors,
// so that the measured window is exactly Config.Duration. In operations
// mode the run ends when Config.Ops measured operations have finished, and
// the window runs from the end of the warmup to the last of them.
//
// Operations counts and throughput are of successful operations; a failed
// operation (an error, a timeout or a state machine error reply) is counted
// in Errors and not in the latency histogram. Latencies are recorded in
// microseconds in an HdrHistogram with 3 significant digits (relative error
// at most 0.1%), from 1 µs to one hour; longer latencies are recorded as
// one hour.
//
// # Commands
//
// Each command is a read with probability Config.Reads percent, otherwise a
// write. With probability Config.Conflict percent it touches the one hot key
// shared by all clients ("PREFIX/hot"); otherwise a key private to its
// client ("PREFIX/cCLIENT/N", N below Config.PrivateKeys), so that commands
// of different clients never interfere. With the kv plugin a write stores
// Config.ValueSize bytes; with the counter plugin a write is an increment
// (the decimal value "1", see plugins/counter) and Config.ValueSize is not
// used.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// Proposer proposes one command and returns the state machine's reply. It
// must be safe for concurrent use. *client.Client implements it.
type Proposer interface {
	Propose(ctx context.Context, access client.Access, key string, value []byte) ([]byte, error)
}

var _ Proposer = (*client.Client)(nil)

// Defaults for the zero values of Config's fields.
const (
	DefaultMaxOutstanding = 256
	DefaultBacklog        = 4096
	DefaultPrivateKeys    = 1000
	DefaultKeyPrefix      = "bench"
	DefaultInterval       = time.Second

	// LateThreshold is how long after its scheduled arrival an open-loop
	// request may be sent before it counts as late.
	LateThreshold = time.Millisecond
)

// ErrMode is returned when a Config gives both or neither of Duration and Ops.
var ErrMode = errors.New("specify either fixed duration or maximum operations benchmark mode")

// ErrAlreadyRun is returned by the second call of Run on one Bench.
var ErrAlreadyRun = errors.New("bench: this benchmark has already run; make a new one")

// Config configures a benchmark.
type Config struct {
	// Proposers carry the commands; client i uses Proposers[i%len(Proposers)]
	// (in open loop, the i-th request slot). At least one.
	Proposers []Proposer

	// Exactly one of Duration and Ops is positive: run for Duration after the
	// warmup, or until Ops operations after the warmup have finished.
	Duration time.Duration
	Ops      int64
	// Warmup is run before the measurement, with the same load; what starts
	// during it is not measured.
	Warmup time.Duration

	// Clients, closed loop: that many clients each with one command in
	// flight. Rate, open loop: Poisson arrivals per second. Exactly one is
	// positive.
	Clients int
	Rate    float64
	// MaxOutstanding bounds the open-loop requests in flight at once
	// (DefaultMaxOutstanding if 0); Backlog bounds the arrivals waiting for
	// one of them (DefaultBacklog if 0; negative for none): further arrivals
	// are dropped.
	MaxOutstanding int
	Backlog        int

	// Conflict and Reads are percentages (0 to 100) of commands on the hot
	// key and of reads.
	Conflict float64
	Reads    float64
	// ValueSize is the size in bytes of a kv write's value.
	ValueSize int
	// Plugin is the state machine under test: "kv" (the default) or "counter".
	Plugin string
	// PrivateKeys is the number of private keys per client
	// (DefaultPrivateKeys if 0); KeyPrefix prefixes every key
	// (DefaultKeyPrefix if empty).
	PrivateKeys int
	KeyPrefix   string
	// Seed seeds every random choice: arrivals, reads, keys and values.
	Seed uint64
	// Timeout bounds each operation; 0 means no bound but the run's.
	Timeout time.Duration

	// Progress, if set, receives a progress line about every Interval.
	// Out, if set, receives a JSON line of statistics every Interval (see
	// IntervalStats). Interval is DefaultInterval if 0.
	Progress io.Writer
	Out      io.Writer
	Interval time.Duration
}

// Validate checks cfg and reports the first problem.
func (cfg *Config) Validate() error {
	switch {
	case (cfg.Duration > 0) == (cfg.Ops > 0):
		return ErrMode
	case cfg.Duration < 0 || cfg.Ops < 0:
		return ErrMode
	case len(cfg.Proposers) == 0:
		return errors.New("bench: no proposer")
	case cfg.Clients > 0 && cfg.Rate > 0:
		return errors.New("bench: give either a number of closed-loop clients or an open-loop rate, not both")
	case cfg.Clients <= 0 && !(cfg.Rate > 0):
		return errors.New("bench: give a number of closed-loop clients or an open-loop rate")
	case math.IsInf(cfg.Rate, 0) || math.IsNaN(cfg.Rate) || cfg.Rate < 0:
		return fmt.Errorf("bench: invalid rate %v", cfg.Rate)
	case cfg.Warmup < 0:
		return errors.New("bench: warmup must not be negative")
	case cfg.Timeout < 0:
		return errors.New("bench: timeout must not be negative")
	case cfg.MaxOutstanding < 0:
		return errors.New("bench: max outstanding must not be negative")
	case !(cfg.Conflict >= 0 && cfg.Conflict <= 100):
		return fmt.Errorf("bench: conflict must be a percentage from 0 to 100, got %v", cfg.Conflict)
	case !(cfg.Reads >= 0 && cfg.Reads <= 100):
		return fmt.Errorf("bench: reads must be a percentage from 0 to 100, got %v", cfg.Reads)
	case cfg.ValueSize < 0:
		return errors.New("bench: value size must not be negative")
	case cfg.PrivateKeys < 0:
		return errors.New("bench: private keys must not be negative")
	case cfg.Interval < 0:
		return errors.New("bench: interval must not be negative")
	}
	switch cfg.Plugin {
	case "", "kv", "counter":
	default:
		return fmt.Errorf("bench: plugin must be kv or counter, got %q", cfg.Plugin)
	}
	return nil
}

// Bench is one benchmark run. Make it with New and run it once with Run.
type Bench struct {
	cfg Config

	mu  sync.Mutex
	ran bool

	// Set by Run before any client starts.
	start     time.Time
	warmupEnd time.Time
	deadline  time.Time // zero in operations mode
}

// New validates cfg and returns a benchmark ready to run.
func New(cfg Config) (*Bench, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Plugin == "" {
		cfg.Plugin = "kv"
	}
	if cfg.MaxOutstanding == 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding
	}
	if cfg.Backlog == 0 {
		cfg.Backlog = DefaultBacklog
	} else if cfg.Backlog < 0 {
		cfg.Backlog = 0
	}
	if cfg.PrivateKeys == 0 {
		cfg.PrivateKeys = DefaultPrivateKeys
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	return &Bench{cfg: cfg}, nil
}

// Result is what a run measured. Counts are of measured operations (started
// after the warmup) unless said otherwise.
type Result struct {
	Ops        int64         // operations that succeeded
	Errors     int64         // operations that failed
	Unfinished int64         // in flight (or waiting, open loop) when the duration ended: neither
	WarmupOps  int64         // operations started during the warmup, failed or not: not measured
	Dropped    int64         // open loop: arrivals dropped because the backlog was full
	Late       int64         // open loop: requests sent more than LateThreshold after their arrival
	Reads      int64         // finished operations (succeeded or failed) that were reads
	Writes     int64         // ... that were writes
	Hot        int64         // ... on the shared hot key
	Elapsed    time.Duration // the measured window
	OpsPerSec  float64       // Ops / Elapsed
	Latency    Latency       // of the operations that succeeded
	FirstError error         // the first error of a measured operation, if any
}

// Latency summarises a latency histogram.
type Latency struct {
	P50, P90, P99, P999, Max, Mean time.Duration
}

// SummaryLine is the one-line summary that `epaxosd bench` prints:
//
//	ops/s=... p50_ms=... p90_ms=... p99_ms=... p999_ms=... errors=...
func (r Result) SummaryLine() string {
	return fmt.Sprintf("ops/s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=%d",
		r.OpsPerSec, ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.P999), r.Errors)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// op is one command to send.
type op struct {
	access client.Access
	key    string
	value  []byte
	hot    bool
}

// opGen makes the commands of one client from its own seeded RNG.
type opGen struct {
	cfg    *Config
	rng    *rand.Rand
	prefix string // this client's private key prefix
	value  []byte // a kv write's value
}

func newOpGen(cfg *Config, clientIdx int, stream uint64) *opGen {
	g := &opGen{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, stream)),
		prefix: fmt.Sprintf("%s/c%d/", cfg.KeyPrefix, clientIdx),
	}
	if cfg.Plugin == "counter" {
		g.value = []byte("1") // an increment: see plugins/counter
	} else {
		const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
		g.value = make([]byte, cfg.ValueSize)
		for i := range g.value {
			g.value[i] = letters[g.rng.IntN(len(letters))]
		}
	}
	return g
}

// decide draws whether the next command is a read and whether it is on the
// hot key.
func (g *opGen) decide() (read, hot bool) {
	read = g.rng.Float64()*100 < g.cfg.Reads
	hot = g.rng.Float64()*100 < g.cfg.Conflict
	return read, hot
}

// make builds the command for a decision; a private key comes from g's
// client.
func (g *opGen) make(read, hot bool) op {
	o := op{access: client.Write, value: g.value, hot: hot}
	if read {
		o.access, o.value = client.Read, nil
	}
	if hot {
		o.key = g.cfg.KeyPrefix + "/hot"
	} else {
		o.key = g.prefix + fmt.Sprint(g.rng.IntN(g.cfg.PrivateKeys))
	}
	return o
}

func (g *opGen) next() op { return g.make(g.decide()) }

// Run runs the benchmark and returns its result. It returns early, with the
// result so far and ctx's error, if ctx is done. A Bench runs only once: a
// second call returns ErrAlreadyRun.
func (b *Bench) Run(ctx context.Context) (Result, error) {
	b.mu.Lock()
	if b.ran {
		b.mu.Unlock()
		return Result{}, ErrAlreadyRun
	}
	b.ran = true
	b.mu.Unlock()

	cfg := &b.cfg
	b.start = time.Now()
	b.warmupEnd = b.start.Add(cfg.Warmup)
	if cfg.Duration > 0 {
		b.deadline = b.warmupEnd.Add(cfg.Duration)
	}
	rec := newRecorder(b)

	// runCtx ends at the deadline (duration mode), cancelling what is in
	// flight then, or when ctx ends.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !b.deadline.IsZero() {
		t := time.AfterFunc(time.Until(b.deadline), cancel)
		defer t.Stop()
	}

	stopReport := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		rec.report(stopReport)
	}()

	if cfg.Rate > 0 {
		b.openLoop(runCtx, rec)
	} else {
		b.closedLoop(runCtx, rec)
	}
	close(stopReport)
	<-reported

	res := rec.result(time.Now())
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if rec.outErr != nil {
		return res, fmt.Errorf("bench: writing interval statistics: %w", rec.outErr)
	}
	return res, nil
}

// measured reports whether an operation that starts (or is scheduled) at t
// belongs to the results.
func (b *Bench) measured(t time.Time) bool { return !t.Before(b.warmupEnd) }

// afterDeadline reports whether t is at or past the end of a duration-mode run.
func (b *Bench) afterDeadline(t time.Time) bool {
	return !b.deadline.IsZero() && !t.Before(b.deadline)
}

// closedLoop runs cfg.Clients clients, each one command at a time, until the
// deadline, the operation budget or runCtx's end.
func (b *Bench) closedLoop(runCtx context.Context, rec *recorder) {
	cfg := &b.cfg
	var tickets atomic.Int64 // measured operations claimed, in operations mode
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := cfg.Proposers[i%len(cfg.Proposers)]
			gen := newOpGen(cfg, i, uint64(i)+1)
			for runCtx.Err() == nil {
				start := time.Now()
				measured := b.measured(start)
				if measured && b.afterDeadline(start) {
					return
				}
				if measured && cfg.Ops > 0 && tickets.Add(1) > cfg.Ops {
					return
				}
				o := gen.next()
				err := b.propose(runCtx, p, o)
				rec.record(o, measured, start, time.Now(), err, runCtx)
			}
		}()
	}
	wg.Wait()
}

// arrival is one scheduled open-loop request.
type arrival struct {
	at       time.Time
	measured bool
	read     bool
	hot      bool
}

// openLoop schedules Poisson arrivals at cfg.Rate and serves them with
// cfg.MaxOutstanding request slots.
func (b *Bench) openLoop(runCtx context.Context, rec *recorder) {
	cfg := &b.cfg
	queue := make(chan arrival, cfg.Backlog)
	var wg sync.WaitGroup
	for i := range cfg.MaxOutstanding {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := cfg.Proposers[i%len(cfg.Proposers)]
			gen := newOpGen(cfg, i, uint64(i)+1)
			for a := range queue {
				if runCtx.Err() != nil {
					rec.unfinished(a.measured)
					continue
				}
				sent := time.Now()
				o := gen.make(a.read, a.hot)
				err := b.propose(runCtx, p, o)
				if rec.record(o, a.measured, a.at, time.Now(), err, runCtx) && sent.Sub(a.at) > LateThreshold {
					rec.late()
				}
			}
		}()
	}

	// The arrival process: its own RNG stream (0), so that the schedule and
	// the mix of commands depend on the seed alone.
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	mix := &opGen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, math.MaxUint64))}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var accepted int64 // measured arrivals queued, in operations mode
	at := b.start
	for {
		at = at.Add(time.Duration(rng.ExpFloat64() / cfg.Rate * float64(time.Second)))
		if b.afterDeadline(at) {
			break
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-runCtx.Done():
			}
		}
		if runCtx.Err() != nil {
			break
		}
		a := arrival{at: at, measured: b.measured(at)}
		a.read, a.hot = mix.decide()
		select {
		case queue <- a:
			if a.measured && cfg.Ops > 0 {
				if accepted++; accepted >= cfg.Ops {
					close(queue)
					wg.Wait()
					return
				}
			}
		default:
			rec.drop(a.measured)
		}
	}
	close(queue)
	wg.Wait()
}

// propose sends one command, bounded by cfg.Timeout.
func (b *Bench) propose(ctx context.Context, p Proposer, o op) error {
	if b.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.Timeout)
		defer cancel()
	}
	_, err := p.Propose(ctx, o.access, o.key, o.value)
	return err
}

// IntervalStats is one line of Config.Out, written every Interval (and for
// the last, partial interval if anything finished in it) as JSON.
// Operations are counted in the interval in which they finish; the latency
// fields are of the operations that succeeded in the interval, in
// milliseconds, and are absent when none did.
//
// The fast and slow path counts of EPaxos are not included: the client API
// does not report which path a command took. They are in the replicas' own
// metrics files (config attribute metrics, daemon.MetricsLine), whose lines
// share these fields' names and add fast_path and slow_path; bench/run.sh
// turns them on for every epaxosd replica it starts.
type IntervalStats struct {
	Time      time.Time `json:"time"`      // the end of the interval
	Elapsed   float64   `json:"elapsed_s"` // seconds since the start of the run, warmup included
	Warmup    bool      `json:"warmup"`    // the interval began during the warmup
	Ops       int64     `json:"ops"`       // successful operations in the interval
	OpsPerSec float64   `json:"ops_per_s"` // Ops per second of the interval
	Errors    int64     `json:"errors"`    // failed operations in the interval
	TotalOps  int64     `json:"total_ops"` // measured successful operations so far
	P50       *float64  `json:"p50_ms,omitempty"`
	P90       *float64  `json:"p90_ms,omitempty"`
	P99       *float64  `json:"p99_ms,omitempty"`
	P999      *float64  `json:"p999_ms,omitempty"`
	Max       *float64  `json:"max_ms,omitempty"`
	FastPath  *int64    `json:"fast_path,omitempty"` // always absent: not reported by the client
	SlowPath  *int64    `json:"slow_path,omitempty"` // always absent: not reported by the client
}

// recorder gathers the statistics of a run.
type recorder struct {
	b *Bench

	mu                        sync.Mutex
	total                     *histogram // measured successes
	interval                  *histogram // every success in the current interval
	ops, errs, unfin, warm    int64
	dropped, lates            int64
	reads, writes, hot        int64
	intervalOps, intervalErrs int64
	lastDone                  time.Time // latest finish of a measured operation
	lastReport                time.Time
	outErr                    error // the first error writing Config.Out
	firstErr                  error // the first error of a measured operation
}

func newRecorder(b *Bench) *recorder {
	return &recorder{b: b, total: newHistogram(), interval: newHistogram(), lastReport: b.start}
}

// record records one finished operation that started (or was scheduled) at
// start and finished at done with err. An operation cut short by the end of
// runCtx (the deadline, or the caller's context) is unfinished, and so is a
// measured one that finished after the deadline. It reports whether the
// operation was measured and finished.
func (r *recorder) record(o op, measured bool, start, done time.Time, err error, runCtx context.Context) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if (err != nil && runCtx.Err() != nil) || (measured && r.b.afterDeadline(done)) {
		if measured {
			r.unfin++
		}
		return false
	}
	if err != nil {
		r.intervalErrs++
	} else {
		r.intervalOps++
		r.interval.record(done.Sub(start))
	}
	if !measured {
		r.warm++
		return false
	}
	if err != nil {
		r.errs++
		if r.firstErr == nil {
			r.firstErr = err
		}
	} else {
		r.ops++
		r.total.record(done.Sub(start))
	}
	if o.access == client.Read {
		r.reads++
	} else {
		r.writes++
	}
	if o.hot {
		r.hot++
	}
	if done.After(r.lastDone) {
		r.lastDone = done
	}
	return true
}

func (r *recorder) unfinished(measured bool) {
	if measured {
		r.mu.Lock()
		r.unfin++
		r.mu.Unlock()
	}
}

func (r *recorder) drop(measured bool) {
	if measured {
		r.mu.Lock()
		r.dropped++
		r.mu.Unlock()
	}
}

func (r *recorder) late() {
	r.mu.Lock()
	r.lates++
	r.mu.Unlock()
}

// report writes interval statistics and progress lines every Interval until
// stop is closed, and then once more for the last, partial interval.
func (r *recorder) report(stop <-chan struct{}) {
	cfg := &r.b.cfg
	if cfg.Out == nil && cfg.Progress == nil {
		return
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			r.flush(now, false)
		case <-stop:
			r.flush(time.Now(), true)
			return
		}
	}
}

// flush ends the current interval at now. The final, partial interval is
// not reported when nothing finished in it, unless it is the only one.
func (r *recorder) flush(now time.Time, final bool) {
	cfg := &r.b.cfg
	r.mu.Lock()
	if final && r.intervalOps == 0 && r.intervalErrs == 0 && !r.lastReport.Equal(r.b.start) {
		r.mu.Unlock()
		return
	}
	st := IntervalStats{
		Time:     now,
		Elapsed:  now.Sub(r.b.start).Seconds(),
		Warmup:   r.lastReport.Before(r.b.warmupEnd),
		Ops:      r.intervalOps,
		Errors:   r.intervalErrs,
		TotalOps: r.ops,
	}
	if secs := now.Sub(r.lastReport).Seconds(); secs > 0 {
		st.OpsPerSec = float64(st.Ops) / secs
	}
	if r.interval.count() > 0 {
		l := r.interval.summary()
		st.P50, st.P90, st.P99, st.P999, st.Max = msPtr(l.P50), msPtr(l.P90), msPtr(l.P99), msPtr(l.P999), msPtr(l.Max)
	}
	r.interval.reset()
	r.intervalOps, r.intervalErrs = 0, 0
	r.lastReport = now
	r.mu.Unlock()

	if cfg.Out != nil {
		line, err := json.Marshal(st)
		if err == nil {
			_, err = cfg.Out.Write(append(line, '\n'))
		}
		if err != nil && r.outErr == nil {
			r.outErr = err
		}
	}
	if cfg.Progress != nil {
		phase := ""
		if st.Warmup {
			phase = " (warmup)"
		}
		fmt.Fprintf(cfg.Progress, "elapsed=%.1fs ops=%d ops/s=%.1f errors=%d%s\n",
			st.Elapsed, st.TotalOps, st.OpsPerSec, st.Errors, phase)
	}
}

func msPtr(d time.Duration) *float64 {
	v := math.Round(ms(d)*1000) / 1000
	return &v
}

// result is the Result of the run that ended at end.
func (r *recorder) result(end time.Time) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{
		Ops: r.ops, Errors: r.errs, Unfinished: r.unfin, WarmupOps: r.warm,
		Dropped: r.dropped, Late: r.lates, Reads: r.reads, Writes: r.writes, Hot: r.hot,
		Latency: r.total.summary(), FirstError: r.firstErr,
	}
	switch {
	case !r.b.deadline.IsZero():
		// The duration, or less if the run was cut short.
		if end.After(r.b.deadline) {
			end = r.b.deadline
		}
		res.Elapsed = max(end.Sub(r.b.warmupEnd), 0)
	case r.lastDone.After(r.b.warmupEnd):
		res.Elapsed = r.lastDone.Sub(r.b.warmupEnd)
	}
	if res.Elapsed > 0 {
		res.OpsPerSec = float64(res.Ops) / res.Elapsed.Seconds()
	}
	return res
}
