package replica

import "fmt"

// Quorums holds the sizes that EPaxos* needs for a cluster of N replicas
// (epaxos-star.md §2): N = 2F+1, a slow/recovery quorum of N−F, and a fast
// quorum of N−E = F + ⌊(F+1)/2⌋, the coordinator counted in both. The paper
// requires N ≥ max{2E+F−1, 2F+1}, which holds for every odd N ≥ 3 with this E.
type Quorums struct {
	N    int // replicas
	F    int // crash failures tolerated
	E    int // failures tolerated on the fast path
	Slow int // N − F
	Fast int // N − E
}

// NewQuorums returns the quorum sizes for n replicas; n must be odd and ≥ 3.
func NewQuorums(n int) (Quorums, error) {
	if n < 3 || n%2 == 0 {
		return Quorums{}, fmt.Errorf("cluster of %d replicas: need an odd number, at least 3", n)
	}
	f := (n - 1) / 2
	fast := f + (f+1)/2
	q := Quorums{N: n, F: f, E: n - fast, Slow: n - f, Fast: fast}
	if n < 2*q.E+q.F-1 || n < 2*q.F+1 {
		return Quorums{}, fmt.Errorf("cluster of %d replicas violates n ≥ max{2e+f−1, 2f+1}", n)
	}
	return q, nil
}
