package replica

import (
	"slices"
	"testing"
)

func id(r ReplicaID, s uint64) InstanceID { return InstanceID{Replica: r, Slot: s} }

func TestDeps_NewDepsSortsAndDeduplicates(t *testing.T) {
	d := NewDeps(id(2, 1), id(0, 5), id(0, 2), id(2, 1))
	want := []InstanceID{id(0, 2), id(0, 5), id(2, 1)}
	if !slices.Equal(d.IDs(), want) || d.HorizonColumns() != 0 {
		t.Fatalf("got %v, want %v", d, want)
	}
}

// A horizon holds every slot up to it in its column, and nothing above;
// listing an id under it changes nothing, and trailing zero columns are
// not part of the value, so equal sets are Equal.
func TestDeps_HorizonHoldsEverySlotUpToIt(t *testing.T) {
	d := NewDepsWithHorizon([]uint64{3, 0, 1, 0, 0}, id(0, 2), id(0, 7), id(1, 1))
	for _, x := range []InstanceID{id(0, 1), id(0, 3), id(0, 7), id(1, 1), id(2, 1)} {
		if !d.Contains(x) {
			t.Errorf("%v does not contain %v", d, x)
		}
	}
	for _, x := range []InstanceID{id(0, 4), id(1, 2), id(2, 2), id(3, 1), id(9, 1)} {
		if d.Contains(x) {
			t.Errorf("%v contains %v", d, x)
		}
	}
	if want := []InstanceID{id(0, 7), id(1, 1)}; !slices.Equal(d.IDs(), want) {
		t.Errorf("listed %v, want %v (the id under the horizon dropped)", d.IDs(), want)
	}
	same := NewDepsWithHorizon([]uint64{3, 0, 1}, id(1, 1), id(0, 7), id(0, 1))
	if !d.Equal(same) || d.HorizonColumns() != 3 {
		t.Errorf("%v and %v are the same set but not Equal", d, same)
	}
	if d.Equal(NewDepsWithHorizon([]uint64{3, 0, 2}, id(0, 7), id(1, 1))) {
		t.Errorf("sets with different horizons are Equal")
	}
}

// Acceptors merge their conflicts into the coordinator's deps: union, never
// overwrite (the seed implementation overwrote).
func TestDeps_UnionKeepsBothSidesNeverOverwrites(t *testing.T) {
	h := []uint64{2, 1}
	a := NewDepsWithHorizon(h, id(0, 4), id(1, 3))
	b := NewDepsWithHorizon(h, id(1, 3), id(2, 7), id(0, 9))
	u := a.Union(b)
	want := NewDepsWithHorizon(h, id(0, 4), id(0, 9), id(1, 3), id(2, 7))
	if !u.Equal(want) {
		t.Fatalf("union = %v, want %v", u, want)
	}
	for _, x := range append(append([]InstanceID{id(0, 1), id(0, 2), id(1, 1)}, a.IDs()...), b.IDs()...) {
		if !u.Contains(x) {
			t.Errorf("union lost %v", x)
		}
	}
	if !a.Equal(NewDepsWithHorizon(h, id(0, 4), id(1, 3))) || b.Len() != 3 {
		t.Errorf("union modified its inputs: %v %v", a, b)
	}
	if u.Contains(id(2, 1)) || u.Contains(id(0, 3)) {
		t.Errorf("union of sets with one horizon invented members: %v", u)
	}
}

// Sets with different horizons (never united by the protocol) unite into a
// superset: the higher horizon per column, nothing of either side lost.
func TestDeps_UnionOfDifferentHorizonsIsASuperset(t *testing.T) {
	a := NewDepsWithHorizon([]uint64{5}, id(1, 2))
	b := NewDepsWithHorizon([]uint64{1, 4}, id(0, 3), id(0, 8))
	u := a.Union(b)
	for _, d := range []Deps{a, b} {
		for q := range 2 {
			for s := uint64(1); s <= d.Horizon(ReplicaID(q)); s++ {
				if !u.Contains(id(ReplicaID(q), s)) {
					t.Errorf("union %v lost %v of %v", u, id(ReplicaID(q), s), d)
				}
			}
		}
		for _, x := range d.IDs() {
			if !u.Contains(x) {
				t.Errorf("union %v lost %v", u, x)
			}
		}
	}
	if want := NewDepsWithHorizon([]uint64{5, 4}, id(0, 8)); !u.Equal(want) {
		t.Errorf("union = %v, want %v", u, want)
	}
}

func TestCommand_ReadsCommuteWritesInterfere(t *testing.T) {
	r := Command{Access: Read, Key: "k"}
	w := Command{Access: Write, Key: "k"}
	d := Command{Access: Delete, Key: "k"}
	other := Command{Access: Write, Key: "j"}
	cases := []struct {
		a, b Command
		want bool
	}{
		{r, r, false}, {r, w, true}, {w, r, true}, {w, w, true}, {d, r, true}, {w, other, false},
	}
	for _, tc := range cases {
		if got := tc.a.Interferes(tc.b); got != tc.want {
			t.Errorf("%v ⋈ %v = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// A client session's commands interfere whatever their keys, so every
// replica executes them in session order and the replicated session table
// (which skips a seq not newer than the last applied) stays identical.
func TestCommand_SameSessionInterferesAcrossKeys(t *testing.T) {
	a := Command{ClientID: 7, Seq: 1, Access: Write, Key: "x"}
	b := Command{ClientID: 7, Seq: 2, Access: Read, Key: "y"}
	other := Command{ClientID: 8, Seq: 1, Access: Read, Key: "y"}
	if !a.Interferes(b) || !b.Interferes(a) {
		t.Error("commands of one session on different keys do not interfere")
	}
	if b.Interferes(other) {
		t.Error("reads of different sessions interfere")
	}
	if (Command{Access: Read, Key: "z"}).Interferes(Command{Access: Read, Key: "w"}) {
		t.Error("client id 0 is treated as a session")
	}
	rs := newReplicas(t, 3, false)
	x := mustPropose(t, rs[0], a)
	rs[0].Ready()
	mustStep(t, rs[0], Message{Type: MsgCommit, From: 1, To: 0, Instance: x, Command: &Payload{Commands: []Command{a}}})
	y := mustPropose(t, rs[0], b)
	if deps := state(rs[0], y).deps; !deps.Contains(x) {
		t.Fatalf("seq 2 of the session has deps %v, missing seq 1's instance %v", deps, x)
	}
}
