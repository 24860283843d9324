package replica

import (
	"reflect"
	"testing"
)

// commitAt feeds replica r a Commit for id with the given deps, as if sent
// by a peer.
func commitAt(t *testing.T, r *Replica, x InstanceID, nop bool, deps ...InstanceID) {
	t.Helper()
	p := &Payload{Nop: true}
	if !nop {
		p = &Payload{Commands: []Command{write("k")}}
	}
	from := ReplicaID(1)
	if r.id == 1 {
		from = 2
	}
	mustStep(t, r, Message{Type: MsgCommit, From: from, To: r.id, Instance: x, Command: p, Deps: NewDeps(deps...)})
}

func executed(r *Replica) []InstanceID {
	var out []InstanceID
	for _, e := range r.Ready().Execute {
		out = append(out, e.Instance)
	}
	return out
}

// Fig. 1: dependencies execute first; a missing dependency parks its
// dependents (no busy wait) until it commits.
func TestFig1_ChainExecutesDependenciesFirstOnceAllCommitted(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	a, b, c := id(1, 1), id(1, 2), id(2, 1)
	commitAt(t, r, c, false, b)
	commitAt(t, r, b, false, a)
	if got := executed(r); len(got) != 0 {
		t.Fatalf("executed %v before %v committed", got, a)
	}
	if got := r.exec.blocked(); !reflect.DeepEqual(got, []InstanceID{a}) {
		t.Fatalf("blocked on %v, want [%v]", got, a)
	}
	commitAt(t, r, a, false)
	if got, want := executed(r), []InstanceID{a, b, c}; !reflect.DeepEqual(got, want) {
		t.Fatalf("executed %v, want %v", got, want)
	}
}

// Fig. 1: a cycle is one strongly connected component, executed in
// instance-id order, before anything that depends on it.
func TestFig1_CycleExecutesInInstanceIDOrder(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	x, y, z := id(2, 1), id(1, 1), id(1, 2)
	commitAt(t, r, z, false, x, y)
	commitAt(t, r, x, false, y)
	if got := executed(r); len(got) != 0 {
		t.Fatalf("executed %v with %v uncommitted", got, y)
	}
	commitAt(t, r, y, false, x)
	if got, want := executed(r), []InstanceID{y, x, z}; !reflect.DeepEqual(got, want) {
		t.Fatalf("executed %v, want %v (cycle {1.1, 2.1} in id order, then 1.2)", got, want)
	}
}

// A cycle that reaches an uncommitted instance waits for it, then runs
// dependencies first.
func TestFig1_CycleWaitsForItsMissingDependency(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	x, y, w := id(1, 1), id(2, 1), id(2, 2)
	commitAt(t, r, x, false, y)
	commitAt(t, r, y, false, x, w)
	if got := executed(r); len(got) != 0 {
		t.Fatalf("executed %v with %v uncommitted", got, w)
	}
	commitAt(t, r, w, false)
	if got, want := executed(r), []InstanceID{w, x, y}; !reflect.DeepEqual(got, want) {
		t.Fatalf("executed %v, want %v", got, want)
	}
}

// Two interlocked cycles joined by an edge: the component depended on runs
// first, whichever is committed last.
func TestFig1_ComponentsInTopologicalOrder(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	// {2.1, 2.2} depends on {1.1, 1.2}.
	commitAt(t, r, id(2, 1), false, id(2, 2), id(1, 2))
	commitAt(t, r, id(2, 2), false, id(2, 1))
	commitAt(t, r, id(1, 2), false, id(1, 1))
	commitAt(t, r, id(1, 1), false, id(1, 2))
	want := []InstanceID{id(1, 1), id(1, 2), id(2, 1), id(2, 2)}
	if got := executed(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("executed %v, want %v", got, want)
	}
}

// No-ops are committed and unblock their dependents, but never executed.
func TestFig1_NopIsNeverExecuted(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	n, x := id(1, 1), id(1, 2)
	commitAt(t, r, x, false, n)
	commitAt(t, r, n, true)
	if got, want := executed(r), []InstanceID{x}; !reflect.DeepEqual(got, want) {
		t.Fatalf("executed %v, want %v", got, want)
	}
}

// A long chain is executed without recursion depth trouble, and each
// instance once, whether its commits arrive in order or in reverse.
func TestFig1_LongChainExecutesEachInstanceOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       uint64
		reverse bool
	}{{"in order", 20000, false}, {"reverse", 1000, true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplicas(t, 3, false)[0]
			for i := uint64(1); i <= tc.n; i++ {
				s := i
				if tc.reverse {
					s = tc.n + 1 - i
				}
				var deps []InstanceID
				if s > 1 {
					deps = append(deps, id(1, s-1))
				}
				commitAt(t, r, id(1, s), false, deps...)
			}
			got := executed(r)
			if uint64(len(got)) != tc.n {
				t.Fatalf("executed %d instances, want %d", len(got), tc.n)
			}
			for i, x := range got {
				if x != id(1, uint64(i+1)) {
					t.Fatalf("position %d: %v", i, x)
				}
			}
		})
	}
}

// commitWithHorizon feeds r a Commit for x whose deps are the horizon h and
// the listed ids.
func commitWithHorizon(t *testing.T, r *Replica, x InstanceID, h []uint64, deps ...InstanceID) {
	t.Helper()
	from := ReplicaID(1)
	if r.id == 1 {
		from = 2
	}
	mustStep(t, r, Message{Type: MsgCommit, From: from, To: r.id, Instance: x,
		Command: &Payload{Commands: []Command{write("k")}}, Deps: NewDepsWithHorizon(h, deps...)})
}

// Deps, point 3: everything under a horizon executes before the instance
// whose deps hold it, including instances that are committed but blocked
// and instances this replica has never heard of (which it then waits on,
// so that they are fetched or recovered).
func TestExecute_HorizonIsAPrecondition(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	a, b, c, z := id(1, 1), id(1, 2), id(1, 3), id(2, 1)
	commitAt(t, r, a, false, z) // a: committed, blocked on z
	// c's horizon holds column 1 up to slot 2: a, and b which r never saw.
	commitWithHorizon(t, r, c, []uint64{0, 2})
	if got := executed(r); len(got) != 0 {
		t.Fatalf("executed %v before the instances under %v's horizon", got, c)
	}
	commitAt(t, r, z, false)
	if got, want := executed(r), []InstanceID{z, a}; !reflect.DeepEqual(got, want) {
		t.Fatalf("executed %v, want %v (c still waits for %v)", got, want, b)
	}
	if _, ok := r.watched[b]; !ok {
		t.Fatalf("%v, under a horizon and unknown here, is not waited on", b)
	}
	commitAt(t, r, b, true) // b was recovered as a no-op
	if got, want := executed(r), []InstanceID{c}; !reflect.DeepEqual(got, want) {
		t.Fatalf("executed %v, want %v once its horizon executed", got, want)
	}
	if got := r.exec.frontier; !reflect.DeepEqual(got, []uint64{0, 3, 1}) {
		t.Fatalf("executed frontier %v, want [0 3 1]", got)
	}
}

// A coordinator's deps carry its executed frontier as their horizon and
// list only what is above it, so on a hot key they hold the commands in
// flight, not the key's history (Deps).
func TestDeps_CoordinatorListsOnlyWhatIsAboveItsExecutedFrontier(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	for s := uint64(1); s <= 100; s++ {
		commitAt(t, r, id(1, s), false)
	}
	commitAt(t, r, id(2, 1), false, id(2, 2)) // blocked on 2.2, unknown
	executed(r)
	x := mustPropose(t, r, write("k"))
	d := state(r, x).deps
	if want := NewDepsWithHorizon([]uint64{0, 100}, id(2, 1)); !d.Equal(want) {
		t.Fatalf("deps of a new command on the hot key = %v, want %v", d, want)
	}
	for s := uint64(1); s <= 100; s++ {
		if !d.Contains(id(1, s)) {
			t.Fatalf("deps %v miss the executed interfering %v", d, id(1, s))
		}
	}
}

// A replica that was away learns from one horizon how much of a column it
// misses, and asks its peers for all of it at once, in batches, instead of
// discovering one missing dependency per timeout (the chaos test saw a
// restarted replica take minutes to catch up that way).
func TestCatchUp_AHorizonFetchesEveryMissingSlotAtOnce(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	x := id(1, 1)
	commitWithHorizon(t, r, x, []uint64{0, 0, 600})
	r.Ready()
	fetched := map[InstanceID]bool{}
	for range 3 {
		r.Tick()
		for _, m := range r.Ready().Messages {
			if m.Type == MsgFetch && m.To == 1 {
				for _, f := range m.Deps.IDs() {
					fetched[f] = true
				}
			}
		}
	}
	for s := uint64(1); s <= 600; s++ {
		if !fetched[id(2, s)] {
			t.Fatalf("after 3 ticks, %v (under the horizon, unknown here) was not asked for; %d of 600 were", id(2, s), len(fetched))
		}
	}
}
