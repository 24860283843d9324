package storage

import (
	"fmt"
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

// Directories of format versions 1 (initial commands always stored in
// full) and 2 (each record holds its command) are read by this version,
// which then writes version-3 records beside theirs and marks the
// directory version 3 on open, so that an older binary refuses it.
func TestStore_ReadsAndUpgradesOlderFormatVersions(t *testing.T) {
	for _, version := range []uint32{1, 2} {
		t.Run(fmt.Sprint("version ", version), func(t *testing.T) {
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
			meta.FormatVersion = version
			put(metaKey, meta)
			old := recordToProto(&rec)
			old.CommandStoredApart, old.Command = false, commandToProto(&rec) // versions 1 and 2
			if version == 1 {
				old.InitCommandIsCommand, old.InitCommand = false, old.Command // both in full
			}
			put(appendRecordKey(nil, rec.ID), old)
			db.Close()

			s := mustOpen(t, fs, testDir)
			st := mustLoad(t, s)
			if len(st.Instances) != 1 || !st.Instances[0].Command.Equal(rec.Command) || !st.Instances[0].InitCommand.Equal(rec.Command) {
				t.Fatalf("loaded %+v from a version-%d directory", st.Instances, version)
			}
			newer := everyShape()[1]
			mustSave(t, s, []replica.InstanceRecord{newer}, nil)
			if st := mustLoad(t, s); len(st.Instances) != 2 || !st.Instances[0].Command.Equal(rec.Command) || !st.Instances[1].Command.Equal(newer.Command) {
				t.Fatalf("loaded %+v after a version-3 write beside a version-%d record", st.Instances, version)
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
		})
	}
}

// A record that says its initial command equals its command and also
// stores one, or says so without a command, is corrupt.
func TestRecord_ContradictoryInitialCommandIsCorrupt(t *testing.T) {
	rec := everyShape()[0]
	both := recordToProto(&rec)
	both.InitCommandIsCommand, both.InitCommand = true, commandToProto(&rec)
	if _, err := recordFromProto(rec.ID, both, rec.Command); err == nil {
		t.Fatal("record with init_command and init_command_is_command accepted")
	}
	none := recordToProto(&rec)
	none.CommandStoredApart, none.InitCommand, none.InitCommandIsCommand = false, nil, true
	if _, err := recordFromProto(rec.ID, none, nil); err == nil {
		t.Fatal("record with init_command_is_command and no command accepted")
	}
}

// A record whose command is unchanged since the instance's last record is
// written without it: the stored command is the one written before. (The
// flag is a promise the core keeps; here it is broken on purpose, with a
// different command, to show that the store does not write it.)
func TestRecord_AnUnchangedCommandIsNotWrittenAgain(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testDir)
	defer mustClose(t, s)
	rec := everyShape()[1]
	first := rec.Command
	mustSave(t, s, []replica.InstanceRecord{rec}, nil)
	rec.Phase, rec.Bal, rec.Abal = replica.Committed, rec.Bal+1, rec.Bal+1
	rec.Command, rec.CommandUnchanged = &replica.Payload{Nop: true}, true
	mustSave(t, s, []replica.InstanceRecord{rec}, nil)
	st := mustLoad(t, s)
	if got := st.Instances[0]; !got.Command.Equal(first) || got.Phase != replica.Committed {
		t.Fatalf("loaded %v %v, want the first command %v with the new phase", got.Command, got.Phase, first)
	}
	// Without the flag the command is written.
	rec.CommandUnchanged = false
	mustSave(t, s, []replica.InstanceRecord{rec}, nil)
	if got := mustLoad(t, s).Instances[0]; !got.Command.Nop {
		t.Fatalf("loaded %v, want the no-op written last", got.Command)
	}
}
