package storage

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/epaxosd/epaxosd/replica"
)

// benchRecords returns n records shaped like a Ready's: a one-command
// payload with a 16-byte key and value, and three deps.
func benchRecords(n int) []replica.InstanceRecord {
	recs := make([]replica.InstanceRecord, n)
	for i := range recs {
		cmd := &replica.Payload{Commands: []replica.Command{{ClientID: 42, Seq: uint64(i), Access: replica.Write,
			Key: "key-0123456789ab", Value: []byte("value-0123456789")}}}
		deps := replica.NewDeps(iid(0, 1000), iid(1, 2000), iid(2, 3000))
		recs[i] = replica.InstanceRecord{Command: cmd, InitCommand: cmd, Deps: deps, InitDeps: deps,
			Phase: replica.PreAccepted}
	}
	return recs
}

// BenchmarkSave measures Save on the real disk (one synced batch per call)
// with 1, 16 and 128 records per Save, reporting records/s.
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			s, err := Open(b.TempDir(), testID, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			recs := benchRecords(n)
			slot := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				for i := range recs {
					slot++
					recs[i].ID = iid(1, slot)
				}
				if err := s.Save(recs, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkSaveParallel runs Saves of 16 records from 32 goroutines (16
// per GOMAXPROCS on 2 cores): pebble's commit pipeline lets one WAL sync
// cover the batches queued behind it.
func BenchmarkSaveParallel(b *testing.B) {
	const n = 16
	s, err := Open(b.TempDir(), testID, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next atomic.Uint64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		recs := benchRecords(n)
		for pb.Next() {
			base := next.Add(n) - n
			for i := range recs {
				recs[i].ID = iid(2, base+uint64(i)+1)
			}
			if err := s.Save(recs, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
}
