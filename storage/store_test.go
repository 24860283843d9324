package storage

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/storagepb"
	"github.com/epaxosd/epaxosd/replica"
)

func TestStore_RoundTripsEveryFieldAcrossReopen(t *testing.T) {
	fs := vfs.NewMem()
	recs := everyShape()
	exec := []replica.InstanceID{iid(0, 2), iid(0, 1), iid(2, 3)}

	s := mustOpen(t, fs, testDir)
	mustSave(t, s, recs[:2], exec[:1])
	mustSave(t, s, recs[2:], exec[1:])
	// Before and after a reopen, Load returns the records in id order and
	// the executed log in the order it was saved.
	want := append([]replica.InstanceRecord(nil), recs...)
	slices.SortFunc(want, func(a, b replica.InstanceRecord) int {
		return cmp.Or(cmp.Compare(a.ID.Replica, b.ID.Replica), cmp.Compare(a.ID.Slot, b.ID.Slot))
	})
	requireRecords(t, mustLoad(t, s).Instances, want)
	mustClose(t, s)

	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	st := mustLoad(t, s)
	requireRecords(t, st.Instances, want)
	if !reflect.DeepEqual(st.Executed, exec) {
		t.Fatalf("executed = %v, want %v", st.Executed, exec)
	}
	// The shapes the protocol tells apart survive exactly: ⊥ is nil, a
	// no-op is a no-op, an empty payload is neither.
	byID := map[replica.InstanceID]replica.InstanceRecord{}
	for _, r := range st.Instances {
		byID[r.ID] = r
	}
	if byID[iid(0, 1)].Command != nil || byID[iid(0, 1)].InitCommand != nil {
		t.Errorf("⊥ payloads came back as %v, %v", byID[iid(0, 1)].Command, byID[iid(0, 1)].InitCommand)
	}
	if c := byID[iid(2, 3)].Command; c == nil || !c.Nop {
		t.Errorf("no-op came back as %v", c)
	}
	if c := byID[iid(1<<32-1, 1)].Command; c == nil || c.Nop || len(c.Commands) != 0 {
		t.Errorf("empty payload came back as %v", c)
	}
}

func TestStore_LoadFeedsReplicaRestore(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	cmd := func(k string) *replica.Payload {
		return &replica.Payload{Commands: []replica.Command{{ClientID: 1, Seq: 1, Access: replica.Write, Key: k}}}
	}
	a := replica.InstanceRecord{ID: iid(0, 1), Command: cmd("a"), InitCommand: cmd("a"), Phase: replica.Committed}
	b := replica.InstanceRecord{ID: iid(1, 1), Command: cmd("a"), InitCommand: cmd("a"),
		Deps: replica.NewDeps(a.ID), InitDeps: replica.NewDeps(a.ID), Phase: replica.Committed, Bal: 1, Abal: 1}
	c := replica.InstanceRecord{ID: iid(2, 1), Command: replica.NopPayload(), Phase: replica.Accepted, Bal: 2, Abal: 2}
	mustSave(t, s, []replica.InstanceRecord{a, b, c}, nil)
	mustSave(t, s, nil, []replica.InstanceID{a.ID})
	mustClose(t, s)

	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	r, err := replica.New(replica.Config{ID: replica.ReplicaID(testID.Replica), N: testID.Replicas})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Restore(mustLoad(t, s)); err != nil {
		t.Fatalf("Restore(Load()): %v", err)
	}
}

func TestStore_RoundTripsRandomRecords(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	r := rand.New(rand.NewPCG(1, 2))
	var want []replica.InstanceRecord
	for slot := uint64(1); slot <= 300; slot++ {
		want = append(want, randRecord(r, iid(0, slot), 40))
	}
	for i := 0; i < len(want); i += 37 {
		mustSave(t, s, want[i:min(i+37, len(want))], nil)
	}
	mustClose(t, s)
	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	requireRecords(t, mustLoad(t, s).Instances, want)
}

func TestStore_LatestRecordPerInstanceWins(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	cmd := &replica.Payload{Commands: []replica.Command{{ClientID: 1, Seq: 1, Access: replica.Write, Key: "x"}}}
	pre := replica.InstanceRecord{ID: iid(0, 1), Command: cmd, InitCommand: cmd,
		Deps: replica.NewDeps(iid(1, 1)), InitDeps: replica.NewDeps(iid(1, 1)), Phase: replica.PreAccepted}
	acc := pre
	acc.Deps, acc.Phase, acc.Bal, acc.Abal = replica.NewDeps(iid(1, 1), iid(2, 1)), replica.Accepted, 4, 4
	com := acc
	com.Phase = replica.Committed
	other := replica.InstanceRecord{ID: iid(0, 2), Phase: replica.Initial, Bal: 7}

	mustSave(t, s, []replica.InstanceRecord{pre, other}, nil)
	mustSave(t, s, []replica.InstanceRecord{acc}, nil)
	// Twice in one batch: the later one wins, as in the Ready it came from.
	mustSave(t, s, []replica.InstanceRecord{pre, com}, nil)
	requireRecords(t, mustLoad(t, s).Instances, []replica.InstanceRecord{com, other})
	mustClose(t, s)

	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	requireRecords(t, mustLoad(t, s).Instances, []replica.InstanceRecord{com, other})
}

func TestStore_ExecutedLogAppendsInOrderAcrossReopen(t *testing.T) {
	fs := vfs.NewMem()
	var want []replica.InstanceID
	for round := range 3 {
		s := mustOpen(t, fs, testDir)
		for i := range 4 {
			batch := []replica.InstanceID{iid(2, uint64(10*round+i+1)), iid(0, uint64(10*round+i+1))}
			mustSave(t, s, nil, batch)
			want = append(want, batch...)
		}
		if got := mustLoad(t, s).Executed; !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: executed = %v, want %v", round, got, want)
		}
		mustClose(t, s)
	}
	// Positions are 1..n with no gaps.
	db := rawDB(t, fs, testDir)
	defer db.Close()
	it, _ := db.NewIter(&pebble.IterOptions{LowerBound: executedLower, UpperBound: executedUpper})
	defer it.Close()
	pos := uint64(0)
	for ok := it.First(); ok; ok = it.Next() {
		p, _ := parseExecutedKey(it.Key())
		if p != pos+1 {
			t.Fatalf("position %d follows %d", p, pos)
		}
		pos = p
	}
	if pos != uint64(len(want)) {
		t.Fatalf("last position %d, want %d", pos, len(want))
	}
}

func TestStore_RefusesDataDirOfAnotherCluster(t *testing.T) {
	testRefuses(t, Identity{Cluster: "9c01ee", Replica: testID.Replica, Replicas: testID.Replicas},
		"storage: data dir data/alpha belongs to replica 1 of cluster 3f2a9c (3 replicas), not replica 1 of cluster 9c01ee (3 replicas)")
}

func TestStore_RefusesDataDirOfAnotherReplica(t *testing.T) {
	testRefuses(t, Identity{Cluster: testID.Cluster, Replica: 0, Replicas: testID.Replicas},
		"storage: data dir data/alpha belongs to replica 1 of cluster 3f2a9c (3 replicas), not replica 0 of cluster 3f2a9c (3 replicas)")
}

func TestStore_RefusesDataDirOfAnotherClusterSize(t *testing.T) {
	testRefuses(t, Identity{Cluster: testID.Cluster, Replica: testID.Replica, Replicas: 5},
		"storage: data dir data/alpha belongs to replica 1 of cluster 3f2a9c (3 replicas), not replica 1 of cluster 3f2a9c (5 replicas)")
}

// testRefuses checks that a directory written by testID is refused to other,
// with message msg, and is left intact for its owner.
func testRefuses(t *testing.T, other Identity, msg string) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	rec := everyShape()[1]
	mustSave(t, s, []replica.InstanceRecord{rec}, nil)
	mustClose(t, s)

	_, err := Open(testDir, other, Options{FS: fs})
	if !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("Open as %v: err = %v, want ErrIdentityMismatch", other, err)
	}
	if err.Error() != msg {
		t.Fatalf("error message:\n got %q\nwant %q", err, msg)
	}
	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	requireRecords(t, mustLoad(t, s).Instances, []replica.InstanceRecord{rec})
}

func TestStore_RefusesUnknownFormatVersion(t *testing.T) {
	fs := vfs.NewMem()
	mustClose(t, mustOpen(t, fs, testDir))

	db := rawDB(t, fs, testDir)
	m := metaToProto(testID)
	m.FormatVersion = FormatVersion + 1
	body, _ := proto.Marshal(m)
	val := append(beginValue(nil), body...)
	sealValue(metaKey, val)
	if err := db.Set(metaKey, val, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err := Open(testDir, testID, Options{FS: fs})
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), testDir) ||
		!strings.Contains(err.Error(), fmt.Sprint("version ", FormatVersion+1)) {
		t.Fatalf("err = %v, want ErrUnknownFormat naming %s and version %d", err, testDir, FormatVersion+1)
	}
}

func TestStore_RefusesStoreWithDataButNoMeta(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	mustSave(t, s, everyShape()[:1], nil)
	mustClose(t, s)
	db := rawDB(t, fs, testDir)
	if err := db.Delete(metaKey, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(testDir, testID, Options{FS: fs})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), testDir) {
		t.Fatalf("err = %v, want ErrCorrupt naming %s", err, testDir)
	}
}

func TestStore_RejectsInvalidIdentity(t *testing.T) {
	for _, id := range []Identity{
		{Cluster: "", Replica: 0, Replicas: 3},
		{Cluster: "c", Replica: 3, Replicas: 3},
		{Cluster: "c", Replica: 0, Replicas: 0},
	} {
		if _, err := Open(testDir, id, Options{FS: vfs.NewMem()}); err == nil {
			t.Errorf("Open with %+v succeeded", id)
		}
	}
}

func TestStore_MetaHoldsIdentityAndFormat(t *testing.T) {
	fs := vfs.NewMem()
	mustClose(t, mustOpen(t, fs, testDir))
	db := rawDB(t, fs, testDir)
	defer db.Close()
	val, closer, err := db.Get(metaKey)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	body, err := openValue(metaKey, val)
	if err != nil {
		t.Fatal(err)
	}
	var m storagepb.Meta
	if err := proto.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetFormatVersion() != FormatVersion || identityFromProto(&m) != testID {
		t.Fatalf("meta = %v", &m)
	}
}

func TestStore_ConcurrentSavesAreAllDurable(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	const writers, saves = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range saves {
				id := iid(replica.ReplicaID(w), uint64(i+1))
				var exec []replica.InstanceID
				if w%2 == 0 {
					exec = []replica.InstanceID{id}
				}
				if err := s.Save([]replica.InstanceRecord{{ID: id, Phase: replica.Committed}}, exec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustClose(t, s)
	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	st := mustLoad(t, s)
	if len(st.Instances) != writers*saves || len(st.Executed) != writers/2*saves {
		t.Fatalf("loaded %d records and %d executed, want %d and %d",
			len(st.Instances), len(st.Executed), writers*saves, writers/2*saves)
	}
	// Each writer's executed ids appear in the order it saved them.
	last := map[replica.ReplicaID]uint64{}
	for _, id := range st.Executed {
		if id.Slot != last[id.Replica]+1 {
			t.Fatalf("executed %v after %d.%d", id, id.Replica, last[id.Replica])
		}
		last[id.Replica] = id.Slot
	}
}

func TestStore_OnRealDisk(t *testing.T) {
	dir := t.TempDir() + "/data/alpha" // Open creates missing directories.
	s, err := Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, everyShape(), []replica.InstanceID{iid(0, 2)})
	mustClose(t, s)
	s, err = Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	if st := mustLoad(t, s); len(st.Instances) != len(everyShape()) || len(st.Executed) != 1 {
		t.Fatalf("loaded %d records, %d executed", len(st.Instances), len(st.Executed))
	}
	// pebble's lock keeps a second store off the same directory.
	if s2, err := Open(dir, testID, Options{}); err == nil {
		s2.Close()
		t.Fatal("second Open of a directory in use succeeded")
	}
}

func TestStore_RejectsSlotZero(t *testing.T) {
	s := mustOpen(t, vfs.NewMem(), testDir)
	defer mustClose(t, s)
	if err := s.Save([]replica.InstanceRecord{{ID: iid(1, 0)}}, nil); err == nil {
		t.Error("Save of record 1.0 succeeded")
	}
	if err := s.Save(nil, []replica.InstanceID{iid(1, 0)}); err == nil {
		t.Error("Save of executed 1.0 succeeded")
	}
	if st := mustLoad(t, s); len(st.Instances)+len(st.Executed) != 0 {
		t.Errorf("a refused Save stored %v", st)
	}
}

func TestStore_ClosedStoreRefusesCalls(t *testing.T) {
	s := mustOpen(t, vfs.NewMem(), testDir)
	mustClose(t, s)
	if err := s.Save(everyShape(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close: %v", err)
	}
	if _, err := s.Load(); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// The slot reservation (replica.Ready.ReserveSlots) survives a reopen, is
// written with the batch it comes in, and never goes down.
func TestWrite_ReservationIsDurableAndNeverGoesDown(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	if err := s.Write(Update{ReservedSlots: 64}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(Update{ReservedSlots: 32, Records: []replica.InstanceRecord{everyShape()[0]}}); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	st := mustLoad(t, s)
	if st.ReservedSlots != 64 || len(st.Instances) != 1 {
		t.Fatalf("after reopen: reserved %d with %d records, want 64 with 1", st.ReservedSlots, len(st.Instances))
	}
	if err := s.Write(Update{ReservedSlots: 96}); err != nil {
		t.Fatal(err)
	}
	if st = mustLoad(t, s); st.ReservedSlots != 96 {
		t.Fatalf("reserved %d, want 96", st.ReservedSlots)
	}
}
