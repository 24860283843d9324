package sim

import (
	"fmt"
	"strings"

	"github.com/epaxosd/epaxosd/replica"
)

// network carries messages between replicas. Each message gets its own
// random delay (so delivery order is arbitrary: reordering comes from the
// delays), may be lost, and may be duplicated (each copy with its own
// delay). A link may be cut, in one direction or both, by a partition; a
// message is dropped if its link is cut when it is sent or when it arrives,
// or if its receiver is down when it arrives. After the heal (faults off)
// nothing is lost or duplicated any more, but delays and reordering stay.
type network struct {
	s   *Sim
	cut [][]bool // cut[from][to]: the link from -> to drops everything

	faults bool // loss and duplication active

	sent, delivered, lost, duplicated, cutDrops, downDrops int
}

func newNetwork(s *Sim, n int) *network {
	cut := make([][]bool, n)
	for i := range cut {
		cut[i] = make([]bool, n)
	}
	return &network{s: s, cut: cut, faults: true}
}

// delay draws one message delay: uniform in [1, maxDelay] units, and with a
// small probability up to longDelayMul times longer (a long tail).
func (nw *network) delay() int64 {
	p := nw.s.p
	d := 1 + nw.s.rng.Int64N(p.maxDelay)
	if nw.s.rng.Float64() < p.longDelay {
		d += nw.s.rng.Int64N(p.maxDelay * p.longDelayMul)
	}
	return d
}

// send puts m on the wire from m.From to m.To.
func (nw *network) send(m replica.Message) {
	s := nw.s
	nw.sent++
	s.fp.msg(1, m)
	if nw.cut[m.From][m.To] {
		nw.cutDrops++
		s.trace(traceEntry{kind: tkDrop, node: int(m.To), msg: m, note: "link cut"})
		return
	}
	copies := 1
	if nw.faults {
		if s.rng.Float64() < s.p.loss {
			nw.lost++
			s.trace(traceEntry{kind: tkDrop, node: int(m.To), msg: m, note: "lost"})
			return
		}
		if s.rng.Float64() < s.p.dup {
			nw.duplicated++
			copies = 2
		}
	}
	for range copies {
		c := m.Clone()
		s.sched.after(nw.delay(), func() { nw.deliver(c) })
	}
}

// deliver hands m to its receiver if the link and the receiver are up.
func (nw *network) deliver(m replica.Message) {
	s := nw.s
	n := s.nodes[m.To]
	switch {
	case nw.cut[m.From][m.To]:
		nw.cutDrops++
		s.trace(traceEntry{kind: tkDrop, node: int(m.To), msg: m, note: "link cut on arrival"})
		return
	case !n.up:
		nw.downDrops++
		s.trace(traceEntry{kind: tkDrop, node: int(m.To), msg: m, note: "receiver down"})
		return
	}
	nw.delivered++
	s.fp.msg(2, m)
	s.trace(traceEntry{kind: tkDeliver, node: int(m.To), msg: m})
	n.step(m)
}

// healLinks reconnects every link.
func (nw *network) healLinks() {
	for i := range nw.cut {
		for j := range nw.cut[i] {
			nw.cut[i][j] = false
		}
	}
}

// partition cuts links in one of three shapes and returns a description:
// one replica isolated, the cluster split into two groups, or a random set
// of links cut in one direction only.
func (nw *network) partition() string {
	s := nw.s
	n := len(nw.cut)
	switch s.rng.IntN(3) {
	case 0:
		x := s.rng.IntN(n)
		for j := 0; j < n; j++ {
			if j != x {
				nw.cut[x][j], nw.cut[j][x] = true, true
			}
		}
		return fmt.Sprintf("isolate r%d", x)
	case 1:
		side := make([]bool, n)
		for i := range side {
			side[i] = s.rng.IntN(2) == 0
		}
		var a, b []string
		for i := range side {
			if side[i] {
				a = append(a, fmt.Sprint(i))
			} else {
				b = append(b, fmt.Sprint(i))
			}
			for j := range side {
				if side[i] != side[j] {
					nw.cut[i][j] = true
				}
			}
		}
		return fmt.Sprintf("split {%s} | {%s}", strings.Join(a, ","), strings.Join(b, ","))
	default:
		var links []string
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if i != j && s.rng.IntN(4) == 0 {
					nw.cut[i][j] = true
					links = append(links, fmt.Sprintf("%d->%d", i, j))
				}
			}
		}
		return "one-way cuts " + strings.Join(links, " ")
	}
}
