package replica

import (
	"strings"
	"testing"
)

// sent returns the messages of type typ in rd, early ones included.
func sent(rd Ready, typ MessageType) []Message {
	var out []Message
	for _, m := range append(rd.Early, rd.Messages...) {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// A coordinator's Commit leaves the command out exactly for the replicas
// that answered its PreAccept (they hold the command); a replica it did not
// ask (thrifty) gets the command. Each commits the same (c, D).
func TestCommit_LeavesOutTheCommandOnlyForReplicasThatAnswered(t *testing.T) {
	rs := newReplicas(t, 3, true) // thrifty: the PreAccept goes to one peer
	x := mustPropose(t, rs[0], write("k"))
	pas := sent(rs[0].Ready(), MsgPreAccept)
	if len(pas) != 1 {
		t.Fatalf("thrifty PreAccept to %d peers, want 1", len(pas))
	}
	asked, other := pas[0].To, 3-pas[0].To
	mustStep(t, rs[asked], overTheWire(pas[0]))
	mustStep(t, rs[0], one(t, sent(rs[asked].Ready(), MsgPreAcceptOK)))
	for _, m := range sent(rs[0].Ready(), MsgCommit) {
		switch m.To {
		case asked:
			if !m.CommandElided || m.Command != nil {
				t.Errorf("Commit to %d, which answered: elided=%v cmd=%v; want the command left out", m.To, m.CommandElided, m.Command)
			}
		case other:
			if m.CommandElided || !m.Command.Equal(state(rs[0], x).cmd) {
				t.Errorf("Commit to %d, which was not asked: elided=%v cmd=%v; want the command", m.To, m.CommandElided, m.Command)
			}
		}
		mustStep(t, rs[m.To], overTheWire(m))
		if in := state(rs[m.To], x); in.phase != Committed || !in.cmd.Equal(state(rs[0], x).cmd) {
			t.Errorf("replica %d: phase %v cmd %v after the Commit, want committed %v", m.To, in.phase, in.cmd, state(rs[0], x).cmd)
		}
	}
}

// A Commit that leaves out a command its receiver does not hold is refused
// and changes nothing; so is any other message claiming an elided command.
func TestCommit_WithoutACommandTheReceiverLacksIsRefused(t *testing.T) {
	rs := newReplicas(t, 3, false)
	x := InstanceID{Replica: 0, Slot: 1}
	err := rs[1].Step(Message{Type: MsgCommit, From: 0, To: 1, Instance: x, CommandElided: true})
	if err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Fatalf("elided Commit of an unknown command: %v, want a refusal", err)
	}
	if in := state(rs[1], x); in != nil && in.phase == Committed {
		t.Fatal("a refused Commit committed the instance")
	}
	for _, m := range []Message{
		{Type: MsgAccept, From: 0, To: 1, Instance: x, Command: &Payload{Commands: []Command{write("k")}}, CommandElided: true},
		{Type: MsgCommit, From: 0, To: 1, Instance: x, Command: &Payload{Commands: []Command{write("k")}}, CommandElided: true},
		{Type: MsgCommit, From: 0, To: 1, Instance: x},
	} {
		if err := rs[1].Step(m); err == nil {
			t.Errorf("%v (elided=%v) accepted", m, m.CommandElided)
		}
	}
}
