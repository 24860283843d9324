package replica

import "testing"

// Without a durable reservation nothing leaves before the records are
// durable; once the daemon confirms one, a coordinator's PreAccepts for
// slots inside it are Early, and its replies never are.
func TestReserve_PreAcceptsLeaveEarlyOnlyInsideADurableReservation(t *testing.T) {
	rs := newReplicas(t, 3, false)
	r := rs[0]
	mustPropose(t, r, write("a"))
	rd := r.Ready()
	if len(rd.Early) != 0 {
		t.Fatalf("sent %v early with no durable reservation", rd.Early)
	}
	if rd.ReserveSlots <= 1 {
		t.Fatalf("first Ready asks for reservation %d, want one covering the next slots", rd.ReserveSlots)
	}
	r.SlotsReserved(rd.ReserveSlots)
	id := mustPropose(t, r, write("b"))
	rd = r.Ready()
	if len(rd.Early) != 2 || rd.Early[0].Type != MsgPreAccept || rd.Early[0].Instance != id {
		t.Fatalf("early %v, want the two PreAccepts of %v", rd.Early, id)
	}
	for _, m := range rd.Messages {
		if m.Type == MsgPreAccept {
			t.Fatalf("PreAccept %v waits for persistence inside the reservation", m)
		}
	}
	// The peer's reply promises its record: never early.
	mustStep(t, rs[1], rd.Early[0])
	if rd := rs[1].Ready(); len(rd.Early) != 0 || len(rd.Messages) != 1 || rd.Messages[0].Type != MsgPreAcceptOK {
		t.Fatalf("peer's Ready %+v: want its PreAcceptOK among Messages only", rd)
	}
}

// A coordinator that crashed after its PreAccept left early, before its
// record was durable, restarts above its reservation (the slot is never
// proposed again with another command) and watches the slot it has no
// record of, so that it is fetched or recovered.
func TestReserve_ARestartSkipsReservedSlotsAndRecoversTheUnknownOnes(t *testing.T) {
	r := newReplicas(t, 3, false)[0]
	mustPropose(t, r, write("a"))
	rd := r.Ready()
	r.SlotsReserved(rd.ReserveSlots)
	lost := mustPropose(t, r, write("b")) // PreAccept early, then the crash
	if len(r.Ready().Early) == 0 {
		t.Fatal("nothing sent early")
	}
	restarted, err := New(Config{ID: 0, N: 3, TimeoutTicks: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Restore(HardState{Instances: rd.Instances, ReservedSlots: rd.ReserveSlots}); err != nil {
		t.Fatal(err)
	}
	next := mustPropose(t, restarted, write("c"))
	if next.Slot <= rd.ReserveSlots {
		t.Fatalf("after the restart proposed %v inside the reservation (up to %d): slot %v may be reused", next, rd.ReserveSlots, lost)
	}
	restarted.Ready()
	fetched := false
	for i := 0; i < 40 && !fetched; i++ {
		restarted.Tick()
		for _, m := range take(restarted, MsgFetch, -1) {
			fetched = fetched || m.Deps.Contains(lost)
		}
	}
	if !fetched {
		t.Fatalf("the restarted replica never asked its peers for %v, the slot it has no record of", lost)
	}
}

// An Accept never leaves early, even at ballot 0 in a reserved slot: a
// peer holding an accepted value the coordinator might forget in a crash
// lets a recovery commit it unseen by a conflicting command the forgetful
// coordinator answered (reserve.go; simulator seed 300076).
func TestReserve_AcceptsWaitForTheCoordinatorsRecord(t *testing.T) {
	rs := newReplicas(t, 3, false)
	r := rs[0]
	mustPropose(t, r, write("a"))
	r.SlotsReserved(r.Ready().ReserveSlots)
	id := mustPropose(t, r, write("k"))
	r.Ready()
	other := InstanceID{Replica: 2, Slot: 7}
	mustStep(t, r, Message{Type: MsgPreAcceptOK, From: 1, To: 0, Instance: id, Deps: NewDeps(other)})
	mustStep(t, r, Message{Type: MsgPreAcceptOK, From: 2, To: 0, Instance: id, Deps: NewDeps(other)})
	rd := r.Ready()
	if len(rd.Early) != 0 {
		t.Fatalf("sent early %v", rd.Early)
	}
	accepts := 0
	for _, m := range rd.Messages {
		if m.Type == MsgAccept {
			accepts++
		}
	}
	if accepts != 2 || !rd.NeedsSync() {
		t.Fatalf("Ready %+v: want the two Accepts among Messages, behind a sync", rd)
	}
}

// After a restart, every own slot up to the reservation that the replica
// has no record of may hold a PreAccept it sent and forgot: until it learns
// the slot's command or decision, it counts the slot as a conflict of every
// command, its own and its peers' (reserve.go; simulator seed 300138).
func TestReserve_ARestartedReplicaCountsItsForgottenSlotsAsConflicts(t *testing.T) {
	rs := newReplicas(t, 3, false)
	r0 := rs[0]
	mustPropose(t, r0, write("a"))
	rd := r0.Ready()
	restarted, err := New(Config{ID: 0, N: 3, TimeoutTicks: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Restore(HardState{Instances: rd.Instances, ReservedSlots: 4}); err != nil {
		t.Fatal(err)
	}
	forgotten := NewDeps(InstanceID{Replica: 0, Slot: 2}, InstanceID{Replica: 0, Slot: 3}, InstanceID{Replica: 0, Slot: 4})
	// A peer's PreAccept of an unrelated key: the reply lists them.
	peer := mustPropose(t, rs[1], write("zzz"))
	pa := take(rs[1], MsgPreAccept, 0)[0]
	mustStep(t, restarted, pa)
	reply := one(t, take(restarted, MsgPreAcceptOK, 1))
	for _, id := range forgotten.IDs() {
		if !reply.Deps.Contains(id) {
			t.Fatalf("reply for %v has deps %v, missing the forgotten own slot %v", peer, reply.Deps, id)
		}
	}
	// Once a slot's decision is known, it is an ordinary instance again.
	mustStep(t, restarted, Message{Type: MsgCommit, From: 1, To: 0, Instance: InstanceID{Replica: 0, Slot: 2}, Ballot: 3, Command: NopPayload(), Deps: Deps{}})
	restarted.Ready()
	own := mustPropose(t, restarted, write("b"))
	initial := state(restarted, own).initDeps
	if initial.Contains(InstanceID{Replica: 0, Slot: 2}) || !initial.Contains(InstanceID{Replica: 0, Slot: 3}) {
		t.Fatalf("own proposal's deps %v: want the still-forgotten 0.3 and 0.4, not the decided 0.2", initial)
	}
}
