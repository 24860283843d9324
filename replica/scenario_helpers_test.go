package replica

// A tiny scripted cluster for the known-bug regression tests of
// scenario_test.go (epaxos-notes.md, "Known bugs to regression-test", A–F).
//
// Nothing happens unless the script says so. Every message a replica sends
// goes into an in-flight pool; the script delivers, holds, drops or
// duplicates messages by (type, from, to, instance), in any order, and ticks
// replicas one at a time. Each Ready is handled as doc.go prescribes and
// kept in a per-replica log that serves as the replica's disk: a crash
// discards the *Replica, and a restart builds a new one with New + Restore
// from the HardState of a prefix of that log (all of it when every write was
// synced; a shorter prefix when the last writes were not).
//
// Checks run as the script goes, and fail the test with the paper's lines:
//   - agreement: every committed (command, deps) of an instance, observed in
//     any replica's state at any time, is the same (Fig. 3 lines 37–42);
//   - every Accept and Commit on the wire carries its command (Fig. 3 lines
//     26 and 37: Accept(b, id, c, D), Commit(b, id, c, D));
//   - a replica that panics (the core's own agreement check in onCommit) or
//     rejects a message from a correct peer fails the test.
//
// checkInterference (Invariant 2) and liveness bounds are asserted by the
// scenarios themselves.

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// scnSeed seeds every scenario replica: the core's only randomness is the
// recovery jitter, so runs are deterministic.
const scnSeed = 7

// scenario is the scripted cluster.
type scenario struct {
	t       *testing.T
	n       int
	timeout int
	rs      []*Replica // nil while crashed
	disk    [][]Ready  // per replica: every Ready handled, across restarts
	pool    []Message  // sent and neither delivered nor dropped
	values  map[InstanceID][]scnValue
}

// scnValue is one committed (command, deps) of an instance as observed at
// one replica.
type scnValue struct {
	cmd  *Payload
	deps Deps
	at   ReplicaID
	abal Ballot
}

func (v scnValue) String() string {
	return fmt.Sprintf("(%s, %v) at r%d ballot %d", v.cmd, v.deps, v.at, v.abal)
}

func newScenario(t *testing.T, n, timeout int) *scenario {
	t.Helper()
	s := &scenario{
		t: t, n: n, timeout: timeout,
		rs:     make([]*Replica, n),
		disk:   make([][]Ready, n),
		values: make(map[InstanceID][]scnValue),
	}
	for i := range s.rs {
		s.rs[i] = s.newReplica(i)
	}
	return s
}

func (s *scenario) newReplica(i int) *Replica {
	s.t.Helper()
	r, err := New(Config{ID: ReplicaID(i), N: s.n, TimeoutTicks: s.timeout, Seed: scnSeed})
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// r returns live replica i.
func (s *scenario) r(i int) *Replica {
	s.t.Helper()
	if s.rs[i] == nil {
		s.t.Fatalf("script error: replica %d is crashed", i)
	}
	return s.rs[i]
}

// in returns replica i's state of instance id (nil if it knows nothing).
func (s *scenario) in(i int, id InstanceID) *instance { return s.r(i).instances[id] }

func (s *scenario) propose(i int, cmds ...Command) InstanceID {
	s.t.Helper()
	id, err := s.r(i).Propose(cmds)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("r%d proposes %v as %v", i, cmds, id)
	s.flush(i)
	return id
}

// flush handles replica i's Ready: persist (append to its disk), send (into
// the pool), execute (recorded on the disk too, with its Ready).
func (s *scenario) flush(i int) {
	s.t.Helper()
	rd := s.r(i).Ready()
	if rd.IsEmpty() {
		s.observe(i)
		return
	}
	s.disk[i] = append(s.disk[i], rd)
	for _, m := range rd.Messages {
		if (m.Type == MsgAccept || m.Type == MsgCommit && !m.CommandElided) && m.Command == nil {
			s.t.Errorf("Fig. 3 lines 26/37: r%d sent %v without its command: %s must carry (c, D), not only the id", i, m, m.Type)
		}
		if s.rs[m.To] == nil {
			continue // lost: the recipient is down
		}
		if m.CommandElided {
			if to := state(s.rs[m.To], m.Instance); to == nil || !to.cmd.Equal(state(s.r(i), m.Instance).cmd) {
				s.t.Errorf("r%d sent %v leaving out a command r%d does not hold", i, m, m.To)
			}
		}
		s.pool = append(s.pool, m)
	}
	for _, e := range rd.Execute {
		s.t.Logf("r%d executes %v", i, e.Instance)
	}
	s.observe(i)
}

// observe records every committed value in replica i's state and checks
// agreement against every value seen so far anywhere.
func (s *scenario) observe(i int) {
	s.t.Helper()
	r := s.rs[i]
	ids := make([]InstanceID, 0, len(r.instances))
	for id, in := range r.instances {
		if in.phase == Committed {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a].Less(ids[b]) })
	for _, id := range ids {
		in := r.instances[id]
		v := scnValue{cmd: in.cmd, deps: in.deps, at: r.id, abal: in.abal}
		seen := false
		for _, w := range s.values[id] {
			if w.cmd.Equal(v.cmd) && w.deps.Equal(v.deps) {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		if prev := s.values[id]; len(prev) > 0 {
			s.t.Errorf("agreement violated (Fig. 3 lines 37–42, Invariant 1): %v committed as %v, but earlier as %v", id, v, prev[0])
		}
		s.values[id] = append(s.values[id], v)
	}
}

// scnFilter selects in-flight messages; a zero typ, from or to < 0, and a
// zero inst match anything.
type scnFilter struct {
	typ      MessageType
	from, to int
	inst     InstanceID
}

func flight(typ MessageType, from, to int, inst InstanceID) scnFilter {
	return scnFilter{typ: typ, from: from, to: to, inst: inst}
}

func (f scnFilter) match(m Message) bool {
	return (f.typ == 0 || m.Type == f.typ) && (f.from < 0 || m.From == ReplicaID(f.from)) &&
		(f.to < 0 || m.To == ReplicaID(f.to)) && (f.inst == InstanceID{} || m.Instance == f.inst)
}

func (f scnFilter) String() string {
	w := func(i int) string {
		if i < 0 {
			return "*"
		}
		return fmt.Sprint(i)
	}
	inst := "*"
	if f.inst != (InstanceID{}) {
		inst = f.inst.String()
	}
	typ := "any message"
	if f.typ != 0 {
		typ = f.typ.String()
	}
	return fmt.Sprintf("%s %s->%s %s", typ, w(f.from), w(f.to), inst)
}

// take removes and returns the in-flight messages f selects; the script
// expects at least one.
func (s *scenario) take(f scnFilter) []Message {
	s.t.Helper()
	var out, keep []Message
	for _, m := range s.pool {
		if f.match(m) {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	if len(out) == 0 {
		s.t.Fatalf("script expected an in-flight %v; in flight:\n%s", f, s.inFlight())
	}
	s.pool = keep
	return out
}

// hold takes the one message f selects off the network, to deliver later
// with step (a delay), or never (a loss).
func (s *scenario) hold(f scnFilter) Message {
	s.t.Helper()
	ms := s.take(f)
	if len(ms) != 1 {
		s.t.Fatalf("script expected one in-flight %v, got %v", f, ms)
	}
	return ms[0]
}

// has reports whether some in-flight message matches f.
func (s *scenario) has(f scnFilter) bool {
	for _, m := range s.pool {
		if f.match(m) {
			return true
		}
	}
	return false
}

// deliver delivers every in-flight message f selects, in the order sent.
func (s *scenario) deliver(f scnFilter) []Message {
	s.t.Helper()
	ms := s.take(f)
	for _, m := range ms {
		s.step(m)
	}
	return ms
}

// drop loses every in-flight message f selects (at least one).
func (s *scenario) drop(f scnFilter) {
	s.t.Helper()
	for _, m := range s.take(f) {
		s.t.Logf("lost: %v", m)
	}
}

// discard loses whatever in-flight messages f selects, if any.
func (s *scenario) discard(f scnFilter) {
	var keep []Message
	for _, m := range s.pool {
		if !f.match(m) {
			keep = append(keep, m)
		}
	}
	s.pool = keep
}

// step delivers m to its recipient and handles the recipient's Ready.
func (s *scenario) step(m Message) {
	s.t.Helper()
	to := int(m.To)
	r := s.r(to)
	s.t.Logf("deliver: %v", m)
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.t.Fatalf("r%d panicked on %v: %v", to, m, p)
			}
		}()
		if err := r.Step(m); err != nil {
			s.t.Fatalf("r%d rejected a message from a correct peer: %v", to, err)
		}
	}()
	s.flush(to)
}

// settle delivers, in the order sent, every in-flight message between the
// given live replicas, including the ones those deliveries produce, until
// none is left; messages to or from the others stay in flight.
func (s *scenario) settle(among ...int) {
	s.t.Helper()
	in := make(map[ReplicaID]bool)
	for _, i := range among {
		in[ReplicaID(i)] = true
	}
	for k := 0; ; k++ {
		if k == 10000 {
			s.t.Fatalf("settle(%v) does not quiesce; in flight:\n%s", among, s.inFlight())
		}
		j := -1
		for x, m := range s.pool {
			if in[m.From] && in[m.To] && s.rs[m.To] != nil {
				j = x
				break
			}
		}
		if j < 0 {
			return
		}
		m := s.pool[j]
		s.pool = append(s.pool[:j:j], s.pool[j+1:]...)
		s.step(m)
	}
}

// tick advances replica i's clock by one tick.
func (s *scenario) tick(i int) {
	s.t.Helper()
	s.r(i).Tick()
	s.flush(i)
}

// tickUntil ticks replica i until cond holds, at most max ticks, and
// returns the number of ticks.
func (s *scenario) tickUntil(i int, what string, max int, cond func() bool) int {
	s.t.Helper()
	for k := 0; k < max; k++ {
		if cond() {
			return k
		}
		s.tick(i)
	}
	if !cond() {
		s.t.Fatalf("r%d: %s did not happen within %d ticks", i, what, max)
	}
	return max
}

// watchBound is how many ticks a replica may take from starting to watch an
// instance (watch.go) to sending Recover for it: the first deadline
// (2·timeout + jitter < N·timeout) and one more timeout after the Fetch.
func (s *scenario) watchBound() int { return (3 + s.n) * s.timeout }

// recovering reports whether replica i coordinates a recovery of id at a
// ballot above b.
func (s *scenario) recovering(i int, id InstanceID, above Ballot) func() bool {
	return func() bool {
		in := s.rs[i].instances[id]
		return in != nil && in.rec != nil && in.rec.ballot > above
	}
}

// round is one tick of simulated time for the live replicas: deliver every
// message in flight at the start of the round (one hop per tick; messages
// to crashed replicas are lost), then tick every live replica.
func (s *scenario) round() {
	s.t.Helper()
	ms := s.pool
	s.pool = nil
	for _, m := range ms {
		if s.rs[m.To] == nil {
			continue
		}
		s.step(m)
	}
	for i, r := range s.rs {
		if r != nil {
			s.tick(i)
		}
	}
}

// runUntil runs rounds until cond holds, at most max, and returns how many.
func (s *scenario) runUntil(what string, max int, cond func() bool) int {
	s.t.Helper()
	for k := 0; k < max; k++ {
		if cond() {
			return k
		}
		s.round()
	}
	if !cond() {
		s.t.Fatalf("%s did not happen within %d ticks", what, max)
	}
	return max
}

// crash stops replica i: its volatile state is gone and messages in flight
// to it are lost. Its disk survives.
func (s *scenario) crash(i int) {
	s.t.Helper()
	s.r(i)
	s.t.Logf("r%d crashes", i)
	s.rs[i] = nil
	var keep []Message
	for _, m := range s.pool {
		if int(m.To) != i {
			keep = append(keep, m)
		}
	}
	s.pool = keep
}

// synced is the number of Readys on replica i's disk.
func (s *scenario) synced(i int) int { return len(s.disk[i]) }

// restart brings replica i back from the first `prefix` Readys of its disk
// (the writes after them were not synced and are lost).
func (s *scenario) restart(i, prefix int) {
	s.t.Helper()
	if s.rs[i] != nil {
		s.t.Fatalf("script error: restart of live replica %d", i)
	}
	s.disk[i] = s.disk[i][:prefix]
	st := hardStateOf(s.disk[i])
	s.t.Logf("r%d restarts from %d of its Readys: %d records, executed %v", i, prefix, len(st.Instances), st.Executed)
	r := s.newReplica(i)
	if err := r.Restore(st); err != nil {
		s.t.Fatalf("r%d: Restore: %v", i, err)
	}
	s.rs[i] = r
	s.flush(i)
}

// hardStateOf is what a caller that handled these Readys has on disk: the
// latest record of each instance and the executed ids in order.
func hardStateOf(rds []Ready) HardState {
	var st HardState
	latest := make(map[InstanceID]InstanceRecord)
	for _, rd := range rds {
		for _, ir := range rd.Instances {
			latest[ir.ID] = ir
		}
		for _, e := range rd.Execute {
			st.Executed = append(st.Executed, e.Instance)
		}
	}
	for _, ir := range latest {
		st.Instances = append(st.Instances, ir)
	}
	sort.Slice(st.Instances, func(a, b int) bool { return st.Instances[a].ID.Less(st.Instances[b].ID) })
	return st
}

// executed returns the instances replica i has executed, in order, as its
// state machine has them (the Execute entries on its disk).
func (s *scenario) executed(i int) []InstanceID {
	var out []InstanceID
	for _, rd := range s.disk[i] {
		for _, e := range rd.Execute {
			out = append(out, e.Instance)
		}
	}
	return out
}

func (s *scenario) hasExecuted(i int, id InstanceID) bool {
	for _, x := range s.executed(i) {
		if x == id {
			return true
		}
	}
	return false
}

// committed returns the one value committed for id so far (ok false if
// none); agreement is checked as values are observed.
func (s *scenario) committed(id InstanceID) (scnValue, bool) {
	vs := s.values[id]
	if len(vs) == 0 {
		return scnValue{}, false
	}
	return vs[0], true
}

// checkInterference is Invariant 2 over every value ever committed: of two
// committed interfering commands, one is in the other's deps (the property
// EPaxos's execution order rests on).
func (s *scenario) checkInterference() {
	s.t.Helper()
	ids := make([]InstanceID, 0, len(s.values))
	for id := range s.values {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a].Less(ids[b]) })
	for i, a := range ids {
		for _, b := range ids[i+1:] {
			for _, va := range s.values[a] {
				for _, vb := range s.values[b] {
					if va.cmd.Interferes(vb.cmd) && !va.deps.Contains(b) && !vb.deps.Contains(a) {
						s.t.Errorf("interference violated (Invariant 2): %v committed %v and %v committed %v interfere, yet neither is in the other's deps",
							a, va, b, vb)
					}
				}
			}
		}
	}
}

func (s *scenario) inFlight() string {
	var b strings.Builder
	for _, m := range s.pool {
		fmt.Fprintf(&b, "  %v\n", m)
	}
	return b.String()
}

// cmdK is a write of key "k" whose value names it, so that the payloads of
// different instances differ.
func cmdK(name string) Command { return Command{Access: Write, Key: "k", Value: []byte(name)} }
