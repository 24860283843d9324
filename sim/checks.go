package sim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
)

// checker holds what the invariants need across the whole run and checks
// them: continuously on every persisted record (agreement, durable-state
// sanity, validity), and at the end of the run (interference, execution
// consistency, state-machine agreement, exactly-once). Numbers follow
// shared/epaxos-notes.md, "Invariants every simulation run checks".
type checker struct {
	s *Sim
	// chosen is the first committed value persisted for each instance,
	// anywhere, at any time; every later committed record must equal it.
	chosen map[replica.InstanceID]chosenValue
	nonNop int
	// known is every instance id any replica ever persisted.
	known map[replica.InstanceID]bool
}

type chosenValue struct {
	cmd  *replica.Payload
	deps replica.Deps
	node int
	at   int64
}

func newChecker(s *Sim) *checker {
	return &checker{
		s:      s,
		chosen: make(map[replica.InstanceID]chosenValue),
		known:  make(map[replica.InstanceID]bool),
	}
}

// onPersist checks one record a node has just made durable against the
// node's previous record of the instance and against every commit of the
// instance anywhere so far.
func (c *checker) onPersist(n *node, rec, prev replica.InstanceRecord, had bool) {
	s := c.s
	c.known[rec.ID] = true
	if rec.CommandUnchanged && (!had || !prev.Command.Equal(rec.Command)) {
		s.fail("durable state", "replica %d: record of %v says its command is unchanged, but it is %v and the previous record's %s",
			n.id, rec.ID, rec.Command, describeRecord(prev, had))
		return
	}
	if had {
		switch {
		case rec.Bal < prev.Bal:
			s.fail("durable state", "replica %d: the promised ballot of %v went down from %d to %d", n.id, rec.ID, prev.Bal, rec.Bal)
			return
		case prev.Phase == replica.Committed && rec.Phase != replica.Committed:
			s.fail("1. agreement", "replica %d: %v left the committed phase: %s", n.id, rec.ID, describeRecord(rec, true))
			return
		}
	}
	if rec.Abal > rec.Bal {
		s.fail("durable state", "replica %d: record of %v with abal=%d > bal=%d", n.id, rec.ID, rec.Abal, rec.Bal)
		return
	}
	if rec.Phase != replica.Committed {
		return
	}
	if rec.Command == nil {
		s.fail("1. agreement", "replica %d committed %v without a command (⊥)", n.id, rec.ID)
		return
	}
	v, ok := c.chosen[rec.ID]
	if ok {
		if !v.cmd.Equal(rec.Command) || !v.deps.Equal(rec.Deps) {
			s.fail("1. agreement", "instance %v: replica %d committed %v deps=%v at t=%d.%d, replica %d commits %v deps=%v",
				rec.ID, v.node, v.cmd, v.deps, v.at/TickUnits, v.at%TickUnits, n.id, rec.Command, rec.Deps)
		}
		return
	}
	// Validity: a committed command is one a client issued, unchanged.
	if !rec.Command.Nop {
		for _, cmd := range rec.Command.Commands {
			want, ok := s.issued[cmdKey{cmd.ClientID, cmd.Seq}]
			if !ok || !(&replica.Payload{Commands: []replica.Command{want}}).Equal(&replica.Payload{Commands: []replica.Command{cmd}}) {
				s.fail("1. agreement", "instance %v committed command %v %s(%s), which no client issued", rec.ID,
					cmdKey{cmd.ClientID, cmd.Seq}, cmd.Access, cmd.Key)
				return
			}
		}
		c.nonNop++
	}
	c.chosen[rec.ID] = chosenValue{cmd: rec.Command.Clone(), deps: rec.Deps.Clone(), node: n.id, at: s.sched.now}
	s.trace(traceEntry{kind: tkCommit, node: n.id, id: rec.ID, note: fmt.Sprintf("%v %v deps=%v abal=%d", rec.ID, rec.Command, clipDeps(rec.Deps), rec.Abal)})
}

// quiescent reports whether every instance known anywhere is committed at
// every node and, unless a no-op, executed by every node.
func (c *checker) quiescent() bool {
	if len(c.chosen) != len(c.known) {
		return false
	}
	for _, n := range c.s.nodes {
		if n.disk.committed != len(c.known) || len(n.disk.executed) != c.nonNop {
			return false
		}
	}
	return true
}

// pendingReport describes what keeps the run from finishing (liveness).
func (c *checker) pendingReport() string {
	s := c.s
	var b strings.Builder
	lines := 0
	line := func(format string, args ...any) {
		if lines++; lines <= 40 {
			fmt.Fprintf(&b, "  "+format+"\n", args...)
		}
	}
	for _, cl := range s.clients {
		if cl.cur != nil {
			line("client %d waits for %v (issued t=%d, %d attempts)", cl.id, cl.cur, cl.cur.call/TickUnits, cl.cur.attempts)
		}
	}
	for _, n := range s.nodes {
		if !n.up {
			line("replica %d is down", n.id)
		}
	}
	for _, id := range sortedIDs(c.known) {
		v, chosen := c.chosen[id]
		for _, n := range s.nodes {
			rec, ok := n.disk.records[id]
			switch {
			case !ok:
				var top uint64
				for x := range n.disk.records {
					if x.Replica == id.Replica {
						top = max(top, x.Slot)
					}
				}
				line("%v unknown at replica %d (committed elsewhere: %v; highest slot of column %d known there: %d)",
					id, n.id, chosen, id.Replica, top)
			case rec.Phase != replica.Committed:
				line("%v at replica %d: %s", id, n.id, describeRecord(rec, true))
			case !v.cmd.Nop && !n.disk.execSet[id]:
				var missing []replica.InstanceID
				for _, d := range rec.Deps.IDs() {
					if r, ok := n.disk.records[d]; !ok || r.Phase != replica.Committed {
						missing = append(missing, d)
					}
				}
				for q := range rec.Deps.HorizonColumns() {
					for s := uint64(1); s <= rec.Deps.Horizon(replica.ReplicaID(q)) && len(missing) < 8; s++ {
						d := replica.InstanceID{Replica: replica.ReplicaID(q), Slot: s}
						if r, ok := n.disk.records[d]; !ok || r.Phase != replica.Committed {
							missing = append(missing, d)
						}
					}
				}
				line("%v committed at replica %d, not executed; deps not committed there: %v (horizon %v)", id, n.id, missing, rec.Deps)
			}
		}
	}
	if lines > 40 {
		fmt.Fprintf(&b, "  ... and %d more\n", lines-40)
	}
	return b.String()
}

// final runs the end-of-run checks.
func (c *checker) final() {
	for _, check := range []func() string{c.interference, c.executionOrder, c.exactlyOnce, c.stateMachines} {
		if msg := check(); msg != "" {
			return
		}
		if c.s.failed() {
			return
		}
	}
}

// interference (invariant 2): of two committed instances whose commands
// interfere, one is in the other's deps.
func (c *checker) interference() string {
	byKey := make(map[string][]replica.InstanceID)
	for _, id := range sortedIDs(c.chosen) {
		v := c.chosen[id]
		if v.cmd.Nop {
			continue
		}
		seen := map[string]bool{}
		for _, cmd := range v.cmd.Commands {
			if !seen[cmd.Key] {
				seen[cmd.Key] = true
				byKey[cmd.Key] = append(byKey[cmd.Key], id)
			}
		}
	}
	for _, key := range sortedKeys(byKey) {
		ids := byKey[key]
		for x := range ids {
			for y := x + 1; y < len(ids); y++ {
				a, b := c.chosen[ids[x]], c.chosen[ids[y]]
				if a.cmd.Interferes(b.cmd) && !a.deps.Contains(ids[y]) && !b.deps.Contains(ids[x]) {
					c.s.fail("2. interference", "%v %v deps=%v and %v %v deps=%v interfere, neither depends on the other",
						ids[x], a.cmd, clipDeps(a.deps), ids[y], b.cmd, clipDeps(b.deps))
					return "fail"
				}
			}
		}
	}
	return ""
}

// executionOrder (invariant 3): every node executed the same instances and,
// per key, the same sequence of writes and deletes, with every read after
// the same number of them.
func (c *checker) executionOrder() string {
	type view struct {
		writes     map[string][]replica.InstanceID
		readsAfter map[replica.InstanceID]map[string]int
	}
	views := make([]view, len(c.s.nodes))
	for i, n := range c.s.nodes {
		w := view{writes: make(map[string][]replica.InstanceID), readsAfter: make(map[replica.InstanceID]map[string]int)}
		for _, id := range n.disk.executed {
			for _, cmd := range c.chosen[id].cmd.Commands {
				if cmd.Access == replica.Read {
					if w.readsAfter[id] == nil {
						w.readsAfter[id] = make(map[string]int)
					}
					w.readsAfter[id][cmd.Key] = len(w.writes[cmd.Key])
				} else {
					w.writes[cmd.Key] = append(w.writes[cmd.Key], id)
				}
			}
		}
		views[i] = w
	}
	ref := views[0]
	for i := 1; i < len(views); i++ {
		w := views[i]
		keys := sortedKeys(ref.writes)
		for _, k := range sortedKeys(w.writes) {
			if _, ok := ref.writes[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			a, b := ref.writes[k], w.writes[k]
			if !slices.Equal(a, b) {
				j := 0
				for j < len(a) && j < len(b) && a[j] == b[j] {
					j++
				}
				c.s.fail("3. execution consistency", "key %q: replicas 0 and %d executed its writes in different orders, first difference at write #%d:\n  r0: %v\n  r%d: %v",
					k, i, j, clipIDs(a, j), i, clipIDs(b, j))
				return "fail"
			}
		}
		for _, id := range sortedIDs(ref.readsAfter) {
			for _, key := range sortedKeys(ref.readsAfter[id]) {
				n := ref.readsAfter[id][key]
				if m, ok := w.readsAfter[id][key]; ok && m != n {
					c.s.fail("3. execution consistency", "read %v of key %q: replica 0 executed it after %d writes of the key, replica %d after %d",
						id, key, n, i, m)
					return "fail"
				}
			}
		}
	}
	return ""
}

// stateMachines (invariant 3, at the state machine): every node applied the
// same set of client commands (after the session table's filtering) and its
// kv store holds the same data.
func (c *checker) stateMachines() string {
	s := c.s
	keys := map[string]bool{}
	for _, cmd := range s.issued {
		keys[cmd.Key] = true
	}
	var reads []plugin.Command
	for _, k := range sortedKeys(keys) {
		reads = append(reads, plugin.Command{Access: plugin.Read, Key: []byte(k)})
	}
	ref := s.nodes[0]
	refData := ref.sm.Apply(reads)
	for _, n := range s.nodes[1:] {
		for _, k := range ref.applied {
			if !n.appliedSet[k] {
				s.fail("3. execution consistency", "replica 0 applied %v (%v) to its state machine, replica %d did not%s",
					k, s.issued[k].Access, n.id, c.whySkipped(n, k))
				return "fail"
			}
		}
		for _, k := range n.applied {
			if !ref.appliedSet[k] {
				s.fail("3. execution consistency", "replica %d applied %v (%v) to its state machine, replica 0 did not%s",
					n.id, k, s.issued[k].Access, c.whySkipped(ref, k))
				return "fail"
			}
		}
		data := n.sm.Apply(reads)
		for i := range reads {
			if string(data[i].Value) != string(refData[i].Value) {
				s.fail("3. execution consistency", "the state machines diverged: key %q is %q at replica 0, %q at replica %d",
					reads[i].Key, refData[i].Value, data[i].Value, n.id)
				return "fail"
			}
		}
	}
	return ""
}

// whySkipped explains why node n did not apply command k.
func (c *checker) whySkipped(n *node, k cmdKey) string {
	var ids []replica.InstanceID
	for _, id := range n.disk.executed {
		for _, cmd := range c.chosen[id].cmd.Commands {
			if cmd.ClientID == k.Client && cmd.Seq == k.Seq {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return " (it never executed an instance carrying it)"
	}
	// Find the client's newest request that n applied before executing it.
	var newer []cmdKey
	for _, a := range n.applied {
		if a.Client == k.Client && a.Seq > k.Seq {
			newer = append(newer, a)
		}
	}
	return fmt.Sprintf(" (it executed it in instance(s) %v; its session table skipped it as a duplicate or superseded; it applied later requests of the client: %v)", ids, newer)
}

// exactlyOnce (invariant 3, per command): every request a client got a
// result for was applied, once, at every node.
func (c *checker) exactlyOnce() string {
	s := c.s
	for _, o := range s.ops {
		if o.status != opOK {
			continue
		}
		for _, n := range s.nodes {
			if !n.appliedSet[o.key()] {
				s.fail("3. execution consistency", "client request %v completed, but replica %d never applied it%s", o, n.id, c.whySkipped(n, o.key()))
				return "fail"
			}
		}
	}
	return ""
}

func clipIDs(s []replica.InstanceID, j int) string {
	lo, hi := max(0, j-2), min(len(s), j+3)
	out := fmt.Sprint(s[lo:hi])
	if lo > 0 {
		out = "... " + out
	}
	if hi < len(s) {
		out += " ..."
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
