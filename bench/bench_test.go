package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// fakeProposer answers every command after delay (plus what hook returns),
// and counts what it was sent.
type fakeProposer struct {
	delay time.Duration
	hook  func() time.Duration // extra delay for a call; may be nil
	fail  func(n int64) error  // error for the n-th call (from 1); may be nil

	mu     sync.Mutex
	calls  int64
	reads  int64
	writes int64
	hot    int64
	keys   []string
	values map[string]int // write values seen, by value
}

func (f *fakeProposer) Propose(ctx context.Context, access client.Access, key string, value []byte) ([]byte, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	switch access {
	case client.Read:
		f.reads++
		if value != nil {
			f.mu.Unlock()
			return nil, errors.New("fake: a read with a value")
		}
	case client.Write:
		f.writes++
		if f.values == nil {
			f.values = make(map[string]int)
		}
		f.values[string(value)]++
	default:
		f.mu.Unlock()
		return nil, fmt.Errorf("fake: unexpected access %v", access)
	}
	if strings.HasSuffix(key, "/hot") {
		f.hot++
	}
	f.keys = append(f.keys, key)
	f.mu.Unlock()

	d := f.delay
	if f.hook != nil {
		d += f.hook()
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.fail != nil {
		if err := f.fail(n); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func mustNew(t *testing.T, cfg Config) *Bench {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func TestModeValidation(t *testing.T) {
	const want = "specify either fixed duration or maximum operations benchmark mode"
	p := []Proposer{&fakeProposer{}}
	for name, cfg := range map[string]Config{
		"both":    {Proposers: p, Clients: 1, Duration: time.Second, Ops: 10},
		"neither": {Proposers: p, Clients: 1},
	} {
		_, err := New(cfg)
		if err == nil || err.Error() != want {
			t.Errorf("%s: New error = %v, want %q", name, err, want)
		}
		if !errors.Is(err, ErrMode) {
			t.Errorf("%s: error is not ErrMode", name)
		}
	}
	for name, cfg := range map[string]Config{
		"duration": {Proposers: p, Clients: 1, Duration: time.Second},
		"ops":      {Proposers: p, Clients: 1, Ops: 10},
		"rate":     {Proposers: p, Rate: 10, Ops: 10},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("%s: New: %v", name, err)
		}
	}
	for name, cfg := range map[string]Config{
		"clients and rate": {Proposers: p, Clients: 1, Rate: 10, Ops: 10},
		"no load":          {Proposers: p, Ops: 10},
		"no proposer":      {Clients: 1, Ops: 10},
		"conflict > 100":   {Proposers: p, Clients: 1, Ops: 10, Conflict: 101},
		"reads < 0":        {Proposers: p, Clients: 1, Ops: 10, Reads: -1},
		"plugin":           {Proposers: p, Clients: 1, Ops: 10, Plugin: "sql"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestSecondRunRefused(t *testing.T) {
	f := &fakeProposer{}
	b := mustNew(t, Config{Proposers: []Proposer{f}, Clients: 2, Ops: 10})
	res, err := b.Run(context.Background())
	if err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if res.Ops != 10 {
		t.Fatalf("first Run: %d ops, want 10", res.Ops)
	}
	if _, err := b.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Fatalf("second Run: error %v, want ErrAlreadyRun", err)
	}
	if f.calls != 10 {
		t.Fatalf("second Run sent commands: %d calls in all, want 10", f.calls)
	}
}

// TestMix checks that the hot-key and read percentages hold, that the other
// keys are private to their client, and the write values of both plugins.
func TestMix(t *testing.T) {
	const ops, clients = 20000, 4
	for _, tc := range []struct {
		plugin         string
		conflict, read float64
	}{
		{"kv", 30, 20},
		{"kv", 0, 0},
		{"kv", 100, 100},
		{"counter", 5, 50},
	} {
		t.Run(fmt.Sprintf("%s/conflict=%v/reads=%v", tc.plugin, tc.conflict, tc.read), func(t *testing.T) {
			fakes := make([]*fakeProposer, clients)
			var ps []Proposer
			for i := range fakes {
				fakes[i] = &fakeProposer{}
				ps = append(ps, fakes[i])
			}
			b := mustNew(t, Config{
				Proposers: ps, Clients: clients, Ops: ops, Seed: 42,
				Conflict: tc.conflict, Reads: tc.read, ValueSize: 100, Plugin: tc.plugin,
			})
			res, err := b.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops != ops || res.Errors != 0 {
				t.Fatalf("ops=%d errors=%d, want %d and 0", res.Ops, res.Errors, ops)
			}
			var calls, reads, hot int64
			for i, f := range fakes {
				calls += f.calls
				reads += f.reads
				hot += f.hot
				own := fmt.Sprintf("%s/c%d/", DefaultKeyPrefix, i)
				for _, k := range f.keys {
					if k != DefaultKeyPrefix+"/hot" && !strings.HasPrefix(k, own) {
						t.Fatalf("client %d used key %q, neither the hot key nor its own", i, k)
					}
				}
				for v := range f.values {
					want := 100
					if tc.plugin == "counter" {
						if v != "1" {
							t.Fatalf("counter write value %q, want an increment \"1\"", v)
						}
						want = 1
					}
					if len(v) != want {
						t.Fatalf("write value of %d bytes, want %d", len(v), want)
					}
				}
			}
			if calls != ops {
				t.Fatalf("%d calls, want %d", calls, ops)
			}
			if res.Reads != reads || res.Hot != hot || res.Reads+res.Writes != ops {
				t.Fatalf("result counts reads=%d writes=%d hot=%d, proposers saw reads=%d hot=%d",
					res.Reads, res.Writes, res.Hot, reads, hot)
			}
			// 5 standard deviations of a binomial proportion over ops draws.
			check := func(what string, n int64, pct float64) {
				p := pct / 100
				got := float64(n) / ops
				tol := 5 * math.Sqrt(p*(1-p)/ops)
				if math.Abs(got-p) > tol {
					t.Errorf("%s: %.4f of commands, want %.4f ± %.4f", what, got, p, tol)
				}
			}
			check("reads", reads, tc.read)
			check("hot", hot, tc.conflict)
		})
	}
}

// TestSeedDeterminesCommands checks that one seed gives one sequence of
// commands, and another seed another.
func TestSeedDeterminesCommands(t *testing.T) {
	keys := func(seed uint64) []string {
		f := &fakeProposer{}
		b := mustNew(t, Config{Proposers: []Proposer{f}, Clients: 1, Ops: 200, Seed: seed, Conflict: 20, Reads: 50})
		if _, err := b.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return f.keys
	}
	a, b, c := keys(1), keys(1), keys(2)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Error("the same seed gave different commands")
	}
	if strings.Join(a, " ") == strings.Join(c, " ") {
		t.Error("different seeds gave the same commands")
	}
}

// TestWarmupExcluded makes the commands started during the warmup very
// slow and checks that neither they nor their latency are in the result.
func TestWarmupExcluded(t *testing.T) {
	const ops, slow = 20, time.Second
	f := &fakeProposer{}
	b := mustNew(t, Config{Proposers: []Proposer{f}, Clients: 1, Ops: ops, Warmup: 300 * time.Millisecond})
	var warmCalls int
	f.hook = func() time.Duration {
		// The bench stamped the command's start before calling, so a call
		// seen before the end of the warmup started during it.
		if time.Now().Before(b.warmupEnd) {
			warmCalls++
			return time.Until(b.warmupEnd) + slow
		}
		return 0
	}
	res, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if warmCalls == 0 {
		t.Fatal("no command started during the warmup")
	}
	if res.Ops != ops || res.Errors != 0 {
		t.Fatalf("ops=%d errors=%d, want %d and 0", res.Ops, res.Errors, ops)
	}
	if res.WarmupOps+ops != f.calls || res.WarmupOps < int64(warmCalls) {
		t.Fatalf("warmup ops %d, measured %d, calls %d, calls seen during the warmup %d",
			res.WarmupOps, res.Ops, f.calls, warmCalls)
	}
	if res.Latency.Max >= slow {
		t.Fatalf("max latency %v includes a warmup command (which took over %v)", res.Latency.Max, slow)
	}
	if res.Elapsed <= 0 || res.OpsPerSec <= 0 {
		t.Fatalf("elapsed %v, ops/s %v", res.Elapsed, res.OpsPerSec)
	}
}

// TestOpenLoopLatencyFromSchedule offers five times the load one request
// slot can serve: requests queue, and their latency must count the time
// they waited from their scheduled arrival, not just the fixed service time.
func TestOpenLoopLatencyFromSchedule(t *testing.T) {
	const delay = 10 * time.Millisecond
	f := &fakeProposer{delay: delay}
	b := mustNew(t, Config{
		Proposers: []Proposer{f}, Rate: 500, MaxOutstanding: 1, Backlog: 20, Ops: 30, Seed: 1,
	})
	res, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 30 || res.Errors != 0 {
		t.Fatalf("ops=%d errors=%d, want 30 and 0", res.Ops, res.Errors)
	}
	if f.calls != 30 {
		t.Fatalf("%d calls, want 30 (dropped arrivals must not be sent)", f.calls)
	}
	// The k-th request waits for the k before it, 10 ms each, while
	// arriving about 2 ms after the one before: its latency is at least
	// about 8k ms. Measured from the send, every latency would be ~10 ms.
	if res.Latency.P50 < 3*delay {
		t.Fatalf("p50 latency %v: not counted from the scheduled arrival (service time %v)", res.Latency.P50, delay)
	}
	if res.Late == 0 {
		t.Error("no request counted as late")
	}
	if res.Dropped == 0 {
		t.Error("no arrival dropped though the backlog of 20 overflowed")
	}
}

func TestClosedLoopLatency(t *testing.T) {
	const delay = 5 * time.Millisecond
	f := &fakeProposer{delay: delay}
	b := mustNew(t, Config{Proposers: []Proposer{f}, Clients: 2, Ops: 20})
	res, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Latency.P50 < delay || res.Latency.Max < res.Latency.P999 || res.Latency.P999 < res.Latency.P50 {
		t.Fatalf("latency %+v with a service time of %v", res.Latency, delay)
	}
}

func TestErrorsCounted(t *testing.T) {
	f := &fakeProposer{fail: func(n int64) error {
		if n%4 == 0 {
			return errors.New("boom")
		}
		return nil
	}}
	b := mustNew(t, Config{Proposers: []Proposer{f}, Clients: 1, Ops: 100})
	res, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 75 || res.Errors != 25 {
		t.Fatalf("ops=%d errors=%d, want 75 and 25", res.Ops, res.Errors)
	}
	if res.FirstError == nil || res.FirstError.Error() != "boom" {
		t.Fatalf("first error %v", res.FirstError)
	}
	if !strings.HasSuffix(res.SummaryLine(), " errors=25") {
		t.Fatalf("summary %q", res.SummaryLine())
	}
}

// TestDurationMode checks the window of a duration run and that commands
// cut off by its end are neither operations nor errors.
func TestDurationMode(t *testing.T) {
	f := &fakeProposer{delay: time.Millisecond}
	var out, progress bytes.Buffer
	b := mustNew(t, Config{
		Proposers: []Proposer{f}, Clients: 3, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Out: &out, Progress: &progress, Interval: 50 * time.Millisecond,
	})
	res, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Elapsed != 300*time.Millisecond {
		t.Fatalf("elapsed %v, want the duration", res.Elapsed)
	}
	if res.Errors != 0 || res.Ops == 0 {
		t.Fatalf("ops=%d errors=%d", res.Ops, res.Errors)
	}
	if got := res.Ops + res.WarmupOps + res.Unfinished; got != f.calls {
		t.Fatalf("ops %d + warmup %d + unfinished %d = %d, calls %d", res.Ops, res.WarmupOps, res.Unfinished, got, f.calls)
	}

	// Interval statistics: JSON lines, the last one's total is the result's.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("%d interval lines:\n%s", len(lines), out.String())
	}
	var last IntervalStats
	var sawWarmup, sawMeasured bool
	for _, l := range lines {
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, k := range []string{"time", "elapsed_s", "warmup", "ops", "ops_per_s", "errors", "total_ops"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("line %q lacks %q", l, k)
			}
		}
		for _, k := range []string{"fast_path", "slow_path"} {
			if _, ok := raw[k]; ok {
				t.Fatalf("line %q has %q, which the client cannot know", l, k)
			}
		}
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatal(err)
		}
		if last.Warmup {
			sawWarmup = true
		} else {
			sawMeasured = true
		}
		if last.Ops > 0 && (last.P50 == nil || last.Max == nil || *last.Max < *last.P50) {
			t.Fatalf("line %q: bad latency fields", l)
		}
	}
	if !sawWarmup || !sawMeasured {
		t.Fatalf("want warmup and measured intervals:\n%s", out.String())
	}
	if last.TotalOps != res.Ops {
		t.Fatalf("last interval total_ops %d, result ops %d", last.TotalOps, res.Ops)
	}
	progressLine := regexp.MustCompile(`^elapsed=\d+\.\ds ops=\d+ ops/s=\d+\.\d errors=\d+( \(warmup\))?$`)
	for _, l := range strings.Split(strings.TrimSpace(progress.String()), "\n") {
		if !progressLine.MatchString(l) {
			t.Fatalf("progress line %q", l)
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeProposer{}
	f.hook = func() time.Duration {
		f.mu.Lock()
		n := f.calls
		f.mu.Unlock()
		if n >= 50 {
			cancel()
		}
		return 0
	}
	b := mustNew(t, Config{Proposers: []Proposer{f}, Clients: 2, Duration: time.Hour})
	res, err := b.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	if res.Ops == 0 {
		t.Fatal("no operations in the result of a cancelled run")
	}
}

func TestSummaryLine(t *testing.T) {
	r := Result{
		OpsPerSec: 12345.678,
		Latency: Latency{
			P50: 1500 * time.Microsecond, P90: 2 * time.Millisecond, P99: 10250 * time.Microsecond,
			P999: 123456 * time.Microsecond, Max: time.Second,
		},
		Errors: 7,
	}
	const want = "ops/s=12345.7 p50_ms=1.500 p90_ms=2.000 p99_ms=10.250 p999_ms=123.456 errors=7"
	if got := r.SummaryLine(); got != want {
		t.Fatalf("SummaryLine() = %q, want %q", got, want)
	}
	if !summaryLine.MatchString(Result{}.SummaryLine()) {
		t.Fatalf("empty result: %q", Result{}.SummaryLine())
	}
}

var summaryLine = regexp.MustCompile(`^ops/s=\d+\.\d p50_ms=\d+\.\d{3} p90_ms=\d+\.\d{3} p99_ms=\d+\.\d{3} p999_ms=\d+\.\d{3} errors=\d+$`)

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	h.record(-time.Second)     // clamped to 1 µs
	h.record(1000 * time.Hour) // clamped to one hour
	l := h.summary()
	near := func(what string, got, want time.Duration) {
		if d := math.Abs(float64(got - want)); d > 0.002*float64(want) {
			t.Errorf("%s = %v, want %v within 0.2%%", what, got, want)
		}
	}
	near("p50", l.P50, 500*time.Millisecond)
	near("p90", l.P90, 900*time.Millisecond)
	near("p99", l.P99, 990*time.Millisecond)
	near("max", l.Max, time.Hour)
	if h.count() != 1002 {
		t.Fatalf("count %d", h.count())
	}
}
