package replica

import "testing"

// The quorum sizes of epaxos-star.md §2: slow N−F = F+1, fast F+⌊(F+1)/2⌋.
func TestQuorums_SizesForThreeFiveSeven(t *testing.T) {
	for _, tc := range []struct{ n, f, e, slow, fast int }{
		{3, 1, 1, 2, 2},
		{5, 2, 2, 3, 3},
		{7, 3, 2, 4, 5}, // not a majority: efficient/epaxos issue #10
	} {
		q, err := NewQuorums(tc.n)
		if err != nil {
			t.Fatalf("n=%d: %v", tc.n, err)
		}
		want := Quorums{N: tc.n, F: tc.f, E: tc.e, Slow: tc.slow, Fast: tc.fast}
		if q != want {
			t.Errorf("n=%d: got %+v, want %+v", tc.n, q, want)
		}
		if q.N < 2*q.E+q.F-1 || q.N < 2*q.F+1 {
			t.Errorf("n=%d: %+v violates n ≥ max{2e+f−1, 2f+1}", tc.n, q)
		}
	}
}

func TestQuorums_RejectEvenAndTooSmallClusters(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 2, 4, 6} {
		if _, err := NewQuorums(n); err == nil {
			t.Errorf("n=%d: accepted", n)
		}
	}
}
