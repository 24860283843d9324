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
