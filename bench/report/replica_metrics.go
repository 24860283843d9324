package main

import (
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ReplicaInterval is the part of an epaxosd replica's metrics line
// (daemon.MetricsLine, the config attribute metrics) the report uses.
type ReplicaInterval struct {
	Time     time.Time `json:"time"`
	FastPath uint64    `json:"fast_path"`
	SlowPath uint64    `json:"slow_path"`
	ExecP99  *float64  `json:"exec_p99_ms"`
	ExecMax  *float64  `json:"exec_max_ms"`
}

// ReplicaMetrics reads the metrics lines the replicas wrote during run r
// (bench/run.sh keeps them as series/<cell>.<replica>.metrics.jsonl beside
// the run's series), per replica name. A run without them (raft, echo, or
// older results) gives none.
func (res *Results) ReplicaMetrics(r *Record) (map[string][]ReplicaInterval, error) {
	if r.Series == "" {
		return nil, nil
	}
	base := strings.TrimSuffix(r.Series, ".jsonl")
	if !filepath.IsAbs(base) {
		base = filepath.Join(res.Dir, base)
	}
	paths, err := filepath.Glob(base + ".*.metrics.jsonl")
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	out := make(map[string][]ReplicaInterval)
	for _, path := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), filepath.Base(base)+"."), ".metrics.jsonl")
		ivs, err := readJSONLines[ReplicaInterval](path)
		if err != nil {
			return nil, err
		}
		out[name] = ivs
	}
	return out, nil
}

// execDelays returns, per second (in the order of the first replica's
// lines), the largest exec_p99_ms over the replicas, and the run's fast and
// slow commits summed over the replicas.
func execDelays(m map[string][]ReplicaInterval) (p99 []float64, fast, slow uint64) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for i, iv := range m[name] {
			fast += iv.FastPath
			slow += iv.SlowPath
			if iv.ExecP99 == nil {
				continue
			}
			for len(p99) <= i {
				p99 = append(p99, 0)
			}
			p99[i] = max(p99[i], *iv.ExecP99)
		}
	}
	return p99, fast, slow
}
