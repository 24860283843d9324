package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/epaxosd/epaxosd/replica"
)

// crashWorkload is a sequence of Saves whose effect after its first m Saves
// is known exactly: Save i writes record 0.i, rewrites record 0.1 with
// ballot i and its command unchanged (so that the command written by Save 1
// alone must survive beside every later record), and appends 0.i to the
// executed log. Values vary in size, up to
// a few 4 KiB blocks, so WAL tails tear in the middle of records.
type crashWorkload struct{ seed uint64 }

func (w crashWorkload) value(i uint64) []byte {
	r := rand.New(rand.NewPCG(w.seed, i))
	return bytes.Repeat([]byte{byte(i)}, r.IntN(10000))
}

func (w crashWorkload) save(i uint64) ([]replica.InstanceRecord, []replica.InstanceID) {
	rec := replica.InstanceRecord{ID: iid(0, i), Phase: replica.Committed, Bal: replica.Ballot(i),
		Command: &replica.Payload{Commands: []replica.Command{
			{ClientID: 1, Seq: i, Access: replica.Write, Key: "k", Value: w.value(i)}}}}
	if i == 1 {
		return []replica.InstanceRecord{rec}, []replica.InstanceID{rec.ID}
	}
	first, _ := w.save(1)
	first[0].Bal, first[0].CommandUnchanged = replica.Ballot(i), true
	return []replica.InstanceRecord{first[0], rec}, []replica.InstanceID{rec.ID}
}

// after returns the exact state after the first m Saves.
func (w crashWorkload) after(m uint64) replica.HardState {
	var st replica.HardState
	for i := uint64(1); i <= m; i++ {
		recs, exec := w.save(i)
		for _, r := range recs {
			if r.ID.Slot <= uint64(len(st.Instances)) {
				st.Instances[r.ID.Slot-1] = r
			} else {
				st.Instances = append(st.Instances, r)
			}
		}
		st.Executed = append(st.Executed, exec...)
	}
	return st
}

// A crash keeps every Save that returned and, of the Saves in flight, a
// prefix: the state after a crash is exactly the state after some m Saves,
// m at least the number that had returned. The crash is pebble's
// vfs.NewCrashableMem: CrashClone keeps what was synced and a random share
// of the 4 KiB blocks and directory entries that were not, so WAL tails are
// torn and holed; reopening must tolerate that.
func TestStore_CrashLosesOnlyUnsyncedWrites(t *testing.T) {
	// Percentages of unsynced data the crash keeps: none (power loss after
	// the last sync), half (torn and holed tails), all (the process died
	// but the OS kept its buffers).
	unsynced := [3]int{0, 50, 100}
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := crashWorkload{seed: seed}
			fs := vfs.NewCrashableMem()
			s := mustOpen(t, fs, testDir)

			var acked atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := uint64(1); ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					recs, exec := w.save(i)
					if err := s.Save(recs, exec); err != nil {
						t.Errorf("Save %d: %v", i, err)
						return
					}
					acked.Store(i)
				}
			})
			r := rand.New(rand.NewPCG(seed, 0))
			// Let the writer get ahead; the crash lands at a random point,
			// usually while a Save is in flight.
			for target := 5 + r.Uint64N(60); acked.Load() < target; {
				runtime.Gosched()
			}
			returned := acked.Load()
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced[seed%3], RNG: r})
			close(stop)
			wg.Wait()
			mustClose(t, s)

			s = mustOpen(t, crashed, testDir)
			st := mustLoad(t, s)
			m := uint64(len(st.Executed))
			if m < returned {
				t.Fatalf("crash lost acknowledged Saves: %d survived, %d had returned", m, returned)
			}
			want := w.after(m)
			requireRecords(t, st.Instances, want.Instances)
			if !reflect.DeepEqual(st.Executed, want.Executed) {
				t.Fatalf("executed after crash = %v, want %v", st.Executed, want.Executed)
			}
			t.Logf("%d Saves had returned; %d survived the crash", returned, m)

			// The recovered store takes new Saves after what survived, and
			// they survive a clean reopen.
			recs, exec := w.save(m + 1)
			mustSave(t, s, recs, exec)
			mustClose(t, s)
			s = mustOpen(t, crashed, testDir)
			defer mustClose(t, s)
			st = mustLoad(t, s)
			want = w.after(m + 1)
			requireRecords(t, st.Instances, want.Instances)
			if !reflect.DeepEqual(st.Executed, want.Executed) {
				t.Fatalf("executed after reopen = %v, want %v", st.Executed, want.Executed)
			}
		})
	}
}

// The crash above is meaningful: the same crash drops a write that pebble
// was not asked to sync, while the Saves before it survive.
func TestStore_CrashDropsWritesThatWereNotSynced(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := mustOpen(t, fs, testDir)
	rec := everyShape()[1]
	mustSave(t, s, []replica.InstanceRecord{rec}, nil)
	unsynced := rec
	unsynced.ID = iid(0, 99)
	if err := s.Write(Update{Records: []replica.InstanceRecord{unsynced}, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	requireRecords(t, mustLoad(t, s).Instances, []replica.InstanceRecord{rec, unsynced})

	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	mustClose(t, s)
	s = mustOpen(t, crashed, testDir)
	defer mustClose(t, s)
	requireRecords(t, mustLoad(t, s).Instances, []replica.InstanceRecord{rec})
}

// A crash right after the first Open keeps the directory's identity.
func TestStore_CrashAfterFirstOpenKeepsIdentity(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := mustOpen(t, fs, testDir)
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	mustClose(t, s)
	other := testID
	other.Cluster = "another"
	if _, err := Open(testDir, other, Options{FS: crashed}); err == nil {
		t.Fatal("a crashed new directory forgot its identity")
	}
	mustClose(t, mustOpen(t, crashed, testDir))
}

// Reopening after a crash tolerates a WAL whose tail, past the last sync,
// was cut short or zeroed (what a crash during a write leaves behind), and
// keeps every Save before it.
func TestStore_CrashReopensPastTornWALTail(t *testing.T) {
	tears := map[string]func(data []byte, synced int) []byte{
		"cut mid-record": func(d []byte, synced int) []byte { return d[:synced+(len(d)-synced)/2] },
		"zeroed tail": func(d []byte, synced int) []byte {
			clear(d[synced+(len(d)-synced)/3:])
			return d
		},
	}
	for name, tear := range tears {
		t.Run(name, func(t *testing.T) {
			w := crashWorkload{seed: 7}
			fs := vfs.NewCrashableMem()
			s := mustOpen(t, fs, testDir)
			const saves = 20
			for i := uint64(1); i <= saves; i++ {
				recs, exec := w.save(i)
				mustSave(t, s, recs, exec)
			}
			wal, synced := liveWAL(t, fs)
			// A large write that is never synced; wait until it reaches the file.
			if err := s.db.Set([]byte("i-unsynced"), bytes.Repeat([]byte("u"), 20000), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			for {
				if fi, err := fs.Stat(wal); err == nil && fi.Size() > synced+10000 {
					break
				}
				runtime.Gosched()
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 1))})
			mustClose(t, s)

			data, err := crashed.UnsafeGetFileDataBuffer(wal)
			if err != nil {
				t.Fatal(err)
			}
			torn := tear(bytes.Clone(data), int(synced))
			f, err := crashed.Create(wal, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(torn); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			f.Close()

			s = mustOpen(t, crashed, testDir)
			defer mustClose(t, s)
			st := mustLoad(t, s)
			want := w.after(saves)
			requireRecords(t, st.Instances, want.Instances)
			if !reflect.DeepEqual(st.Executed, want.Executed) {
				t.Fatalf("executed = %v, want %v", st.Executed, want.Executed)
			}
		})
	}
}

// liveWAL returns the newest WAL of the store in testDir and its size.
func liveWAL(t *testing.T, fs vfs.FS) (string, int64) {
	t.Helper()
	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, n := range names {
		if len(n) > 4 && n[len(n)-4:] == ".log" && n > newest {
			newest = n
		}
	}
	if newest == "" {
		t.Fatalf("no WAL in %v", names)
	}
	path := fs.PathJoin(testDir, newest)
	fi, err := fs.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, fi.Size()
}
