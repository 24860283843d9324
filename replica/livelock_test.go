package replica_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// Execution livelock (epaxos-notes.md, Execution; efficient/epaxos #14,
// #19): under sustained conflicts on one key a strongly connected
// component can keep growing, so that committed commands wait for ever
// longer before they execute. With every command on one hot key and
// proposals arriving throughout the run, the time from an instance's commit
// at a replica to its execution there must stay bounded: the longest wait
// in the last third of the run is no more than the longest in the first
// third plus a constant, and no wait approaches the length of the run.
//
// KNOWN TO FAIL today (issue 5): with 1500 proposals on one key the first
// instances commit early and execute only when the workload ends (waits of
// ~16,000 of ~17,000 steps), the livelock the test exists to catch. It runs
// only with EPAXOS_LIVELOCK_TEST=1 until execution is bounded.
func TestCluster_HotKeyExecutionDelayStaysBounded(t *testing.T) {
	if os.Getenv("EPAXOS_LIVELOCK_TEST") == "" {
		t.Skip("known execution livelock under a saturating hot key (issue 5); EPAXOS_LIVELOCK_TEST=1 runs it")
	}
	cfg := clusterConfig{N: 3, Workload: hotKeyWorkload, Proposals: 1500, TimeoutTicks: 4}
	for _, seed := range seeds(t, 3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			c := newCluster(t, cfg, seed)
			c.run()
			c.check()
			for i, rec := range c.rec {
				d := rec.execDelays
				third := len(d) / 3
				early, late := slices.Max(d[:third]), slices.Max(d[2*third:])
				if late > early+500 || slices.Max(d) > c.stats.steps/4 {
					t.Errorf("replica %d: commit-to-execution delay grew: at most %d steps in the first third, %d in the last (run of %d steps, %d executions)",
						i, early, late, c.stats.steps, len(d))
				}
				t.Logf("replica %d: commit-to-execution delay at most %d steps early, %d late; run %d steps", i, early, late, c.stats.steps)
			}
		})
	}
}
