package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/replica"
)

// An interval's line: the requests answered in it with their latency
// percentiles, the errors, and the coordinator's fast and slow commits as
// differences of the core's running counters; the next interval starts
// from zero.
func TestMetrics_LineReportsTheIntervalAndStartsTheNext(t *testing.T) {
	m := newMetrics()
	now := time.Now()
	for i := 1; i <= 100; i++ {
		m.request(now.Add(-time.Duration(i)*time.Millisecond), false)
	}
	m.request(now, true)
	m.tick(replica.Counters{FastCommits: 7, SlowCommits: 2, Proposed: 9, ExecutedCmds: 40}, 3)
	var prev replica.Counters
	l := m.line(now, now.Add(-5*time.Second), time.Second, &prev)
	if l.Ops != 100 || l.Errors != 1 || l.TotalOps != 100 || l.OpsPerS != 100 {
		t.Fatalf("ops %d errors %d total %d ops/s %v, want 100, 1, 100, 100", l.Ops, l.Errors, l.TotalOps, l.OpsPerS)
	}
	if l.P50 == nil || *l.P50 < 49 || *l.P50 > 52 || *l.Max < 100 || *l.Max > 103 {
		t.Fatalf("p50 %v max %v ms, want about 50 and 100", deref(l.P50), deref(l.Max))
	}
	if l.FastPath != 7 || l.SlowPath != 2 || l.Proposed != 9 || l.Executed != 40 || l.Held != 3 || l.Elapsed != 5 {
		t.Fatalf("line %+v", l)
	}
	m.tick(replica.Counters{FastCommits: 10, SlowCommits: 2, Proposed: 12, ExecutedCmds: 40}, 0)
	l = m.line(now.Add(time.Second), now.Add(-5*time.Second), time.Second, &prev)
	if l.Ops != 0 || l.Errors != 0 || l.TotalOps != 100 || l.P50 != nil || l.FastPath != 3 || l.SlowPath != 0 || l.Proposed != 3 {
		t.Fatalf("second line %+v: want no requests, 3 fast commits, 3 proposed", l)
	}
}

// The execution delay runs from an instance's commit record in a Ready to
// its execution in a later Ready; no-ops and instances committed before
// the replica started are not measured.
func TestMetrics_ExecutionDelayFromCommitToExecution(t *testing.T) {
	m := newMetrics()
	t0 := time.Now()
	x := replica.InstanceID{Replica: 1, Slot: 1}
	nop := replica.InstanceID{Replica: 1, Slot: 2}
	cmd := &replica.Payload{Commands: []replica.Command{{Access: replica.Write, Key: "k"}}}
	m.ready(replica.Ready{Instances: []replica.InstanceRecord{
		{ID: x, Phase: replica.Committed, Command: cmd},
		{ID: nop, Phase: replica.Committed, Command: replica.NopPayload()},
	}}, replica.Counters{}, 0, t0)
	m.ready(replica.Ready{Execute: []replica.Execution{{Instance: x}, {Instance: replica.InstanceID{Replica: 2, Slot: 9}}}},
		replica.Counters{}, 0, t0.Add(250*time.Millisecond))
	var prev replica.Counters
	l := m.line(t0.Add(time.Second), t0, time.Second, &prev)
	if l.ExecMax == nil || *l.ExecMax < 249 || *l.ExecMax > 251 || *l.ExecP50 != *l.ExecMax {
		t.Fatalf("execution delay p50 %v max %v ms, want one sample of 250", deref(l.ExecP50), deref(l.ExecMax))
	}
	if len(m.committedAt) != 0 { // the no-op is not remembered; x is forgotten once executed
		t.Fatalf("remembered commit times %v, want none", m.committedAt)
	}
}

// The metrics file gets a JSON line per second; requests answered on a
// client stream are counted in it.
func TestMetrics_FileGetsALinePerSecondCountingStreamRequests(t *testing.T) {
	h := newStreamHarness(t)
	h.d.metrics = newMetrics()
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.writeMetrics(ctx, path) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	st, err := h.client.ProposeStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := st.Send(write(uint64(i+1), 1, fmt.Sprint("k", i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	h.release <- n
	for range n {
		if _, err := st.Recv(); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}
	var total int64
	waitUntil(t, "a metrics line counting the requests", func() bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l MetricsLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			total = l.TotalOps
		}
		return total == n
	})
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
