package storage

import (
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/epaxosd/epaxosd/replica"
)

// Load while Save goes on sees every Save whole: an executed id never
// without its committed record. (The applier loads the log on a live
// replica to rebuild or catch up its plugin; the chaos test found replicas
// dying with "executed instance has no committed record" when Load read
// records and the executed log without one snapshot.)
func TestLoad_SeesEachSaveWholeWhileSavesGoOn(t *testing.T) {
	s := mustOpen(t, vfs.Default, t.TempDir()) // synced saves, as in production
	const maxSaves = 5000
	defer mustClose(t, s)
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		for slot := uint64(1); slot <= maxSaves && !stop.Load(); slot++ {
			id := replica.InstanceID{Replica: 1, Slot: slot}
			rec := replica.InstanceRecord{ID: id, Phase: replica.Committed,
				Command: &replica.Payload{Commands: []replica.Command{{ClientID: 1, Seq: slot, Access: replica.Write, Key: "k", Value: []byte("v")}}}}
			if err := s.Save([]replica.InstanceRecord{rec}, []replica.InstanceID{id}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	defer func() {
		stop.Store(true)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for loads := 0; loads < 200; loads++ {
		st := mustLoad(t, s)
		committed := make(map[replica.InstanceID]bool, len(st.Instances))
		for _, r := range st.Instances {
			if r.Phase == replica.Committed {
				committed[r.ID] = true
			}
		}
		for _, id := range st.Executed {
			if !committed[id] {
				t.Fatalf("load %d: executed %v has no committed record (%d records, %d executed)", loads, id, len(st.Instances), len(st.Executed))
			}
		}
	}
}
