package replica

import "testing"

// Counters: a fast commit and a slow one, as their coordinator counts them.
func TestCounters_CountFastAndSlowCommitsOfTheCoordinator(t *testing.T) {
	rs := newReplicas(t, 3, false)
	r := rs[0]
	fast := mustPropose(t, r, write("a"))
	m := take(r, MsgPreAccept, 1)[0]
	mustStep(t, r, Message{Type: MsgPreAcceptOK, From: 1, To: 0, Instance: fast, Deps: m.Deps})
	slow := mustPropose(t, r, write("b"))
	take(r, MsgPreAccept, -1)
	other := InstanceID{Replica: 2, Slot: 9}
	mustStep(t, r, Message{Type: MsgPreAcceptOK, From: 1, To: 0, Instance: slow, Deps: NewDeps(other)})
	mustStep(t, r, Message{Type: MsgPreAcceptOK, From: 2, To: 0, Instance: slow, Deps: NewDeps(other)})
	mustStep(t, r, Message{Type: MsgAcceptOK, From: 1, To: 0, Instance: slow, Ballot: 0})
	c := r.Counters()
	if c.Proposed != 2 || c.FastCommits != 1 || c.SlowCommits != 1 || c.Recovered != 0 {
		t.Fatalf("counters %+v, want 2 proposed, 1 fast, 1 slow", c)
	}
	if state(r, slow).phase != Committed {
		t.Fatalf("slow instance %v", state(r, slow).phase)
	}
}
