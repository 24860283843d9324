package storage

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/replica"
)

const testDir = "data/alpha"

var testID = Identity{Cluster: "3f2a9c", Replica: 1, Replicas: 3}

func mustOpen(t testing.TB, fs vfs.FS, dir string) *Store {
	t.Helper()
	s, err := Open(dir, testID, Options{FS: fs})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func mustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustSave(t testing.TB, s *Store, recs []replica.InstanceRecord, exec []replica.InstanceID) {
	t.Helper()
	if err := s.Save(recs, exec); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func mustLoad(t testing.TB, s *Store) replica.HardState {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return st
}

func iid(r replica.ReplicaID, slot uint64) replica.InstanceID {
	return replica.InstanceID{Replica: r, Slot: slot}
}

// everyShape returns records that between them use every field of
// InstanceRecord and every shape of payload and deps.
func everyShape() []replica.InstanceRecord {
	cmds := &replica.Payload{Commands: []replica.Command{
		{ClientID: 7, Seq: 1, Access: replica.Write, Key: "k1", Value: []byte("v1")},
		{ClientID: 1 << 63, Seq: 1<<64 - 1, Access: replica.Read, Key: "k2"},
		{ClientID: 9, Seq: 3, Access: replica.Delete, Key: "", Value: []byte{0, 0xff}},
	}}
	return []replica.InstanceRecord{
		// ⊥ everywhere, zero phase and ballots.
		{ID: iid(0, 1)},
		// Commands, deps, every ballot field.
		{ID: iid(0, 2), Command: cmds, InitCommand: cmds,
			Deps: replica.NewDeps(iid(0, 1), iid(2, 9), iid(1, 1<<40)), InitDeps: replica.NewDepsWithHorizon([]uint64{4, 0, 1 << 50}, iid(1, 1)),
			Phase: replica.Committed, Bal: 5, Abal: 4},
		// A no-op decided by recovery over a known initial command.
		{ID: iid(2, 3), Command: replica.NopPayload(), InitCommand: cmds,
			Deps: replica.Deps{}, InitDeps: replica.NewDeps(iid(0, 2)), Phase: replica.Accepted, Bal: 1<<64 - 1, Abal: 1<<64 - 1},
		// ⊥ command with a known initial no-op; preaccepted.
		{ID: iid(1, 1<<64-1), InitCommand: replica.NopPayload(), Deps: replica.NewDepsWithHorizon([]uint64{0, 9}),
			Phase: replica.PreAccepted, Bal: 3},
		// A payload with no commands (not ⊥, not a no-op).
		{ID: iid(1<<32-1, 1), Command: &replica.Payload{}, Phase: replica.Initial},
	}
}

// randRecord returns a random record of instance id, values up to maxValue bytes.
func randRecord(r *rand.Rand, id replica.InstanceID, maxValue int) replica.InstanceRecord {
	payload := func() *replica.Payload {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return replica.NopPayload()
		}
		p := &replica.Payload{}
		for range r.IntN(4) {
			c := replica.Command{ClientID: r.Uint64() >> r.IntN(64), Seq: r.Uint64() >> r.IntN(64),
				Access: replica.Access(1 + r.IntN(3)), Key: fmt.Sprintf("key-%d", r.IntN(1000))}
			if n := r.IntN(maxValue + 1); n > 0 {
				c.Value = make([]byte, n)
				for i := range c.Value {
					c.Value[i] = byte(r.Uint32())
				}
			}
			p.Commands = append(p.Commands, c)
		}
		return p
	}
	deps := func() replica.Deps {
		var ids []replica.InstanceID
		for range r.IntN(6) {
			ids = append(ids, iid(replica.ReplicaID(r.IntN(5)), 1+r.Uint64N(1<<r.IntN(63))))
		}
		var horizon []uint64
		for range r.IntN(6) {
			horizon = append(horizon, r.Uint64N(1<<r.IntN(63)))
		}
		return replica.NewDepsWithHorizon(horizon, ids...)
	}
	return replica.InstanceRecord{
		ID: id, Command: payload(), InitCommand: payload(), Deps: deps(), InitDeps: deps(),
		Phase: replica.Phase(r.IntN(4)), Bal: replica.Ballot(r.Uint64() >> r.IntN(64)),
		Abal: replica.Ballot(r.Uint64() >> r.IntN(64)),
	}
}

// normalize maps what the store does not distinguish to one form: an empty
// command value to nil, and CommandUnchanged (a hint to the writer, never
// loaded) to false. (Deps values are canonical already.)
func normalize(recs []replica.InstanceRecord) []replica.InstanceRecord {
	out := make([]replica.InstanceRecord, len(recs))
	for i, rec := range recs {
		rec.Command, rec.InitCommand = normPayload(rec.Command), normPayload(rec.InitCommand)
		rec.CommandUnchanged = false
		out[i] = rec
	}
	return out
}

func normPayload(p *replica.Payload) *replica.Payload {
	if p == nil {
		return nil
	}
	q := &replica.Payload{Nop: p.Nop}
	for _, c := range p.Commands {
		if len(c.Value) == 0 {
			c.Value = nil
		}
		q.Commands = append(q.Commands, c)
	}
	return q
}

func requireRecords(t testing.TB, got, want []replica.InstanceRecord) {
	t.Helper()
	got, want = normalize(got), normalize(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records differ:\n got %s\nwant %s", dump(got), dump(want))
	}
}

func dump(recs []replica.InstanceRecord) string {
	s := ""
	for _, r := range recs {
		s += fmt.Sprintf("\n  %v cmd=%v init=%v deps=%v initDeps=%v %v bal=%d abal=%d",
			r.ID, r.Command, r.InitCommand, r.Deps, r.InitDeps, r.Phase, r.Bal, r.Abal)
	}
	return s
}

// rawDB opens the store's pebble database directly, bypassing Store, for
// tests that damage what is stored.
func rawDB(t testing.TB, fs vfs.FS, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, FormatMajorVersion: formatMajorVersion,
		Logger: pebbleLogger{log: hclog.NewNullLogger()}})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	return db
}
