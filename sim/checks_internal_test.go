package sim

import (
	"strings"
	"testing"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
)

// The checks must be able to fail: each test runs a clean simulation, then
// tampers with one thing it recorded and expects the matching check to
// report it. (TestSim_CatchesSendBeforePersist, in sim_test.go, breaks the
// harness instead of the record.)

// cleanRun runs cfg to the end, checks included, and returns the Sim.
func cleanRun(t *testing.T, cfg Config, seed uint64) *Sim {
	t.Helper()
	s := newSim(cfg, seed, Options{})
	s.start()
	s.loop()
	s.checks.final()
	s.checkLinearizable()
	if s.failure != nil {
		t.Fatalf("seed %d: the clean run failed: %v", seed, s.failure)
	}
	return s
}

func expectFailure(t *testing.T, s *Sim, invariant string) {
	t.Helper()
	if s.failure == nil {
		t.Fatalf("tampering was not caught (want invariant %q)", invariant)
	}
	if s.failure.Invariant != invariant {
		t.Fatalf("caught as %q, want %q: %v", s.failure.Invariant, invariant, s.failure)
	}
	t.Logf("caught: %s: %.200s", s.failure.Invariant, s.failure.Detail)
}

var tamperConfig = Config{N: 3, Mix: MixLossy, HotKeyRate: 0.5, Sessions: SessionPerRequest}

// A read that returns a value it could not have seen.
func TestSim_ChecksCatchWrongRead(t *testing.T) {
	s := cleanRun(t, tamperConfig, 1)
	for _, o := range s.ops {
		if o.status == opOK && o.cmd.Access == replica.Read {
			o.output = "never-written"
			s.checkLinearizable()
			expectFailure(t, s, "4. linearizability")
			if !strings.Contains(s.failure.Detail, "never-written") {
				t.Fatalf("the report does not name the bad read: %s", s.failure.Detail)
			}
			return
		}
	}
	t.Fatal("no completed read to tamper with")
}

// A read answered before a write that completed earlier (stale read): the
// write's completion is moved before the read's call.
func TestSim_ChecksCatchStaleRead(t *testing.T) {
	s := cleanRun(t, Config{N: 3, Mix: MixLossy, Clients: 4, HotKeyRate: 1, Sessions: SessionPerRequest}, 2)
	// Find a completed read and a completed write of the same key that the
	// read does not see (ordered after it), then pretend the write finished
	// before the read began.
	pos := map[cmdKey]int{}
	for i, k := range s.nodes[0].applied {
		pos[k] = i
	}
	for _, r := range s.ops {
		if r.status != opOK || r.cmd.Access != replica.Read {
			continue
		}
		for _, w := range s.ops {
			if w.status == opOK && w.cmd.Access == replica.Write && w.cmd.Key == r.cmd.Key &&
				pos[w.key()] > pos[r.key()] && w.call < r.call {
				w.ret = r.call - 1
				s.checkLinearizable()
				expectFailure(t, s, "4. linearizability")
				return
			}
		}
	}
	t.Fatal("no read/write pair to tamper with")
}

// Two committed interfering instances, neither in the other's deps.
func TestSim_ChecksCatchMissingDependency(t *testing.T) {
	s := cleanRun(t, Config{N: 3, Mix: MixLossy, HotKeyRate: 1, Sessions: SessionPerRequest}, 3)
	for _, id := range sortedIDs(s.checks.chosen) {
		v := s.checks.chosen[id]
		if v.cmd.Nop || v.deps.IsEmpty() {
			continue
		}
		// Drop the whole dep set, and every dep set that holds id (listed
		// or under its horizon): then id and any interfering partner hold
		// neither the other.
		for w, wv := range s.checks.chosen {
			if w != id && wv.deps.Contains(id) {
				wv.deps = replica.Deps{}
				s.checks.chosen[w] = wv
			}
		}
		v.deps = replica.Deps{}
		s.checks.chosen[id] = v
		s.checks.interference()
		expectFailure(t, s, "2. interference")
		return
	}
	t.Fatal("no instance with deps")
}

// A replica's state machine that lost a write.
func TestSim_ChecksCatchDivergedStateMachine(t *testing.T) {
	s := cleanRun(t, tamperConfig, 4)
	n := s.nodes[1]
	for _, k := range n.applied {
		if cmd := s.issued[k]; cmd.Access == replica.Write {
			n.sm.Apply([]plugin.Command{{Access: plugin.Write, Key: []byte(cmd.Key), Value: []byte("corrupt")}})
			s.checks.stateMachines()
			expectFailure(t, s, "3. execution consistency")
			return
		}
	}
	t.Fatal("no write applied")
}

// Two replicas that executed one key's writes in different orders.
func TestSim_ChecksCatchReorderedExecution(t *testing.T) {
	s := cleanRun(t, Config{N: 3, Mix: MixLossy, HotKeyRate: 1, Sessions: SessionPerRequest}, 5)
	log := s.nodes[2].disk.executed
	for i := 0; i+1 < len(log); i++ {
		a, b := s.checks.chosen[log[i]].cmd, s.checks.chosen[log[i+1]].cmd
		if a.Commands[0].Access != replica.Read && b.Commands[0].Access != replica.Read {
			log[i], log[i+1] = log[i+1], log[i]
			s.checks.executionOrder()
			expectFailure(t, s, "3. execution consistency")
			return
		}
	}
	t.Fatal("no two adjacent writes")
}
