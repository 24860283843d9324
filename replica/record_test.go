package replica

import "testing"

// readyRecord returns the one record of id in rd.
func readyRecord(t *testing.T, rd Ready, id InstanceID) InstanceRecord {
	t.Helper()
	var out []InstanceRecord
	for _, rec := range rd.Instances {
		if rec.ID == id {
			out = append(out, rec)
		}
	}
	if len(out) != 1 {
		t.Fatalf("Ready holds %d records of %v, want 1", len(out), id)
	}
	return out[0]
}

// overTheWire returns m as a peer receives it: its command a copy, equal but
// not the sender's.
func overTheWire(m Message) Message {
	m.Command = m.Command.Clone()
	return m
}

// InstanceRecord.CommandUnchanged: a record says its command is unchanged
// exactly when the instance's previous record, handed out by this Replica,
// had the same command; a command that arrives again in a later message
// (a Commit after the PreAccept) counts as unchanged; the first record after
// a restart never does, since the store may hold that command in an older
// form.
func TestReady_CommandUnchangedOnlyAfterARecordOfTheSameCommand(t *testing.T) {
	rs := newReplicas(t, 3, false)
	x := mustPropose(t, rs[0], write("k"))
	rd := rs[0].Ready()
	if readyRecord(t, rd, x).CommandUnchanged {
		t.Fatal("the coordinator's first record says its command is unchanged")
	}
	var pa Message
	for _, m := range append(rd.Early, rd.Messages...) {
		if m.Type == MsgPreAccept && m.To == 1 {
			pa = m
		}
	}
	mustStep(t, rs[1], overTheWire(pa))
	rd1 := rs[1].Ready()
	preAccepted := readyRecord(t, rd1, x)
	if preAccepted.CommandUnchanged {
		t.Fatal("a peer's first record says its command is unchanged")
	}
	mustStep(t, rs[0], one(t, rd1.Messages))
	rd = rs[0].Ready()
	if rec := readyRecord(t, rd, x); rec.Phase != Committed || !rec.CommandUnchanged {
		t.Fatalf("coordinator's commit record: phase %v, unchanged %v; want committed, unchanged", rec.Phase, rec.CommandUnchanged)
	}
	var commit Message
	for _, m := range rd.Messages {
		if m.Type == MsgCommit && m.To == 1 {
			commit = m
		}
	}
	mustStep(t, rs[1], overTheWire(commit))
	if rec := readyRecord(t, rs[1].Ready(), x); rec.Phase != Committed || !rec.CommandUnchanged {
		t.Fatalf("peer's commit record: phase %v, unchanged %v; want committed, unchanged (the Commit brought the same command)", rec.Phase, rec.CommandUnchanged)
	}

	restarted, err := New(Config{ID: 1, N: 3, TimeoutTicks: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Restore(HardState{Instances: []InstanceRecord{preAccepted}}); err != nil {
		t.Fatal(err)
	}
	mustStep(t, restarted, overTheWire(commit))
	if rec := readyRecord(t, restarted.Ready(), x); rec.Phase != Committed || rec.CommandUnchanged {
		t.Fatalf("first record after a restart: phase %v, unchanged %v; want committed, not unchanged", rec.Phase, rec.CommandUnchanged)
	}
}
