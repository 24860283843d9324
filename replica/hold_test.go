package replica

import (
	"slices"
	"testing"
)

// preAccepts returns the PreAccepts r sends in its next Ready, one per
// instance (the copy to replica 1).
func preAccepts(r *Replica) []Message { return take(r, MsgPreAccept, 1) }

// commitFast fast-commits r's instance m: replica 1 answers r's PreAccept
// with the same deps (the fast quorum of 3 is r and replica 1).
func commitFast(t *testing.T, r *Replica, m Message) {
	t.Helper()
	mustStep(t, r, Message{Type: MsgPreAcceptOK, From: 1, To: r.ID(), Instance: m.Instance, Deps: m.Deps})
	if in := state(r, m.Instance); in.phase != Committed {
		t.Fatalf("%v not committed after a fast quorum: %v", m.Instance, in.phase)
	}
}

func keysOf(p *Payload) []string {
	var ks []string
	for _, c := range p.Commands {
		ks = append(ks, c.Key)
	}
	return ks
}

// The gate: a command that interferes with an uncommitted instance its
// replica coordinates waits; the others are proposed at once.
func TestGate_HoldsACommandOnAKeyOfAnUncommittedOwnInstance(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	if err := r.Enqueue([]Command{write("a"), write("b")}); err != nil {
		t.Fatal(err)
	}
	first := one(t, preAccepts(r))
	if got := keysOf(first.Command); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("first instance carries %v, want [a b]", got)
	}
	if err := r.Enqueue([]Command{write("a"), write("c"), read("b")}); err != nil {
		t.Fatal(err)
	}
	second := one(t, preAccepts(r))
	if got := keysOf(second.Command); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("while a and b are in flight, proposed %v, want only [c]", got)
	}
	if r.Held() != 2 {
		t.Fatalf("held %d commands, want 2 (a and the read of b)", r.Held())
	}
	commitFast(t, r, first)
	third := one(t, preAccepts(r))
	if got := keysOf(third.Command); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after the first instance committed, proposed %v, want the held [a b] in one batch", got)
	}
	if r.Held() != 0 {
		t.Fatalf("still holding %d commands", r.Held())
	}
}

// Commands on one key leave the gate in arrival order, even when an
// earlier one stays held behind another key.
func TestGate_ReleasesCommandsOnAKeyInArrivalOrder(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	mustEnqueue(t, r, write("a"))
	ma := one(t, preAccepts(r))
	mustEnqueue(t, r, write("b"))
	mb := one(t, preAccepts(r))
	// c1 on b waits for mb; c2 on a waits for ma; c3 on b comes after c1.
	c1 := Command{Access: Write, Key: "b", Value: []byte("1")}
	c2 := Command{Access: Write, Key: "a", Value: []byte("2")}
	c3 := Command{Access: Write, Key: "b", Value: []byte("3")}
	mustEnqueue(t, r, c1, c2, c3)
	if ms := preAccepts(r); len(ms) != 0 {
		t.Fatalf("proposed %v while every key is in flight", ms)
	}
	commitFast(t, r, ma) // frees a: c2 goes; c1 and c3 stay behind mb
	got := one(t, preAccepts(r))
	if !got.Command.Equal(&Payload{Commands: []Command{c2}}) {
		t.Fatalf("after a committed, proposed %v, want only c2", got.Command)
	}
	commitFast(t, r, mb)
	got = one(t, preAccepts(r))
	if !got.Command.Equal(&Payload{Commands: []Command{c1, c3}}) {
		t.Fatalf("after b committed, proposed %v, want c1 then c3", got.Command)
	}
}

// Commands of one client session wait for that session's uncommitted
// instance even on another key (same-session commands interfere).
func TestGate_HoldsASessionsCommandBehindItsUncommittedInstance(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	mustEnqueue(t, r, Command{Access: Write, Key: "a", ClientID: 9, Seq: 1})
	m := one(t, preAccepts(r))
	mustEnqueue(t, r, Command{Access: Write, Key: "b", ClientID: 9, Seq: 2})
	if r.Held() != 1 {
		t.Fatalf("held %d, want the session's second command", r.Held())
	}
	commitFast(t, r, m)
	if got := one(t, preAccepts(r)); got.Command.Commands[0].Seq != 2 {
		t.Fatalf("released %v, want seq 2", got.Command)
	}
}

// Released commands are batched, at most MaxBatch per instance.
func TestGate_SplitsReleasedCommandsIntoBatchesOfMaxBatch(t *testing.T) {
	r, err := New(Config{ID: 0, N: 3, TimeoutTicks: 5, MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, r, write("k"))
	m := one(t, preAccepts(r))
	mustEnqueue(t, r, write("k"), write("k"), write("k"))
	commitFast(t, r, m)
	ms := preAccepts(r)
	if len(ms) != 2 || len(ms[0].Command.Commands) != 2 || len(ms[1].Command.Commands) != 1 {
		t.Fatalf("released %d instances %v, want batches of 2 and 1", len(ms), ms)
	}
}

// An instance of its own that recovery decides as a no-op frees the gate
// too, and its commands are proposed again (reproposeIfNop).
func TestGate_ANoOpDecisionFreesTheGate(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	mustEnqueue(t, r, write("k"))
	m := one(t, preAccepts(r))
	mustEnqueue(t, r, write("k"))
	mustStep(t, r, Message{Type: MsgCommit, From: 1, To: 0, Instance: m.Instance, Ballot: 5, Command: NopPayload(), Deps: Deps{}})
	ms := preAccepts(r)
	if len(ms) != 2 {
		t.Fatalf("after a no-op commit, %d PreAccepts, want the re-proposal and the released command", len(ms))
	}
	if r.Held() != 0 {
		t.Fatalf("still holding %d", r.Held())
	}
}

func TestGate_RefusesAnInvalidBatchWhole(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	if err := r.Enqueue(nil); err == nil {
		t.Fatal("empty batch accepted")
	}
	if err := r.Enqueue([]Command{write("a"), {Access: 99, Key: "b"}}); err == nil {
		t.Fatal("invalid access accepted")
	}
	if ms := preAccepts(r); len(ms) != 0 || r.Held() != 0 {
		t.Fatalf("a refused batch left %v sent, %d held", ms, r.Held())
	}
}

func mustEnqueue(t *testing.T, r *Replica, cmds ...Command) {
	t.Helper()
	if err := r.Enqueue(cmds); err != nil {
		t.Fatal(err)
	}
}
