package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/epaxosd/epaxosd/replica"
)

// MetricsInterval is how often the metrics file gets a line.
const MetricsInterval = time.Second

// MetricsLine is one line of the metrics file (config attribute metrics):
// what happened at this replica during one interval. Its first fields are
// those of `epaxosd bench -out` (bench.IntervalStats), so the same tools
// read both; the latencies are measured here, from a client request's
// arrival at this replica to its answer. The path counts are of the
// instances this replica coordinated that committed in the interval.
type MetricsLine struct {
	Time     time.Time `json:"time"`
	Elapsed  float64   `json:"elapsed_s"` // since the replica started
	Ops      int64     `json:"ops"`       // client requests answered without error
	OpsPerS  float64   `json:"ops_per_s"`
	Errors   int64     `json:"errors"`    // client requests answered with an error
	TotalOps int64     `json:"total_ops"` // Ops since the start
	P50      *float64  `json:"p50_ms,omitempty"`
	P90      *float64  `json:"p90_ms,omitempty"`
	P99      *float64  `json:"p99_ms,omitempty"`
	P999     *float64  `json:"p999_ms,omitempty"`
	Max      *float64  `json:"max_ms,omitempty"`
	FastPath uint64    `json:"fast_path"`
	SlowPath uint64    `json:"slow_path"`

	Proposed  uint64 `json:"proposed"`  // instances started here
	Recovered uint64 `json:"recovered"` // instances committed here as a recovery coordinator
	Executed  uint64 `json:"executed"`  // commands handed to the state machine
	Held      int    `json:"held"`      // commands waiting in the gate at the end (replica/hold.go)
	// ExecP50, ExecP99 and ExecMax are, over the instances executed in the
	// interval, the delay from their commit record being handed to storage
	// to their execution being handed to the state machine here: the
	// measure of execution livelock (it grows without bound if a
	// dependency chain never closes).
	ExecP50 *float64 `json:"exec_p50_ms,omitempty"`
	ExecP99 *float64 `json:"exec_p99_ms,omitempty"`
	ExecMax *float64 `json:"exec_max_ms,omitempty"`
}

// maxCommitTimes bounds the commit times remembered for the execution
// delay; past it they are forgotten (those instances go unmeasured).
const maxCommitTimes = 1 << 20

// metrics collects what the metrics file reports. Client handlers record
// requests; the core loop records commits, executions and the core's
// counters; the writer goroutine takes an interval's worth every second.
type metrics struct {
	mu       sync.Mutex
	lat      *hdrhistogram.Histogram // request latencies, µs
	exec     *hdrhistogram.Histogram // commit-to-execution delays, µs
	ops      int64
	errors   int64
	total    int64
	counters replica.Counters
	held     int

	// Core loop only.
	committedAt map[replica.InstanceID]time.Time
}

func newMetrics() *metrics {
	return &metrics{
		lat:         hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3),
		exec:        hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3),
		committedAt: make(map[replica.InstanceID]time.Time),
	}
}

// request records one answered client request. A nil *metrics records
// nothing (no metrics file).
func (m *metrics) request(start time.Time, failed bool) {
	if m == nil {
		return
	}
	d := max(time.Since(start).Microseconds(), 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if failed {
		m.errors++
		return
	}
	m.ops++
	m.total++
	_ = m.lat.RecordValue(d) // above an hour is clamped by the error
}

// ready records, from the core loop, a Ready's commits and executions and
// the core's counters.
func (m *metrics) ready(rd replica.Ready, c replica.Counters, held int, now time.Time) {
	if m == nil {
		return
	}
	for _, rec := range rd.Instances {
		if rec.Phase != replica.Committed || rec.Command == nil || rec.Command.Nop {
			continue
		}
		if _, ok := m.committedAt[rec.ID]; !ok && len(m.committedAt) < maxCommitTimes {
			m.committedAt[rec.ID] = now
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range rd.Execute {
		if t, ok := m.committedAt[e.Instance]; ok {
			delete(m.committedAt, e.Instance)
			_ = m.exec.RecordValue(max(now.Sub(t).Microseconds(), 1))
		}
	}
	m.counters, m.held = c, held
}

// tick records the core's counters when there was no Ready.
func (m *metrics) tick(c replica.Counters, held int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.counters, m.held = c, held
	m.mu.Unlock()
}

// line takes the interval's statistics and starts the next interval.
func (m *metrics) line(now, started time.Time, interval time.Duration, prev *replica.Counters) MetricsLine {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := MetricsLine{
		Time: now.UTC(), Elapsed: now.Sub(started).Seconds(),
		Ops: m.ops, OpsPerS: float64(m.ops) / interval.Seconds(), Errors: m.errors, TotalOps: m.total,
		FastPath: m.counters.FastCommits - prev.FastCommits, SlowPath: m.counters.SlowCommits - prev.SlowCommits,
		Proposed: m.counters.Proposed - prev.Proposed, Recovered: m.counters.Recovered - prev.Recovered,
		Executed: m.counters.ExecutedCmds - prev.ExecutedCmds, Held: m.held,
	}
	if m.lat.TotalCount() > 0 {
		l.P50, l.P90, l.P99, l.P999 = ms(m.lat.ValueAtQuantile(50)), ms(m.lat.ValueAtQuantile(90)),
			ms(m.lat.ValueAtQuantile(99)), ms(m.lat.ValueAtQuantile(99.9))
		l.Max = ms(m.lat.Max())
	}
	if m.exec.TotalCount() > 0 {
		l.ExecP50, l.ExecP99, l.ExecMax = ms(m.exec.ValueAtQuantile(50)), ms(m.exec.ValueAtQuantile(99)), ms(m.exec.Max())
	}
	*prev = m.counters
	m.ops, m.errors = 0, 0
	m.lat.Reset()
	m.exec.Reset()
	return l
}

func ms(us int64) *float64 {
	v := math.Round(float64(us)) / 1000
	return &v
}

// writeMetrics appends a MetricsLine to path every MetricsInterval until
// ctx ends. It fails only if the file cannot be opened or written: the
// operator asked for it, so a replica that cannot keep it says so.
func (d *Daemon) writeMetrics(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	started := time.Now()
	var prev replica.Counters
	t := time.NewTicker(MetricsInterval)
	defer t.Stop()
	last := started
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if err := enc.Encode(d.metrics.line(now, started, now.Sub(last), &prev)); err != nil {
				return fmt.Errorf("metrics: %s: %w", path, err)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("metrics: %s: %w", path, err)
			}
			last = now
		}
	}
}
