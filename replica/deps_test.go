package replica

import "testing"

func id(r ReplicaID, s uint64) InstanceID { return InstanceID{Replica: r, Slot: s} }

func TestDeps_NewDepsSortsAndDeduplicates(t *testing.T) {
	d := NewDeps(id(2, 1), id(0, 5), id(0, 2), id(2, 1))
	want := Deps{id(0, 2), id(0, 5), id(2, 1)}
	if !d.Equal(want) {
		t.Fatalf("got %v, want %v", d, want)
	}
}

// Acceptors merge their conflicts into the coordinator's deps: union, never
// overwrite (the seed implementation overwrote).
func TestDeps_UnionKeepsBothSidesNeverOverwrites(t *testing.T) {
	a := NewDeps(id(0, 1), id(1, 3))
	b := NewDeps(id(1, 3), id(2, 7), id(0, 9))
	u := a.Union(b)
	want := NewDeps(id(0, 1), id(0, 9), id(1, 3), id(2, 7))
	if !u.Equal(want) {
		t.Fatalf("union = %v, want %v", u, want)
	}
	for _, x := range append(append(Deps{}, a...), b...) {
		if !u.Contains(x) {
			t.Errorf("union lost %v", x)
		}
	}
	if !a.Equal(NewDeps(id(0, 1), id(1, 3))) || len(b) != 3 {
		t.Errorf("union modified its inputs: %v %v", a, b)
	}
	if u.Contains(id(2, 1)) {
		t.Errorf("union invented %v", id(2, 1))
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
