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
