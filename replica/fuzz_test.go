package replica

import (
	"encoding/binary"
	"testing"
)

// fuzzReader turns fuzz input into protocol values; exhausted input reads
// as zeros.
type fuzzReader struct{ b []byte }

func (f *fuzzReader) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	v := f.b[0]
	f.b = f.b[1:]
	return v
}

func (f *fuzzReader) u64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = f.byte()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

// small returns a value in [0, n), mostly, and occasionally a huge one.
func (f *fuzzReader) small(n int) uint64 {
	b := f.byte()
	if b == 0xff {
		return f.u64()
	}
	return uint64(int(b) % n)
}

// count returns a length in [0, n).
func (f *fuzzReader) count(n int) int { return int(f.byte()) % n }

func (f *fuzzReader) id() InstanceID {
	return InstanceID{Replica: ReplicaID(f.small(4)), Slot: f.small(6)}
}

func (f *fuzzReader) deps() Deps {
	n := f.count(5)
	ids := make([]InstanceID, n)
	for i := range ids {
		ids[i] = f.id()
	}
	var horizon []uint64
	if f.byte()%4 == 0 {
		// Possibly more columns than replicas (must be rejected), slots
		// far beyond anything proposed (must not stall or crash).
		horizon = make([]uint64, f.count(6))
		for i := range horizon {
			horizon[i] = f.small(8)
		}
	}
	return NewDepsWithHorizon(horizon, ids...)
}

func (f *fuzzReader) payload() *Payload {
	switch f.byte() % 4 {
	case 0:
		return nil
	case 1:
		return NopPayload()
	}
	n := f.count(3)
	p := &Payload{Nop: f.byte()%16 == 0}
	for i := 0; i < n; i++ {
		p.Commands = append(p.Commands, Command{
			ClientID: f.small(3), Seq: f.small(4), Access: Access(f.small(5)),
			Key: string(rune('a' + f.small(3))),
		})
	}
	return p
}

func (f *fuzzReader) message(to ReplicaID) Message {
	m := Message{
		Type: MessageType(f.small(14)), From: ReplicaID(f.small(4)), To: to,
		Instance: f.id(), Ballot: Ballot(f.small(12)), Command: f.payload(), Deps: f.deps(),
		Abal: Ballot(f.small(12)), Phase: Phase(f.small(5)), InitCommand: f.payload(), InitDeps: f.deps(),
		Count: uint32(f.small(6)),
	}
	if f.byte()%4 == 0 {
		m.To = ReplicaID(f.small(4))
	}
	for i := f.count(3); i > 0; i-- {
		m.Invalidators = append(m.Invalidators, Invalidator{Instance: f.id(), Phase: Phase(f.small(5))})
	}
	return m
}

// FuzzStep feeds a replica arbitrary messages from arbitrary (also unknown)
// senders, interleaved with proposals and ticks: whatever peers send, the
// core must not panic, must keep abal ≤ bal, must never change a committed
// instance, must execute each instance at most once, and must keep its
// executed frontier (the horizon of the deps it proposes) exact.
func FuzzStep(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1, 1, 1, 2, 0, 2, 1, 'k'})
	f.Add([]byte{5, 1, 1, 1, 3, 2, 0, 0, 2, 2, 0, 1, 0, 0, 0})
	f.Add([]byte{6, 2, 0, 1, 7, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 7, 1, 1, 2, 3})
	f.Add([]byte{8, 1, 1, 2, 6, 3, 1, 2, 2, 9, 2, 1, 1, 4, 4, 4, 4, 10, 2, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := New(Config{ID: 0, N: 3, TimeoutTicks: 2, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		fr := &fuzzReader{b: data}
		committed := make(map[InstanceID]InstanceRecord)
		executed := make(map[InstanceID]bool)
		frontier := make([]uint64, 3)
		for steps := 0; len(fr.b) > 0 && steps < 200; steps++ {
			switch fr.byte() % 8 {
			case 0:
				r.Tick()
			case 1:
				p := fr.payload()
				if p != nil && !p.Nop {
					_, _ = r.Propose(p.Commands)
				}
			default:
				_ = r.Step(fr.message(0))
			}
			rd := r.Ready()
			for _, rec := range rd.Instances {
				if prev, ok := committed[rec.ID]; ok &&
					(!prev.Command.Equal(rec.Command) || !prev.Deps.Equal(rec.Deps) || rec.Phase != Committed) {
					t.Fatalf("committed %v changed from %v %v to %v %v %v", rec.ID, prev.Command, prev.Deps, rec.Phase, rec.Command, rec.Deps)
				}
				if rec.Phase == Committed {
					committed[rec.ID] = rec
				}
			}
			for _, e := range rd.Execute {
				if executed[e.Instance] {
					t.Fatalf("%v executed twice", e.Instance)
				}
				executed[e.Instance] = true
			}
			for _, in := range r.instances {
				if in.abal > in.bal {
					t.Fatalf("%v: abal %d > bal %d", in.id, in.abal, in.bal)
				}
			}
			// The executed frontier (the horizon of new deps) only grows,
			// and everything under it is executed.
			for q, h := range r.exec.frontier {
				if h < frontier[q] {
					t.Fatalf("executed frontier of column %d went back from %d to %d", q, frontier[q], h)
				}
				frontier[q] = h
				for s := uint64(1); s <= h && s <= 64; s++ {
					if in := r.instances[InstanceID{Replica: ReplicaID(q), Slot: s}]; in == nil || !in.executed {
						t.Fatalf("%d.%d is under the executed frontier %d but not executed", q, s, h)
					}
				}
			}
		}
	})
}
