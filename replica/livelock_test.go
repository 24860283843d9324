package replica_test

import (
	"fmt"
	"slices"
	"testing"
)

// Execution livelock (epaxos-notes.md, Execution; efficient/epaxos #14,
// #19): under sustained conflicts on one key a strongly connected
// component can keep growing, so that committed commands wait for ever
// longer before they execute. With every command on one of three hot keys
// and proposals arriving throughout the run, the time from an instance's
// commit at a replica to its execution there must stay bounded: the
// longest wait in the last third of the run is no more than the longest in
// the first third plus a constant, and no wait approaches the length of
// the run. Proposals go through Enqueue, as in the daemon; the gate
// (hold.go) is what bounds the chains.
func TestCluster_HotKeyExecutionDelayStaysBounded(t *testing.T) {
	cfg := clusterConfig{N: 3, Workload: hotKeyWorkload, Proposals: 1500, TimeoutTicks: 4, Gate: true}
	for _, seed := range seeds(t, 3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			for i, d := range hotKeyExecDelays(t, cfg, seed) {
				if d.late > d.early+500 || d.max > d.steps/4 {
					t.Errorf("replica %d: commit-to-execution delay grew: at most %d steps in the first third, %d in the last, %d overall (run of %d steps)",
						i, d.early, d.late, d.max, d.steps)
				}
				t.Logf("replica %d: commit-to-execution delay at most %d steps early, %d late; run %d steps", i, d.early, d.late, d.steps)
			}
		})
	}
}

// The same load proposed with Propose, which pipelines instances on a key
// without waiting, livelocks: the early instances execute only when the
// load stops. This is the failure the gate exists to prevent, and shows
// that the test above can fail.
func TestCluster_HotKeyExecutionLivelocksWithoutTheGate(t *testing.T) {
	cfg := clusterConfig{N: 3, Workload: hotKeyWorkload, Proposals: 1500, TimeoutTicks: 4}
	livelocked := 0
	for i, d := range hotKeyExecDelays(t, cfg, 1) {
		t.Logf("replica %d without the gate: commit-to-execution delay at most %d steps (run of %d steps)", i, d.max, d.steps)
		if d.max > d.steps/4 {
			livelocked++
		}
	}
	if livelocked == 0 {
		t.Fatal("no replica livelocked without the gate: the bounded-delay test above no longer exercises the gate")
	}
}

type execDelays struct{ early, late, max, steps int }

// hotKeyExecDelays runs cfg and returns, per replica, the longest
// commit-to-execution delays of the first and last thirds of its
// executions and overall.
func hotKeyExecDelays(t *testing.T, cfg clusterConfig, seed uint64) []execDelays {
	c := newCluster(t, cfg, seed)
	c.run()
	c.check()
	out := make([]execDelays, len(c.rec))
	for i, rec := range c.rec {
		d := rec.execDelays
		third := len(d) / 3
		out[i] = execDelays{early: slices.Max(d[:third]), late: slices.Max(d[2*third:]), max: slices.Max(d), steps: c.stats.steps}
	}
	return out
}
