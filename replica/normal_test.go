package replica

import (
	"fmt"
	"testing"
)

// Fig. 3 line 22: a fast quorum (N−E, coordinator counted) of replies equal
// to the coordinator's initial deps commits at ballot 0 without Accept.
func TestFig3_Line22_FastPathCommitsOnMatchingFastQuorum(t *testing.T) {
	rs := newReplicas(t, 5, false)
	x := mustPropose(t, rs[0], write("k"))
	pas := take(rs[0], MsgPreAccept, -1)
	if len(pas) != 4 {
		t.Fatalf("PreAccept sent to %d peers, want 4", len(pas))
	}
	// Two peers reply; with the coordinator that is 3 = N−E for N=5.
	for _, m := range pas[:2] {
		mustStep(t, rs[m.To], m)
		mustStep(t, rs[0], one(t, take(rs[m.To], MsgPreAcceptOK, 0)))
	}
	in := state(rs[0], x)
	if in.phase != Committed || in.abal != 0 || !in.deps.IsEmpty() {
		t.Fatalf("after a matching fast quorum: phase=%v abal=%d deps=%v, want committed at 0 with no deps", in.phase, in.abal, in.deps)
	}
	rd := rs[0].Ready()
	commits := 0
	for _, m := range rd.Messages {
		if m.Type == MsgAccept {
			t.Fatalf("fast path sent %v", m)
		}
		if m.Type == MsgCommit {
			commits++
		}
	}
	if commits != 4 {
		t.Errorf("Commit sent to %d peers, want all 4", commits)
	}
	if len(rd.Execute) != 1 || rd.Execute[0].Instance != x {
		t.Errorf("Execute = %v, want %v", rd.Execute, x)
	}
}

// Fig. 3 line 24: when a reply differs from initDep and no fast quorum can
// form any more, the coordinator goes to Accept with the union of the deps.
func TestFig3_Line24_SlowPathWithUnionWhenFastQuorumImpossible(t *testing.T) {
	rs := newReplicas(t, 5, false)
	// Replicas 1, 2 and 3 each hold a conflicting instance of their own.
	var theirs []InstanceID
	for _, r := range rs[1:4] {
		theirs = append(theirs, mustPropose(t, r, write("k")))
		r.Ready() // their PreAccepts are lost
	}
	x := mustPropose(t, rs[0], write("k"))
	for _, m := range take(rs[0], MsgPreAccept, -1) {
		if m.To > 3 {
			continue
		}
		mustStep(t, rs[m.To], m)
		mustStep(t, rs[0], one(t, take(rs[m.To], MsgPreAcceptOK, 0)))
	}
	// Three of four peers differ: at most 2 of 5 can match, fewer than 3.
	accepts := take(rs[0], MsgAccept, -1)
	if len(accepts) != 4 {
		t.Fatalf("Accept sent to %d peers, want 4", len(accepts))
	}
	want := NewDeps(theirs...)
	for _, a := range accepts {
		if !a.Deps.Equal(want) || a.Ballot != 0 || !a.Command.Equal(state(rs[0], x).cmd) {
			t.Fatalf("Accept %v, want deps %v at ballot 0 carrying the command", a, want)
		}
	}
	// N−F = 3 AcceptOKs, the coordinator's own included, commit.
	for _, a := range accepts[:2] {
		mustStep(t, rs[a.To], a)
		mustStep(t, rs[0], one(t, take(rs[a.To], MsgAcceptOK, 0)))
	}
	in := state(rs[0], x)
	if in.phase != Committed || !in.deps.Equal(want) {
		t.Fatalf("phase=%v deps=%v, want committed with %v", in.phase, in.deps, want)
	}
}

// While a fast quorum can still form the coordinator waits for it; after
// the timeout it settles for the slow path with the N−F replies it has.
func TestFig3_SlowPathAfterTimeoutWithSlowQuorumOfReplies(t *testing.T) {
	rs := newReplicas(t, 3, false)
	theirs := mustPropose(t, rs[1], write("k"))
	rs[1].Ready()
	x := mustPropose(t, rs[0], write("k"))
	pa := one(t, take(rs[0], MsgPreAccept, 1))
	mustStep(t, rs[1], pa)
	mustStep(t, rs[0], one(t, take(rs[1], MsgPreAcceptOK, 0)))
	if got := state(rs[0], x).phase; got != PreAccepted {
		t.Fatalf("decided before replica 2 could answer or time ran out: %v", got)
	}
	for i := 0; i < 5; i++ {
		rs[0].Tick()
	}
	a := one(t, take(rs[0], MsgAccept, 1))
	if !a.Deps.Equal(NewDeps(theirs)) {
		t.Fatalf("Accept deps %v, want %v", a.Deps, NewDeps(theirs))
	}
}

// A fast-path vote must equal the coordinator's initial deps, not merely
// agree with the other replies.
func TestFig3_Line22_FastPathNeedsRepliesEqualToInitDepsNotEachOther(t *testing.T) {
	rs := newReplicas(t, 5, false)
	// Replicas 1 and 2 both know instance y; the coordinator does not.
	y := mustPropose(t, rs[3], write("k"))
	for _, m := range take(rs[3], MsgPreAccept, -1) {
		if m.To == 1 || m.To == 2 {
			mustStep(t, rs[m.To], m)
			rs[m.To].Ready()
		}
	}
	x := mustPropose(t, rs[0], write("k"))
	for _, m := range take(rs[0], MsgPreAccept, -1) {
		if m.To == 1 || m.To == 2 {
			mustStep(t, rs[m.To], m)
			mustStep(t, rs[0], one(t, take(rs[m.To], MsgPreAcceptOK, 0)))
		}
	}
	if state(rs[0], x).phase == Committed {
		t.Fatalf("fast-committed although two identical replies %v differ from initDeps %v", NewDeps(y), state(rs[0], x).initDeps)
	}
}

// Thrifty: PreAccept goes to the fast quorum only, and to everyone else
// once the timeout passes without enough replies.
func TestThrifty_PreAcceptToFastQuorumThenFallbackToAll(t *testing.T) {
	rs := newReplicas(t, 7, true)
	mustPropose(t, rs[0], write("k"))
	first := take(rs[0], MsgPreAccept, -1)
	if len(first) != rs[0].q.Fast-1 {
		t.Fatalf("thrifty PreAccept to %d peers, want %d", len(first), rs[0].q.Fast-1)
	}
	for i := 0; i < 5; i++ {
		rs[0].Tick()
	}
	second := take(rs[0], MsgPreAccept, -1)
	if len(first)+len(second) < 6 {
		t.Fatalf("after the timeout PreAccept reached %d+%d peers, want all 6", len(first), len(second))
	}
}

// Thrifty and a conflict: once every replica of its fast quorum has
// answered and they disagree with initDeps, a thrifty coordinator takes
// the slow path at once. The replicas it did not ask will not answer, so
// waiting for them (as a fast quorum that could still form) costs a whole
// timeout per conflicting command; the 100% conflict benchmark of thrifty
// epaxosd stalled on exactly that.
func TestThrifty_ConflictGoesSlowOnceTheAskedQuorumAnswered(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			rs := newReplicas(t, n, true)
			x := mustPropose(t, rs[0], write("k"))
			asked := take(rs[0], MsgPreAccept, -1)
			// Every asked replica already knows a conflicting command, so
			// its reply differs from x's initial deps.
			for _, pa := range asked {
				peer := rs[pa.To]
				mustPropose(t, peer, write("k"))
				peer.Ready()
				mustStep(t, peer, pa)
				mustStep(t, rs[0], one(t, take(peer, MsgPreAcceptOK, 0)))
			}
			if got := state(rs[0], x).phase; got != Accepted {
				t.Fatalf("after all %d asked replicas answered with other deps, %v is %v, want Accepted without a timeout", len(asked), x, got)
			}
		})
	}
}

// A retransmitted PreAccept is answered again with the same deps, so a lost
// reply does not stall the coordinator.
func TestPreAccept_RetransmissionIsAnsweredWithTheSameDeps(t *testing.T) {
	rs := newReplicas(t, 3, false)
	other := mustPropose(t, rs[1], write("k"))
	rs[1].Ready()
	mustPropose(t, rs[0], write("k"))
	pa := one(t, take(rs[0], MsgPreAccept, 1))
	mustStep(t, rs[1], pa)
	first := one(t, take(rs[1], MsgPreAcceptOK, 0))
	mustStep(t, rs[1], pa)
	again := one(t, take(rs[1], MsgPreAcceptOK, 0))
	if !first.Deps.Equal(again.Deps) || !again.Deps.Contains(other) {
		t.Fatalf("replies %v then %v", first.Deps, again.Deps)
	}
}

// Persist-before-send: the coordinator's own PreAccept, Accept and Commit
// state is in the same Ready as the messages that depend on it.
func TestReady_CoordinatorStateIsPersistedWithItsMessages(t *testing.T) {
	rs := newReplicas(t, 3, false)
	x := mustPropose(t, rs[0], write("k"))
	rd := rs[0].Ready()
	if len(rd.Instances) != 1 || rd.Instances[0].ID != x || rd.Instances[0].Phase != PreAccepted {
		t.Fatalf("Ready.Instances = %+v, want %v pre-accepted", rd.Instances, x)
	}
	mustStep(t, rs[1], rd.Messages[0])
	rd1 := rs[1].Ready()
	if len(rd1.Instances) != 1 || rd1.Instances[0].Phase != PreAccepted || len(rd1.Messages) != 1 {
		t.Fatalf("acceptor Ready = %+v, want its pre-accept persisted with its reply", rd1)
	}
	mustStep(t, rs[0], rd1.Messages[0])
	rd = rs[0].Ready()
	if len(rd.Instances) != 1 || rd.Instances[0].Phase != Committed {
		t.Fatalf("coordinator Ready.Instances = %+v, want its commit", rd.Instances)
	}
}

// Nothing a peer sends can crash the replica: malformed messages are
// rejected with an error and leave no trace.
func TestStep_RejectsImpossibleMessages(t *testing.T) {
	rs := newReplicas(t, 3, false)
	good := Message{Type: MsgPreAccept, From: 1, To: 0, Instance: id(1, 1), Command: &Payload{Commands: []Command{write("k")}}}
	bad := map[string]func(m *Message){
		"unknown type":                      func(m *Message) { m.Type = 99 },
		"unknown sender":                    func(m *Message) { m.From = 7 },
		"from self":                         func(m *Message) { m.From = 0; m.Instance = id(0, 1) },
		"wrong recipient":                   func(m *Message) { m.To = 2 },
		"unknown column":                    func(m *Message) { m.Instance = id(9, 1) },
		"slot zero":                         func(m *Message) { m.Instance = id(1, 0) },
		"dep on unknown column":             func(m *Message) { m.Deps = NewDeps(id(5, 1)) },
		"horizon over unknown columns":      func(m *Message) { m.Deps = NewDepsWithHorizon([]uint64{0, 0, 0, 1}) },
		"init horizon over unknown columns": func(m *Message) { m.InitDeps = NewDepsWithHorizon([]uint64{0, 0, 0, 0, 7}) },
		"PreAccept by non-owner": func(m *Message) {
			m.From = 2
		},
		"PreAccept without command": func(m *Message) { m.Command = nil },
		"bad access":                func(m *Message) { m.Command = &Payload{Commands: []Command{{Access: 0, Key: "k"}}} },
		"nop with commands":         func(m *Message) { m.Command = &Payload{Nop: true, Commands: []Command{write("k")}} },
		"Accept at foreign ballot": func(m *Message) {
			m.Type, m.Ballot = MsgAccept, 5 // 5 mod 3 = 2, not the sender 1
		},
	}
	for name, mutate := range bad {
		m := good
		mutate(&m)
		if err := rs[0].Step(m); err == nil {
			t.Errorf("%s: accepted %v", name, m)
		}
	}
	if rs[0].HasReady() || len(rs[0].instances) != 0 {
		t.Fatalf("rejected messages changed state: %d instances", len(rs[0].instances))
	}
	if err := rs[0].Step(good); err != nil {
		t.Fatalf("well-formed PreAccept rejected: %v", err)
	}
}
