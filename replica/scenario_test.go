package replica

// Known-bug regression scenarios A–F of shared/epaxos-notes.md ("Known bugs
// to regression-test"), each a scripted, deterministic replay against the
// real core: messages are delivered, held, dropped and reordered by hand,
// crashes discard a *Replica and restarts rebuild it with New + Restore
// from (a prefix of) the Readys it handled. The helper is
// scenario_helpers_test.go; it checks agreement on every step.
//
// Above each test: the published trace it follows, the property it asserts,
// and the breakage of the core it was seen to catch (each breakage was
// introduced by hand, the test run and seen to fail, and the core restored).

import (
	"fmt"
	"testing"
)

// Scenario A, the single-ballot bug (Sutra, "On the correctness of
// Egalitarian Paxos", IPL 2020; efficient/epaxos #20), replayed after the
// 3-replica TLA+ counterexample otrack/on-epaxos-correctness
// tla+/CounterExample.tla: p3 proposes c1 and its PreAccept to p2 is lost;
// p1 proposes c2 and p3 answers with deps {c1}; p3 recovers c2 with
// {p2, p3} at b1 and gets its value accepted at b1 by itself only; p2
// recovers c2 with {p1, p2} at b2 and gets a value accepted at b2 by p1 and
// p2 (chosen); p1 prepares with {p1, p3} at b3, then again at b4, and both
// of p3's replies arrive; p3 accepts p1's value at b4; p2 then p1 commit.
//
// EPaxos* differs from the original in what each recovery proposes (line 80
// and line 56 replace "restart Phase 1"), so one step is adapted to make the
// values of b1 and b2 differ as in the trace: p1 receives p3's PreAcceptOK
// and, its fast quorum incomplete, goes to the slow path at ballot 0 with
// (c2, {c1}) (Fig. 3 line 24), its Accepts lost. Then b1 decides Nop (line
// 80: no fast-path voter in {p2, p3}) and b2 decides (c2, {c1}) (line 55: p1
// accepted it). At b4 the recovery sees p1's value accepted at abal = b2 and
// p3's Nop accepted at abal = b1, and must pick the higher (lines 52–55).
//
// Asserts agreement: one committed (command, deps) for c2 across replicas
// and time (p2 commits at b2, p1 at b4). The replay runs under all six
// assignments of p1, p2, p3 to replicas 0–2, because a replica's id breaks
// ties between equal ballots (recovery.go takes the first reply of U in
// replica order).
//
// Breakages caught (each seen to fail, then reverted):
//   - onRecover sets abal = b as well as bal (the single ballot): p3 reports
//     abal b4 for its stale Nop, line 55 re-proposes Nop at b4, p1 commits
//     Nop while p2 committed (c2, {c1}): fails in all six relabelings;
//   - RecoverOK reports bal instead of abal: fails in all six relabelings on
//     the line-49 check of p3's reported abal; p1 and p3 then both report b4
//     and the tie goes to the lower replica id, so in the three relabelings
//     where p3's id is lower than p1's, p1 commits Nop: agreement violated.
func TestScenarioA_SingleBallotBug_RecoveryKeepsAbalSeparate(t *testing.T) {
	for _, p := range [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		t.Run(fmt.Sprintf("p1=r%d,p2=r%d,p3=r%d", p[0], p[1], p[2]), func(t *testing.T) {
			scenarioA(t, p[0], p[1], p[2])
		})
	}
}

func scenarioA(t *testing.T, p1, p2, p3 int) {
	s := newScenario(t, 3, 2)

	// History 1, Propose(c1, p3): its PreAccept to p2 is lost (and p1 is not
	// in p3's quorum {p2, p3} of the model).
	c1 := s.propose(p3, cmdK("c1"))
	s.drop(flight(MsgPreAccept, p3, -1, c1))

	// History 2–3, Propose(c2, p1) to its quorum {p1, p3}; Phase1Reply(p3):
	// p3 saw c1 first and answers deps {c1}.
	c2 := s.propose(p1, cmdK("c2"))
	s.drop(flight(MsgPreAccept, p1, p2, c2))
	s.deliver(flight(MsgPreAccept, p1, p3, c2))
	reply := s.hold(flight(MsgPreAcceptOK, p3, p1, c2))
	if !reply.Deps.Equal(NewDeps(c1)) {
		t.Fatalf("Fig. 3 line 15: p3 answered c2 with deps %v, want {%v}", reply.Deps, c1)
	}
	// Adapted step: p1 gets the reply, waits for a fast quorum that cannot
	// come, and takes the slow path with (c2, {c1}) at ballot 0 (line 24).
	// Its Accepts are lost: only p1 has accepted.
	s.step(reply)
	s.tickUntil(p1, "p1's slow path (line 24)", s.timeout+1, func() bool { return s.in(p1, c2).phase == Accepted })
	s.drop(flight(MsgAccept, p1, -1, c2))

	// History 4–7: p3 recovers c2 with Q = {p2, p3} at b1. Neither is a
	// fast-path voter (p3's dep {c1} ≠ initDep {}; p2 never saw c2), and the
	// initial coordinator p1 is not in Q: line 80, Accept(b1, Nop, ∅). Only
	// p3 accepts; its Accepts are lost.
	s.tickUntil(p3, "p3's recovery of c2", s.watchBound()+1, s.recovering(p3, c2, 0))
	b1 := s.in(p3, c2).rec.ballot
	s.drop(flight(MsgRecover, p3, p1, c2))
	s.deliver(flight(MsgRecover, p3, p2, c2))
	s.deliver(flight(MsgRecoverOK, p2, p3, c2))
	if in := s.in(p3, c2); in.phase != Accepted || !in.cmd.Nop || in.abal != b1 {
		t.Fatalf("Fig. 5 line 80: p3 should have accepted Nop at b1=%d, has phase=%v cmd=%v abal=%d", b1, in.phase, in.cmd, in.abal)
	}
	s.drop(flight(MsgAccept, p3, -1, c2))

	// History 8–14: p2 recovers c2 with Q = {p1, p2} at b2 > b1. p1 accepted
	// (c2, {c1}) at ballot 0: line 55 proposes it; p1 accepts at b2
	// (Phase2Reply(p1)). p1's AcceptOK is delayed until history 23.
	s.tickUntil(p2, "p2's recovery of c2", s.watchBound()+1, s.recovering(p2, c2, b1))
	b2 := s.in(p2, c2).rec.ballot
	s.drop(flight(MsgRecover, p2, p3, c2))
	s.deliver(flight(MsgRecover, p2, p1, c2))
	s.deliver(flight(MsgRecoverOK, p1, p2, c2))
	s.drop(flight(MsgAccept, p2, p3, c2))
	s.deliver(flight(MsgAccept, p2, p1, c2))
	ackB2 := s.hold(flight(MsgAcceptOK, p1, p2, c2))
	if in := s.in(p1, c2); in.phase != Accepted || in.abal != b2 || !in.deps.Equal(NewDeps(c1)) {
		t.Fatalf("Fig. 5 line 55 at b2=%d: p1 should have accepted (c2, {%v}) at b2, has phase=%v cmd=%v deps=%v abal=%d",
			b2, c1, in.phase, in.cmd, in.deps, in.abal)
	}
	// (c2, {c1}) is now chosen at b2: accepted by p1 and p2, a slow quorum.

	// History 15–20: p1 prepares with {p1, p3} at b3, then again at b4; p3
	// answers both, the answer to b3 arriving late.
	s.tickUntil(p1, "p1's recovery of c2 at b3", s.watchBound()+1, s.recovering(p1, c2, b2))
	b3 := s.in(p1, c2).rec.ballot
	s.drop(flight(MsgRecover, p1, p2, c2))
	s.deliver(flight(MsgRecover, p1, p3, c2))
	lateB3 := s.hold(flight(MsgRecoverOK, p3, p1, c2))
	s.tickUntil(p1, "p1's recovery of c2 at b4", s.watchBound()+1, s.recovering(p1, c2, b3))
	b4 := s.in(p1, c2).rec.ballot
	s.drop(flight(MsgRecover, p1, p2, c2))
	s.deliver(flight(MsgRecover, p1, p3, c2))
	s.step(lateB3) // superseded ballot: ignored
	okB4 := s.hold(flight(MsgRecoverOK, p3, p1, c2))
	if okB4.Abal != b1 {
		t.Errorf("Fig. 5 line 49: p3's RecoverOK(b4=%d) reports abal=%d, want b1=%d, the ballot it accepted at (Recover changes bal only, line 47)",
			b4, okB4.Abal, b1)
	}

	// History 21: PrepareFinalize(p1) at b4. b_max = b2 (p1's own accept);
	// line 55 proposes (c2, {c1}) again.
	s.step(okB4)
	if in := s.in(p1, c2); in.phase != Accepted || in.abal != b4 || in.cmd.Nop || !in.deps.Equal(NewDeps(c1)) {
		t.Errorf("Fig. 5 lines 52–55 at b4=%d: p1 should accept the value of b_max=b2, (c2, {%v}); has phase=%v cmd=%v deps=%v abal=%d",
			b4, c1, in.phase, in.cmd, in.deps, in.abal)
	}

	// History 22–24: Phase2Reply(p3) at b4; Phase2Finalize(p2) at b2;
	// Phase2Finalize(p1) at b4. Then everyone hears every Commit.
	s.drop(flight(MsgAccept, p1, p2, c2))
	s.deliver(flight(MsgAccept, p1, p3, c2))
	ackB4 := s.hold(flight(MsgAcceptOK, p3, p1, c2))
	s.step(ackB2)
	s.step(ackB4)
	s.deliver(flight(MsgCommit, -1, -1, c2))

	// Agreement was checked on every step; both commits happened.
	for _, p := range []int{p1, p2, p3} {
		if in := s.in(p, c2); in.phase != Committed {
			t.Errorf("r%d: c2 not committed (phase %v)", p, in.phase)
		}
	}
	if v, ok := s.committed(c2); !ok || v.cmd.Nop || !v.deps.Equal(NewDeps(c1)) {
		t.Errorf("c2 should be committed as the value chosen at b2, (c2, {%v}); got %v", c1, v)
	}
}

// Scenario B, a fast quorum too small for N = 7 (efficient/epaxos #10: the
// fast path checked a simple majority, > N/2, where recovery assumes
// F + ⌊(F+1)/2⌋ = N − E = 5). The coordinator r0 of A hears equal replies
// from r1, r2, r3: with itself 4 of 7, a majority. Had it fast-committed
// (and executed A, and crashed before its Commits left), recovery from
// Q = {r3, r4, r5, r6} sees one fast-path voter, fewer than |Q| − E = 2, and
// rightly concludes A cannot have fast-committed with N − E votes (Fig. 5
// lines 57 and 80): Accept(Nop). Meanwhile a conflicting B, proposed by r6,
// pre-accepted by r4 and r5 (which never saw A), commits with deps {} once
// the others learn A is a no-op.
//
// Asserts Fig. 3 line 22 (4 equal votes of 7 do not commit), agreement on A,
// and interference: of committed A and B, one is in the other's deps.
//
// Breakage caught: the fast quorum set to a majority for N = 7 in
// quorum.go (Fast = F + 1 = 4, recovery still using E = 2): r0 commits and
// executes (A, {}), recovery commits A as Nop (agreement violated) and B
// commits with {} (interference violated with A's fast commit). With the
// majority made consistent everywhere (Fast = 4 and E = 3, which NewQuorums
// rejects as n < 2e+f−1), only the line-22 assertion fails: recovery then
// validates A's one voter and waits for B instead of deciding Nop, and this
// script does not go on to a divergence.
func TestScenarioB_FastQuorumN7_RecoveryAfterFastCommitWithMajorityWouldDiverge(t *testing.T) {
	s := newScenario(t, 7, 2)

	// r0 proposes A; its PreAccepts reach r1, r2, r3 only, whose equal
	// replies (deps {} = initDep) make 4 votes with r0's own.
	a := s.propose(0, cmdK("A"))
	for _, to := range []int{4, 5, 6} {
		s.drop(flight(MsgPreAccept, 0, to, a))
	}
	for _, to := range []int{1, 2, 3} {
		s.deliver(flight(MsgPreAccept, 0, to, a))
		s.deliver(flight(MsgPreAcceptOK, to, 0, a))
	}
	if in := s.in(0, a); in.phase == Committed {
		t.Errorf("Fig. 3 line 22: r0 committed A on the fast path with 4 of 7 equal votes; the fast quorum is N−E = %d", s.r(0).q.Fast)
	}

	// r0 crashes; its messages in flight (its Commits, had it committed)
	// are lost with it.
	s.discard(flight(0, 0, -1, InstanceID{}))
	s.crash(0)

	// r6 proposes a conflicting B: r4 and r5, which never saw A, answer
	// deps {}; its PreAccepts to r1, r2, r3 are slow.
	b := s.propose(6, cmdK("B"))
	for _, to := range []int{4, 5} {
		s.deliver(flight(MsgPreAccept, 6, to, b))
		s.deliver(flight(MsgPreAcceptOK, to, 6, b))
	}
	slow := s.take(flight(MsgPreAccept, 6, -1, b))

	// r3, which pre-accepted A, recovers it with Q = {r3, r4, r5, r6}; r1
	// and r2 do not hear of it.
	s.tickUntil(3, "r3's recovery of A", s.watchBound()+1, s.recovering(3, a, 0))
	s.discard(flight(MsgFetch, 3, -1, InstanceID{}))
	s.drop(flight(MsgRecover, 3, 1, a))
	s.drop(flight(MsgRecover, 3, 2, a))
	for _, q := range []int{4, 5, 6} {
		s.deliver(flight(MsgRecover, 3, q, a))
		s.deliver(flight(MsgRecoverOK, q, 3, a))
	}
	// Lines 57 and 80: one voter (r3) < |Q| − E = 2 voters: Accept(Nop).
	if in := s.in(3, a); in.phase != Accepted || !in.cmd.Nop {
		t.Fatalf("Fig. 5 line 80: one fast-path voter in Q of 4 should make r3 accept Nop; has phase=%v cmd=%v", in.phase, in.cmd)
	}
	s.settle(1, 2, 3, 4, 5, 6)
	if v, ok := s.committed(a); !ok {
		t.Fatalf("A was not committed by the recovery")
	} else {
		t.Logf("A committed as %v", v)
	}

	// B's slow PreAccepts arrive: A is a no-op at r1, r2, r3, so B
	// fast-commits with deps {}.
	for _, m := range slow {
		s.step(m)
	}
	s.settle(1, 2, 3, 4, 5, 6)
	if _, ok := s.committed(b); !ok {
		t.Fatalf("B did not commit")
	}
	s.checkInterference()
}

// Scenario C, execution stalls behind a crashed leader's half-pre-accepted
// instance (EPaxos #26 and the notes: never busy-wait on a missing
// dependency; start its recovery and resume when it commits). r0 proposes A,
// its PreAccept reaches r1 only, and r0 crashes. r2 proposes a conflicting B,
// learns of A from r1, and commits (B, {A}) on the slow path. B cannot
// execute before A commits; A's owner is gone.
//
// Asserts liveness in ticks (one message hop per tick, every replica ticking
// each tick): B executes at every live replica within the watch timeout of
// watch.go ((3+N)·timeout: 2·timeout + jitter < N·timeout, then a Fetch
// round of one timeout) plus the recovery's round trips (Recover, Validate,
// Accept) and the Commit hop, counted from B's commit. A is recovered with
// its command (r1 voted for the fast path; B has A in its deps, so nothing
// invalidates it: line 63) and executes before B everywhere.
//
// Breakages caught: the executor not parking B on A (execute.go park made a
// no-op: nothing retries B when A commits; B never executes); watch-triggered
// recovery disabled (checkWatched never calls startRecovery: A never
// commits). Both fail with "did not happen within N ticks".
func TestScenarioC_ExecutionResumesAfterCrashedLeadersHalfPreAcceptedInstance(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "PreAcceptorStaysUp"
		if restart {
			name = "PreAcceptorRestarts"
		}
		t.Run(name, func(t *testing.T) { scenarioC(t, restart) })
	}
}

// With restart, the pre-acceptor r1 crashes once B is committed and comes
// back from everything it synced: its restored executor must park B on A
// again, and someone must still recover A. r2 never saw A at all; it knows
// A only as a dependency of B.
func scenarioC(t *testing.T, restart bool) {
	s := newScenario(t, 3, 2)
	a := s.propose(0, cmdK("A"))
	s.drop(flight(MsgPreAccept, 0, 2, a))
	s.deliver(flight(MsgPreAccept, 0, 1, a))
	s.drop(flight(MsgPreAcceptOK, 1, 0, a))
	s.crash(0)

	b := s.propose(2, cmdK("B"))
	s.deliver(flight(MsgPreAccept, 2, 1, b))
	s.deliver(flight(MsgPreAcceptOK, 1, 2, b))
	s.tickUntil(2, "B's slow path (line 24)", s.timeout+1, func() bool { return s.in(2, b).phase == Accepted })
	s.settle(1, 2)
	for _, i := range []int{1, 2} {
		if in := s.in(i, b); in.phase != Committed || !in.deps.Equal(NewDeps(a)) {
			t.Fatalf("r%d: B should be committed with deps {%v}: phase=%v deps=%v", i, a, in.phase, in.deps)
		}
		if s.hasExecuted(i, b) {
			t.Fatalf("r%d executed B before its dependency A committed", i)
		}
	}
	if restart {
		s.crash(1)
		s.restart(1, s.synced(1))
	}

	const recoveryHops = 7 // Recover, RecoverOK, Validate, ValidateOK, Accept, AcceptOK, Commit
	bound := s.watchBound() + recoveryHops
	took := s.runUntil("B executing at r1 and r2 (A recovered)", bound, func() bool {
		return s.hasExecuted(1, b) && s.hasExecuted(2, b)
	})
	t.Logf("B executed everywhere %d ticks after its commit (bound %d)", took, bound)
	if v, ok := s.committed(a); !ok || v.cmd.Nop || !v.deps.IsEmpty() {
		t.Errorf("Fig. 5 line 63: A should be recovered as (A, {}) (r1 voted for it, nothing invalidates it), got %v", v)
	}
	for _, i := range []int{1, 2} {
		if got := s.executed(i); len(got) != 2 || got[0] != a || got[1] != b {
			t.Errorf("r%d executed %v, want [%v %v] (Fig. 1: dependencies first)", i, got, a, b)
		}
	}
}

// Scenario C with the dependency known only to crashed replicas: N = 5, r0
// proposes A and only r1 pre-accepts it; r2 commits a conflicting B with
// deps {A} on the slow path through r1, r3, r4; then r1 crashes too (F = 2).
// The live replicas r2, r3, r4 have never seen A: they know it only as B's
// dependency. Their executors must not wait forever: recovery of A by a
// replica that needs it (epaxos-star.md §6: "a dependency it must execute")
// finds no fast-path voter in Q = {r2, r3, r4} and commits Nop (line 80), and
// B executes within the watch timeout plus the recovery's round trips.
//
// Breakages caught: as above (no parking; no watch-triggered recovery); and
// the core as it was before commit 29ce8ff ("execution and restart wait on
// what they miss"), whose executor parked B on A without watching A, so that
// only replicas that had seen A ever recovered it: here none is live, and B
// never executes. (The PreAcceptorRestarts case above fails on that core
// too: Restore did not watch A, nor did the restored executor.)
func TestScenarioC_DependentsExecuteWhenOnlyCrashedReplicasSawTheDependency(t *testing.T) {
	s := newScenario(t, 5, 2)
	a := s.propose(0, cmdK("A"))
	s.deliver(flight(MsgPreAccept, 0, 1, a))
	s.discard(flight(0, 0, -1, InstanceID{}))
	s.discard(flight(0, 1, 0, InstanceID{}))
	s.crash(0)

	b := s.propose(2, cmdK("B"))
	for _, q := range []int{1, 3, 4} {
		s.deliver(flight(MsgPreAccept, 2, q, b))
	}
	// r1's reply {A} and r3's {} arrive; r4's equal reply is lost, so no
	// fast quorum of 3 equal votes forms and r2 times out into the slow path.
	s.deliver(flight(MsgPreAcceptOK, 1, 2, b))
	s.deliver(flight(MsgPreAcceptOK, 3, 2, b))
	s.drop(flight(MsgPreAcceptOK, 4, 2, b))
	s.tickUntil(2, "B's slow path (line 24)", s.timeout+1, func() bool { return s.in(2, b).phase == Accepted })
	s.settle(1, 2, 3, 4)
	for _, i := range []int{1, 2, 3, 4} {
		if in := s.in(i, b); in.phase != Committed || !in.deps.Equal(NewDeps(a)) {
			t.Fatalf("r%d: B should be committed with deps {%v}: phase=%v deps=%v", i, a, in.phase, in.deps)
		}
	}
	s.crash(1)

	const recoveryHops = 5 // Recover, RecoverOK, Accept, AcceptOK, Commit
	bound := s.watchBound() + recoveryHops
	took := s.runUntil("B executing at r2, r3, r4 (A recovered)", bound, func() bool {
		return s.hasExecuted(2, b) && s.hasExecuted(3, b) && s.hasExecuted(4, b)
	})
	t.Logf("B executed at every live replica %d ticks after its commit (bound %d)", took, bound)
	if v, ok := s.committed(a); !ok || !v.cmd.Nop {
		t.Errorf("Fig. 5 line 80: A, seen by no live replica, should be recovered as Nop, got %v", v)
	}
}

// Scenario D, acknowledge-before-fsync (efficient/epaxos #28): a replica
// answers PreAccept before its pre-accept is durable, restarts without it,
// and answers a conflicting PreAccept as if it had never seen the first.
// N = 3: r0 fast-commits A through r1 (r0 + r1 = N − E = 2 equal votes);
// r1 then receives A's Commit and crashes before that write is synced,
// losing it: it restarts from the prefix of its Readys up to the one that
// carried its PreAcceptOK (doc.go: that record was persisted before the
// reply was sent). r2, cut off from r0, proposes a conflicting B through r1.
//
// Asserts interference: A in deps(B) or B in deps(A) (Invariant 2), and
// agreement.
//
// Breakages caught: restoring r1 from an empty HardState (persist nothing);
// the acceptor's pre-accept missing from the Ready that carries its
// PreAcceptOK (preaccept.go: markDirty dropped from onPreAccept's path).
// Either way r1 answers B with deps {}, B fast-commits with deps {} through
// r1, and A (A, {}) and B (B, {}) interfere with neither in the other's deps.
func TestScenarioD_AckBeforeFsync_DepsSurviveRestart(t *testing.T) {
	s := newScenario(t, 3, 2)
	a := s.propose(0, cmdK("A"))
	s.drop(flight(MsgPreAccept, 0, 2, a))
	s.deliver(flight(MsgPreAccept, 0, 1, a))
	acked := s.synced(1) // r1's Ready with its pre-accept and its PreAcceptOK
	s.deliver(flight(MsgPreAcceptOK, 1, 0, a))
	if in := s.in(0, a); in.phase != Committed || in.abal != 0 {
		t.Fatalf("Fig. 3 line 22: r0 should fast-commit A with r1's equal vote: phase=%v abal=%d", in.phase, in.abal)
	}
	s.drop(flight(MsgCommit, 0, 2, a))
	s.deliver(flight(MsgCommit, 0, 1, a))

	// r1 crashes before its last write (A's commit) is synced, and comes
	// back from what it had synced: everything up to its PreAcceptOK.
	s.crash(1)
	s.restart(1, acked)
	if in := s.in(1, a); in == nil || in.phase != PreAccepted {
		t.Errorf("r1 restarted without its acknowledged pre-accept of A (doc.go: persist before send)")
	}

	// r2 proposes a conflicting B; r0 does not hear of it (partition).
	b := s.propose(2, cmdK("B"))
	s.drop(flight(MsgPreAccept, 2, 0, b))
	s.deliver(flight(MsgPreAccept, 2, 1, b))
	s.deliver(flight(MsgPreAcceptOK, 1, 2, b))
	s.tickUntil(2, "B decided", s.timeout+1, func() bool { return s.in(2, b).phase >= Accepted })
	s.settle(1, 2)
	if _, ok := s.committed(b); !ok {
		t.Fatalf("B did not commit")
	}
	s.checkInterference()
}

// Scenario E, the leader executes and crashes before its Commit broadcast
// (efficient/epaxos #27). N = 3: r0 fast-commits A through r1 and executes
// it (its client has its answer); its Commits never leave. r2 commits a
// conflicting B with deps {A}. r0 restarts from what it persisted, and r1
// recovers A with Q = {r0, r1} (r2 slow). The recovery must find A's commit:
// r0 answers Recover with its Commit (line 54); with A merely pre-accepted at
// r0, line 56 (initial coordinator in Q) would decide Nop.
//
// Asserts agreement on A (the value r0 executed is the one everyone
// commits) and that every replica executes A before B.
//
// Breakages caught:
//   - the leader's commit not persisted with its execution (commit.go
//     commitAsLeader: the record left out of the Ready that executes A):
//     r0's restart fails, Restore reporting "executed but not committed";
//     and if the executed id is lost too (a state machine that is not
//     durable), r0 restarts with A pre-accepted, line 56 decides Nop, r1
//     commits Nop while r0 committed and executed (A, {}): agreement
//     violated;
//   - recovery ignoring committed replies (onRecover answering a committed
//     instance with a RecoverOK, and line 54 removed): U holds no ACCEPTED
//     reply, line 56 decides Nop, r2 accepts it first: agreement violated.
//     (Were r0's AcceptOK first, onAccept would answer the Nop with r0's
//     Commit and mask this breakage; hence the Accept order of the script.)
func TestScenarioE_LeaderExecutesAndCrashesBeforeCommitBroadcast(t *testing.T) {
	s := newScenario(t, 3, 2)
	a := s.propose(0, cmdK("A"))
	s.drop(flight(MsgPreAccept, 0, 2, a))
	s.deliver(flight(MsgPreAccept, 0, 1, a))
	s.deliver(flight(MsgPreAcceptOK, 1, 0, a))
	if !s.hasExecuted(0, a) {
		t.Fatalf("r0 should have fast-committed and executed A")
	}
	s.discard(flight(0, 0, -1, InstanceID{})) // its Commits never leave
	s.crash(0)

	b := s.propose(2, cmdK("B"))
	s.deliver(flight(MsgPreAccept, 2, 1, b))
	s.deliver(flight(MsgPreAcceptOK, 1, 2, b))
	s.tickUntil(2, "B's slow path (line 24)", s.timeout+1, func() bool { return s.in(2, b).phase == Accepted })
	s.settle(1, 2)
	if in := s.in(2, b); in.phase != Committed || !in.deps.Equal(NewDeps(a)) {
		t.Fatalf("B should be committed with deps {%v}: phase=%v deps=%v", a, in.phase, in.deps)
	}

	// r0 comes back from its disk. r1 recovers A with Q = {r0, r1}: its
	// Recover to r2 is lost, and so is its Fetch (which r0 would answer with
	// the commit): the recovery itself must find the commit.
	s.restart(0, s.synced(0))
	s.tickUntil(1, "r1's recovery of A", s.watchBound()+1, s.recovering(1, a, 0))
	s.discard(flight(MsgFetch, 1, -1, InstanceID{}))
	s.drop(flight(MsgRecover, 1, 2, a))
	s.deliver(flight(MsgRecover, 1, 0, a))
	s.deliver(flight(0, 0, 1, a)) // r0's answer
	// Had the recovery gone on to an Accept, r2 would answer it first.
	if s.has(flight(MsgAccept, 1, 2, a)) {
		s.deliver(flight(MsgAccept, 1, 2, a))
		s.deliver(flight(MsgAcceptOK, 2, 1, a))
	}
	s.settle(0, 1, 2)
	if in := s.in(1, a); in.phase != Committed {
		t.Fatalf("r1's recovery of A did not finish: phase=%v", in.phase)
	}
	// r2 catches up. (r0, down when B's Commit was sent, learns of B only
	// when a later instance it handles depends on it; that is outside this
	// scenario.)
	s.runUntil("A and B executing at r1 and r2", s.watchBound()+8, func() bool {
		return s.hasExecuted(1, b) && s.hasExecuted(2, b)
	})
	if v, _ := s.committed(a); v.cmd.Nop || !v.deps.IsEmpty() {
		t.Errorf("A must be committed as r0 executed it, (A, {}); got %v", v)
	}
	if got := s.executed(0); len(got) != 1 || got[0] != a {
		t.Errorf("r0 executed %v across its restart, want [%v] (once)", got, a)
	}
	for _, i := range []int{1, 2} {
		if got := s.executed(i); len(got) != 2 || got[0] != a || got[1] != b {
			t.Errorf("r%d executed %v, want [%v %v] (Fig. 1: dependencies first)", i, got, a, b)
		}
	}
}

// Scenario E, PreAccepts lost in one direction during recovery (efficient/
// epaxos #29: the original recovery seeded its decision with the
// recovering replica's own, incomplete, pre-accepted deps). N = 5; every
// message from r4 to r0 and r1 is lost, the other direction works.
// r4 fast-commits B through r2 and r3 (deps {}); its Commits are slow.
// r0 proposes a conflicting A without knowing B: r1 answers {} (it never
// hears from r4), r2 and r3 answer {B}; no fast quorum, and r0 crashes.
// r1 recovers A: r4's RecoverOK is lost on the way, so Q = {r1, r2, r3}.
// r1's own pre-accept (A, {}) is a fast-path voter but misses B, and B
// committed without A. Validate (lines 58–61) reports B as an invalidator;
// |R_max| = 1 = |Q| − E and B's coordinator r4 is outside Q (line 65): A
// could not have fast-committed, so Accept(Nop).
//
// Asserts agreement and interference (A committed with B in its deps, or as
// Nop).
//
// Breakage caught: recovery accepting the recovering replica's own
// pre-accepted (command, deps) without validation (the #29 bug: r1 commits
// (A, {}) while B is committed as (B, {}), interference violated).
func TestScenarioE_PreAcceptsLostOneWayDuringRecovery(t *testing.T) {
	s := newScenario(t, 5, 2)
	oneWay := func() { // r4 -> r0 and r4 -> r1 are down
		s.discard(flight(0, 4, 0, InstanceID{}))
		s.discard(flight(0, 4, 1, InstanceID{}))
	}
	b := s.propose(4, cmdK("B"))
	oneWay()
	for _, q := range []int{2, 3} {
		s.deliver(flight(MsgPreAccept, 4, q, b))
		s.deliver(flight(MsgPreAcceptOK, q, 4, b))
	}
	if in := s.in(4, b); in.phase != Committed || !in.deps.IsEmpty() {
		t.Fatalf("r4 should fast-commit (B, {}) with r2 and r3: phase=%v deps=%v", in.phase, in.deps)
	}
	oneWay()
	slowCommits := s.take(flight(MsgCommit, 4, -1, b))

	a := s.propose(0, cmdK("A"))
	for _, q := range []int{1, 2, 3, 4} {
		s.deliver(flight(MsgPreAccept, 0, q, a))
	}
	oneWay() // r4's reply
	s.deliver(flight(MsgPreAcceptOK, -1, 0, a))
	if in := s.in(0, a); in.phase != PreAccepted {
		t.Fatalf("r0 should still wait for a fast quorum: phase=%v", in.phase)
	}
	s.discard(flight(0, 0, -1, InstanceID{}))
	s.crash(0)

	s.tickUntil(1, "r1's recovery of A", s.watchBound()+1, s.recovering(1, a, 0))
	for _, q := range []int{2, 3, 4} {
		s.deliver(flight(MsgRecover, 1, q, a))
	}
	oneWay() // r4's RecoverOK: Q = {r1, r2, r3}
	s.settle(1, 2, 3)
	oneWay()
	s.settle(1, 2, 3, 4)
	if v, ok := s.committed(a); !ok {
		t.Fatalf("A's recovery did not commit")
	} else if !v.cmd.Nop && !v.deps.Contains(b) {
		t.Errorf("A committed as %v without B, which committed without A", v)
	}
	for _, m := range slowCommits {
		s.step(m)
	}
	s.settle(1, 2, 3, 4)
	s.checkInterference()
}

// Scenario F, Accept without the command (the original EPaxos's Accept
// carried only the instance and deps): a replica that never saw the
// PreAccept accepts a recovered value with an empty payload, and a later
// recovery that finds that accepted value at the highest abal (line 55)
// re-proposes ⊥ or a no-op. N = 5: r0 proposes A, pre-accepted by r1 and r2
// only, and crashes. r1 recovers A with Q = {r1, r2, r3}: two voters, no
// invalidator, Accept(b1, A, {}) (line 63); only r4, which never saw A,
// accepts it before r1 crashes. r2 recovers with Q = {r2, r3, r4}: r4's is
// the only reply at b_max = b1, so line 55 re-proposes r4's value.
//
// Asserts that every Accept and Commit on the wire carries the command
// (checked by the helper for every message), that r4's RecoverOK carries
// A's command, and that A is committed and executed with its command, not
// as a no-op.
//
// Breakages caught: Accept sent without its Command (accept.go
// acceptAsLeader: Command: nil) fails at once (the helper's wire check,
// and validate.go rejects it at r4); with validate.go's check also removed,
// r4 accepts ⊥, its RecoverOK carries ⊥ and line 55 proposes ⊥: the
// wire check and the final value check fail.
func TestScenarioF_AcceptCarriesTheCommand(t *testing.T) {
	s := newScenario(t, 5, 2)
	a := s.propose(0, cmdK("A"))
	want := s.in(0, a).cmd
	for _, q := range []int{1, 2} {
		s.deliver(flight(MsgPreAccept, 0, q, a))
	}
	s.discard(flight(0, 0, -1, InstanceID{}))
	s.discard(flight(0, -1, 0, InstanceID{}))
	s.crash(0)

	s.tickUntil(1, "r1's recovery of A", s.watchBound()+1, s.recovering(1, a, 0))
	s.discard(flight(MsgFetch, 1, -1, InstanceID{}))
	s.drop(flight(MsgRecover, 1, 4, a))
	for _, q := range []int{2, 3} {
		s.deliver(flight(MsgRecover, 1, q, a))
		s.deliver(flight(MsgRecoverOK, q, 1, a))
	}
	for _, q := range []int{2, 3} { // lines 58–63: no invalidator
		s.deliver(flight(MsgValidate, 1, q, a))
		s.deliver(flight(MsgValidateOK, q, 1, a))
	}
	if in := s.in(1, a); in.phase != Accepted || !in.cmd.Equal(want) {
		t.Fatalf("Fig. 5 line 63: r1 should accept (A, {}) at b1: phase=%v cmd=%v", in.phase, in.cmd)
	}
	b1 := s.in(1, a).abal
	s.drop(flight(MsgAccept, 1, 2, a))
	s.drop(flight(MsgAccept, 1, 3, a))
	s.deliver(flight(MsgAccept, 1, 4, a))
	s.drop(flight(MsgAcceptOK, 4, 1, a))
	s.crash(1)

	s.tickUntil(2, "r2's recovery of A", s.watchBound()+1, s.recovering(2, a, b1))
	s.discard(flight(MsgFetch, 2, -1, InstanceID{}))
	s.deliver(flight(MsgRecover, 2, 4, a))
	reply := s.hold(flight(MsgRecoverOK, 4, 2, a))
	if reply.Abal != b1 || reply.Phase != Accepted || !reply.Command.Equal(want) {
		t.Errorf("Fig. 5 line 49: r4's RecoverOK should carry the value it accepted at b1=%d, A's command: abal=%d phase=%v cmd=%v",
			b1, reply.Abal, reply.Phase, reply.Command)
	}
	s.step(reply)
	s.settle(2, 3, 4)
	v, ok := s.committed(a)
	if !ok {
		t.Fatalf("A was not committed")
	}
	if !v.cmd.Equal(want) {
		t.Errorf("Fig. 5 line 55: A must be committed with its command %v, got %v", want, v)
	}
	for _, i := range []int{2, 3, 4} {
		if !s.hasExecuted(i, a) {
			t.Errorf("r%d did not execute A", i)
		}
	}
}
