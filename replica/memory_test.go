package replica

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkMemoryPerInFlightInstance measures the heap one in-flight
// instance costs: a coordinator proposes b.N single-command instances (16 B
// values, distinct keys and clients, as at 0% conflicts) that never commit.
// "coordinator" counts its state alone (its Readies dropped, as the daemon
// drops them once persisted and sent); "with-peer" also has one peer
// pre-accept every instance, and reports the two replicas' state together.
// Bytes per instance are the heap in use after a GC, divided by b.N.
//
//	go test ./replica -run '^$' -bench MemoryPerInFlight -benchtime 20000x
func BenchmarkMemoryPerInFlightInstance(b *testing.B) {
	for _, withPeer := range []bool{false, true} {
		name := "coordinator"
		if withPeer {
			name = "with-peer"
		}
		b.Run(name, func(b *testing.B) {
			rs := newReplicas(b, 3, false)
			coord, peer := rs[0], rs[1]
			before := heapInUse()
			b.ResetTimer()
			for i := range b.N {
				cmd := Command{ClientID: uint64(i + 1), Seq: 1, Access: Write, Key: fmt.Sprintf("key-%08d", i), Value: make([]byte, 16)}
				if _, err := coord.Propose([]Command{cmd}); err != nil {
					b.Fatal(err)
				}
				for _, m := range coord.Ready().Messages {
					if withPeer && m.To == peer.ID() {
						if err := peer.Step(m); err != nil {
							b.Fatal(err)
						}
						peer.Ready()
					}
				}
			}
			b.StopTimer()
			after := heapInUse()
			runtime.KeepAlive(coord)
			runtime.KeepAlive(peer)
			b.ReportMetric(float64(int64(after)-int64(before))/float64(b.N), "B/instance")
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
