package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Record is one `epaxosd bench` run, one line of results.jsonl as
// bench/run.sh writes it. The summary fields are nil when the run printed
// no summary.
type Record struct {
	Kind      string   `json:"kind"`     // matrix, sweep, hotkey, smoke or another label
	System    string   `json:"system"`   // epaxosd, raftkv-bolt, raftkv-mem or echo
	Replicas  int      `json:"replicas"` // 1 for echo
	Addrs     int      `json:"addrs"`    // addresses the load generator spread over
	Conflict  float64  `json:"conflict"` // percent of commands on the hot key
	ValueSize int      `json:"value_size"`
	Clients   int      `json:"clients"` // closed loop; 0 in open loop
	Rate      float64  `json:"rate"`    // open loop arrivals per second; 0 in closed loop
	Duration  string   `json:"duration"`
	Warmup    string   `json:"warmup"`
	OpsPerSec *float64 `json:"ops_per_s"`
	P50       *float64 `json:"p50_ms"`
	P90       *float64 `json:"p90_ms"`
	P99       *float64 `json:"p99_ms"`
	P999      *float64 `json:"p999_ms"`
	Errors    *int64   `json:"errors"`
	Exit      int      `json:"exit"`      // the bench's exit status
	Restarted bool     `json:"restarted"` // the system was restarted before this run
	Started   string   `json:"started"`
	Series    string   `json:"series"` // per-second statistics, relative to the results directory
	Log       string   `json:"log"`    // the bench's stderr, relative to the results directory
	BenchArgs string   `json:"bench_args"`
	Command   string   `json:"command"`

	line int // in results.jsonl, from 1
}

// OK reports whether the run finished and measured at least one operation.
func (r *Record) OK() bool {
	return r.Exit == 0 && r.OpsPerSec != nil && *r.OpsPerSec > 0
}

// Label names the run in messages.
func (r *Record) Label() string {
	load := fmt.Sprintf("%d clients", r.Clients)
	if r.Rate > 0 {
		load = fmt.Sprintf("rate %g/s", r.Rate)
	}
	replicas := fmt.Sprintf("%d replicas", r.Replicas)
	if r.System == "echo" {
		replicas = "unreplicated"
	}
	return fmt.Sprintf("%s %s, %s, %g%% conflict, %d B, %s", r.Kind, r.System, replicas, r.Conflict, r.ValueSize, load)
}

// Interval is one line of a run's per-second statistics (`epaxosd bench
// -out`, bench.IntervalStats).
type Interval struct {
	Time      time.Time `json:"time"`
	Elapsed   float64   `json:"elapsed_s"`
	Warmup    bool      `json:"warmup"`
	Ops       int64     `json:"ops"`
	OpsPerSec float64   `json:"ops_per_s"`
	Errors    int64     `json:"errors"`
	P50       *float64  `json:"p50_ms"`
	P90       *float64  `json:"p90_ms"`
	P99       *float64  `json:"p99_ms"`
	P999      *float64  `json:"p999_ms"`
	Max       *float64  `json:"max_ms"`
}

// Run is run.json, which bench/matrix.sh writes: how the results were made.
type Run struct {
	Command       string            `json:"command"`
	ReportCommand string            `json:"report_command"`
	Started       string            `json:"started"`
	Finished      string            `json:"finished"`
	Commit        string            `json:"commit"`
	Dirty         bool              `json:"dirty"`
	Machine       Machine           `json:"machine"`
	Settings      map[string]string `json:"settings"`
	Failures      []string          `json:"failures"`
}

// Machine describes the machine the benchmarks ran on.
type Machine struct {
	Cores    int    `json:"cores"`
	CPUModel string `json:"cpu_model"`
	Memory   string `json:"memory"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
	Go       string `json:"go"`
}

// Results is a results directory.
type Results struct {
	Dir     string
	Records []*Record
	Run     *Run // nil without run.json
}

// Load reads a results directory: results.jsonl and, if present, run.json.
func Load(dir string) (*Results, error) {
	res := &Results{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, "results.jsonl"))
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		r := &Record{line: n}
		if err := json.Unmarshal([]byte(line), r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", filepath.Join(dir, "results.jsonl"), n, err)
		}
		res.Records = append(res.Records, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	b, err = os.ReadFile(filepath.Join(dir, "run.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		res.Run = &Run{}
		if err := json.Unmarshal(b, res.Run); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "run.json"), err)
		}
	}
	return res, nil
}

// readJSONLines decodes a file of one JSON object per line, skipping blank
// lines; errors name the file and line.
func readJSONLines[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// Series reads a run's per-second statistics; measured only drops the
// intervals that began during the warmup.
func (res *Results) Series(r *Record, measured bool) ([]Interval, error) {
	if r.Series == "" {
		return nil, fmt.Errorf("%s: no per-second statistics recorded", r.Label())
	}
	path := r.Series
	if !filepath.IsAbs(path) {
		path = filepath.Join(res.Dir, path)
	}
	all, err := readJSONLines[Interval](path)
	if err != nil {
		return nil, err
	}
	var out []Interval
	for _, iv := range all {
		if !measured || !iv.Warmup {
			out = append(out, iv)
		}
	}
	return out, nil
}

// Select returns the records of kind, the last one for each (system,
// replicas, conflict, value size, clients, rate): a cell run again
// replaces the earlier run.
func (res *Results) Select(kind string) []*Record {
	type key struct {
		system             string
		replicas           int
		conflict           float64
		valueSize, clients int
		rate               float64
	}
	idx := map[key]int{}
	var out []*Record
	for _, r := range res.Records {
		if r.Kind != kind {
			continue
		}
		k := key{r.System, r.Replicas, r.Conflict, r.ValueSize, r.Clients, r.Rate}
		if i, ok := idx[k]; ok {
			out[i] = r
			continue
		}
		idx[k] = len(out)
		out = append(out, r)
	}
	return out
}
