package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/storagepb"
	"github.com/epaxosd/epaxosd/replica"
)

// A record whose initial command equals its command (a pre-accepted record
// and, usually, its commit) stores the payload once: it is little more than
// half the size of the same record with two different payloads, and it
// loads back with both fields set.
func TestRecord_InitialCommandEqualToTheCommandIsStoredOnce(t *testing.T) {
	cmds := make([]replica.Command, 24)
	for i := range cmds {
		cmds[i] = replica.Command{ClientID: uint64(i + 1), Seq: 9, Access: replica.Write, Key: "bench/c1/k1", Value: make([]byte, 16)}
	}
	p := &replica.Payload{Commands: cmds}
	same := replica.InstanceRecord{ID: iid(0, 1), Command: p, InitCommand: p.Clone(), Phase: replica.Committed}
	other := same
	other.InitCommand = &replica.Payload{Commands: append(append([]replica.Command(nil), cmds[1:]...), cmds[0])}
	if a, b := len(appendRecord(nil, &same)), len(appendRecord(nil, &other)); float64(a) > 0.55*float64(b) {
		t.Fatalf("record with initCmd = cmd takes %d bytes, with another initCmd %d: the payload is not stored once", a, b)
	}
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	mustSave(t, s, []replica.InstanceRecord{same, {ID: iid(0, 2), Command: p, InitCommand: nil, Phase: replica.Accepted, Abal: 3, Bal: 3}}, nil)
	st := mustLoad(t, s)
	if !st.Instances[0].InitCommand.Equal(p) || !st.Instances[0].Command.Equal(p) {
		t.Fatalf("loaded %v / %v, want both %v", st.Instances[0].Command, st.Instances[0].InitCommand, p)
	}
	if st.Instances[1].InitCommand != nil {
		t.Fatalf("an absent initial command loaded as %v", st.Instances[1].InitCommand)
	}
}

// A version-1 directory (initial commands always stored in full) is read
// by this version, and marked version 2 on open so that a version-1 binary
// refuses it from then on.
func TestStore_ReadsAndUpgradesAFormatVersion1Directory(t *testing.T) {
	fs := vfs.NewMem()
	mustClose(t, mustOpen(t, fs, testDir))
	rec := everyShape()[0]
	db := rawDB(t, fs, testDir)
	put := func(key []byte, m proto.Message) {
		body, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		val := append(beginValue(nil), body...)
		sealValue(key, val)
		if err := db.Set(key, val, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	meta := metaToProto(testID)
	meta.FormatVersion = 1
	put(metaKey, meta)
	v1 := recordToProto(&rec)
	v1.InitCommandIsCommand, v1.InitCommand = false, v1.Command // version 1: both in full
	put(appendRecordKey(nil, rec.ID), v1)
	db.Close()

	s := mustOpen(t, fs, testDir)
	st := mustLoad(t, s)
	if len(st.Instances) != 1 || !st.Instances[0].InitCommand.Equal(rec.Command) {
		t.Fatalf("loaded %+v from a version-1 directory", st.Instances)
	}
	mustClose(t, s)
	db = rawDB(t, fs, testDir)
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
	if err := proto.Unmarshal(body, &m); err != nil || m.GetFormatVersion() != FormatVersion {
		t.Fatalf("meta after open: version %d (%v), want %d", m.GetFormatVersion(), err, FormatVersion)
	}
}

// A record that says its initial command equals its command and also
// stores one, or says so without a command, is corrupt.
func TestRecord_ContradictoryInitialCommandIsCorrupt(t *testing.T) {
	rec := everyShape()[0]
	both := recordToProto(&rec)
	both.InitCommandIsCommand, both.InitCommand = true, both.Command
	if _, err := recordFromProto(rec.ID, both); err == nil {
		t.Fatal("record with init_command and init_command_is_command accepted")
	}
	none := recordToProto(&rec)
	none.Command, none.InitCommand, none.InitCommandIsCommand = nil, nil, true
	if _, err := recordFromProto(rec.ID, none); err == nil {
		t.Fatal("record with init_command_is_command and no command accepted")
	}
}
