package storage

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/proto/storagepb"
	"github.com/epaxosd/epaxosd/replica"
)

// damage rewrites the value stored under key, bypassing the store.
func damage(t *testing.T, fs vfs.FS, key []byte, f func(val []byte) []byte) {
	t.Helper()
	db := rawDB(t, fs, testDir)
	defer db.Close()
	val, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("get %s: %v", describeKey(key), err)
	}
	val = f(bytes.Clone(val))
	closer.Close()
	if err := db.Set(key, val, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// sealed returns a value with a valid checksum around body.
func sealed(key, body []byte) []byte {
	val := append(beginValue(nil), body...)
	sealValue(key, val)
	return val
}

func requireCorrupt(t *testing.T, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	for _, m := range append([]string{"storage: " + testDir + ": ", "restore this replica from its peers"}, mentions...) {
		if !strings.Contains(err.Error(), m) {
			t.Fatalf("error %q does not mention %q", err, m)
		}
	}
}

func TestStore_DetectsCorruptRecord(t *testing.T) {
	key17 := appendRecordKey(nil, iid(1, 7))
	unknownPhase, _ := proto.Marshal(&storagepb.InstanceRecord{Phase: 7})
	cases := []struct {
		name   string
		damage func(val []byte) []byte
		want   string
	}{
		{"flipped body byte", func(v []byte) []byte { v[len(v)/2] ^= 0x40; return v }, "checksum mismatch"},
		{"flipped checksum byte", func(v []byte) []byte { v[0] ^= 1; return v }, "checksum mismatch"},
		{"truncated", func(v []byte) []byte { return v[:len(v)-3] }, "checksum mismatch"},
		{"shorter than a checksum", func(v []byte) []byte { return v[:2] }, "shorter than its checksum"},
		{"another record's value", func([]byte) []byte {
			return sealed(appendRecordKey(nil, iid(1, 8)), appendRecord(nil, &everyShape()[1]))
		}, "checksum mismatch"},
		{"undecodable body, valid checksum", func([]byte) []byte { return sealed(key17, []byte{0xff, 0xff, 0xff}) }, "decode"},
		{"invalid record, valid checksum", func([]byte) []byte { return sealed(key17, unknownPhase) }, "unknown phase 7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := mustOpen(t, fs, testDir)
			rec := everyShape()[1]
			rec.ID = iid(1, 7)
			mustSave(t, s, []replica.InstanceRecord{rec, everyShape()[0]}, nil)
			mustClose(t, s)

			damage(t, fs, key17, tc.damage)

			s = mustOpen(t, fs, testDir)
			defer mustClose(t, s)
			st, err := s.Load()
			requireCorrupt(t, err, "record 1.7: ", tc.want)
			if st.Instances != nil || st.Executed != nil {
				t.Fatalf("Load returned data with its error: %v", st)
			}
		})
	}
}

func TestStore_DetectsCorruptExecutedEntry(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	mustSave(t, s, nil, []replica.InstanceID{iid(0, 1), iid(0, 2), iid(0, 3)})
	mustClose(t, s)
	damage(t, fs, appendExecutedKey(nil, 2), func(v []byte) []byte { v[len(v)-1] ^= 1; return v })
	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	_, err := s.Load()
	requireCorrupt(t, err, "executed position 2: checksum mismatch")
}

func TestStore_DetectsExecutedEntryWithoutInstance(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	mustSave(t, s, nil, []replica.InstanceID{iid(0, 1)})
	mustClose(t, s)
	key := appendExecutedKey(nil, 1)
	body, _ := proto.Marshal(&storagepb.Executed{Instance: &epaxospb.InstanceID{Replica: 1}})
	damage(t, fs, key, func([]byte) []byte { return sealed(key, body) })
	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	_, err := s.Load()
	requireCorrupt(t, err, "executed position 1: instance 1.0")
}

func TestStore_DetectsGapInExecutedLog(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	mustSave(t, s, nil, []replica.InstanceID{iid(0, 1), iid(0, 2), iid(0, 3)})
	mustClose(t, s)
	db := rawDB(t, fs, testDir)
	if err := db.Delete(appendExecutedKey(nil, 2), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	_, err := s.Load()
	requireCorrupt(t, err, "executed position 3: follows position 1")
}

func TestStore_DetectsCorruptMeta(t *testing.T) {
	fs := vfs.NewMem()
	mustClose(t, mustOpen(t, fs, testDir))
	damage(t, fs, metaKey, func(v []byte) []byte { v[5] ^= 1; return v })
	_, err := Open(testDir, testID, Options{FS: fs})
	requireCorrupt(t, err, "meta: checksum mismatch")
}

// Damage below the store's checksums, in a pebble sstable, is caught by
// pebble's block checksums and reported as ErrCorrupt too.
func TestStore_DetectsCorruptTable(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	rec := everyShape()[1]
	rec.Command = &replica.Payload{Commands: []replica.Command{{ClientID: 1, Seq: 1, Access: replica.Write,
		Key: "k", Value: bytes.Repeat([]byte("0123456789abcdef"), 64)}}}
	mustSave(t, s, []replica.InstanceRecord{rec}, []replica.InstanceID{rec.ID})
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	flipped := 0
	for _, name := range names {
		if !strings.HasSuffix(name, ".sst") {
			continue
		}
		buf, err := fs.UnsafeGetFileDataBuffer(fs.PathJoin(testDir, name))
		if err != nil {
			t.Fatal(err)
		}
		// The first data block starts at offset 0 and holds the records.
		buf[20] ^= 0x08
		flipped++
	}
	if flipped == 0 {
		t.Fatalf("no sstable in %v", names)
	}

	s, err = Open(testDir, testID, Options{FS: fs})
	if err == nil {
		defer mustClose(t, s)
		_, err = s.Load()
	}
	requireCorrupt(t, err, "pebble", ".sst)")
}

// Damage in the write-ahead log followed by later synced records is
// corruption, not a torn tail: pebble's WAL replay refuses it (its WAL sync
// chunks record how far the log had been synced) and Open reports
// ErrCorrupt. pebble only looks for such later records in later 32 KiB WAL
// blocks, so damage in the last block is replayed as a torn tail (doc.go).
func TestStore_DetectsCorruptWAL(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	value := bytes.Repeat([]byte("v"), 1000)
	for slot := uint64(1); slot <= 200; slot++ {
		rec := replica.InstanceRecord{ID: iid(0, slot), Command: &replica.Payload{Commands: []replica.Command{
			{ClientID: 1, Seq: slot, Access: replica.Write, Key: "k", Value: value}}}}
		mustSave(t, s, []replica.InstanceRecord{rec}, nil)
	}
	mustClose(t, s)

	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	flipped := 0
	for _, name := range names {
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		buf, err := fs.UnsafeGetFileDataBuffer(fs.PathJoin(testDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) > 3*32<<10 {
			buf[10<<10] ^= 0x08 // inside a record in the first block
			flipped++
		}
	}
	if flipped == 0 {
		t.Fatalf("no WAL of over three blocks in %v", names)
	}
	_, err = Open(testDir, testID, Options{FS: fs})
	requireCorrupt(t, err, "open: pebble: error when replaying WAL")
}
