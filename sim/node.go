package sim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/plugins/kv"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// node is one simulated replica, wrapped the way the daemon wraps the core:
//
//   - core: the protocol core (volatile);
//   - disk: its stable storage (survives crashes);
//   - table: the replicated client-session table (volatile, rebuilt by replay);
//   - sm: the kv state machine (volatile, rebuilt by replay);
//   - pending: the client requests waiting here for a result (volatile).
//
// After every input (a message, a tick, a proposal) the node handles the
// core's Ready as package replica's doc requires — sometimes a little later,
// as a daemon that batches inputs would, so that a crash can also lose work
// the core did but never handed out. A crash drops everything but the disk.
type node struct {
	s   *Sim
	id  int
	cfg replica.Config

	up           bool
	incarnation  int // bumped by every crash; stale scheduled work checks it
	unsyncedLost int // writes that crashes dropped before they were synced
	core         *replica.Replica
	disk         *disk
	table        *session.Table
	sm           *kv.Store
	pending      []*attempt // client requests waiting for a result, in arrival order

	// applied lists the commands this incarnation applied to sm (replay
	// included), in order; prevApplied is the previous incarnation's list,
	// which the replay after a restart must reproduce as a prefix.
	applied     []cmdKey
	appliedSet  map[cmdKey]bool
	prevApplied []cmdKey

	readyScheduled bool
	tickPeriod     int64
	crashes        int
}

func newNode(s *Sim, id int) *node {
	n := &node{
		s:  s,
		id: id,
		cfg: replica.Config{
			ID: replica.ReplicaID(id), N: s.p.N, Thrifty: s.p.thrifty,
			TimeoutTicks: s.p.timeoutTicks, Seed: s.coreSeed,
		},
		disk:       newDisk(),
		tickPeriod: TickUnits + s.p.tickDrift[id],
	}
	core, err := replica.New(n.cfg)
	if err != nil {
		s.fail("harness", "replica.New: %v", err)
		return n
	}
	n.boot(core)
	return n
}

// boot makes n up with core and fresh volatile state.
func (n *node) boot(core *replica.Replica) {
	n.up = true
	n.core = core
	n.table = session.New()
	n.sm = kv.New()
	n.applied = nil
	n.appliedSet = make(map[cmdKey]bool)
	n.readyScheduled = false
}

// ---------------------------------------------------------------------------
// Inputs.

// step hands the core a message from a peer.
func (n *node) step(m replica.Message) {
	if err := n.core.Step(m); err != nil {
		inv := "protocol"
		if strings.Contains(err.Error(), "agreement violated") {
			inv = "1. agreement" // the core refuses a Commit that contradicts its own
		}
		n.s.fail(inv, "replica %d rejected a message from a correct peer: %v", n.id, err)
		return
	}
	n.afterInput()
}

// tick advances the core's clock by one tick.
func (n *node) tick() {
	n.s.fp.u64(3, uint64(n.id))
	if n.s.traceAll {
		n.s.trace(traceEntry{kind: tkTick, node: n.id})
	}
	n.core.Tick()
	n.afterInput()
}

// propose hands one client command to the core's gate (Enqueue), as the
// daemon does after registering the client's waiter in the session table.
func (n *node) propose(cmd replica.Command) {
	if err := n.core.Enqueue([]replica.Command{cmd}); err != nil {
		n.s.fail("harness", "replica %d: Enqueue(%v): %v", n.id, cmd, err)
		return
	}
	n.s.trace(traceEntry{kind: tkPropose, node: n.id, held: n.core.Held(), cmd: cmdKey{cmd.ClientID, cmd.Seq}})
	n.afterInput()
}

// afterInput handles the Ready now or, sometimes, a little later.
func (n *node) afterInput() {
	if n.readyScheduled {
		return
	}
	s := n.s
	if s.rng.Float64() < s.p.deferReady {
		n.readyScheduled = true
		inc := n.incarnation
		s.sched.after(1+s.rng.Int64N(TickUnits), func() {
			if n.up && n.incarnation == inc {
				n.readyScheduled = false
				n.handleReady()
			}
		})
		return
	}
	n.handleReady()
}

// ---------------------------------------------------------------------------
// Ready.

// handleReady carries out one Ready in the order package replica requires:
// (1) persist the records and the executed ids (synced), (2) send the
// messages, (3) apply the executions to the session table and the state
// machine and answer the waiting clients. A crash may strike between the
// steps; then the rest of the Ready is lost.
func (n *node) handleReady() {
	if !n.up || !n.core.HasReady() {
		return
	}
	rd := n.core.Ready()
	if len(rd.Early) > 0 {
		n.sendEarly(rd.Early)
		if n.s.failed() || n.maybeCrashMidReady("after sending early requests, before persisting the Ready") {
			return
		}
	}
	if n.s.p.Breakage == BreakSendBeforePersist {
		n.send(rd.Messages)
		if n.maybeCrashMidReady("after sending a Ready, before persisting it") {
			return
		}
		n.persist(rd)
	} else {
		n.persist(rd)
		if n.maybeCrashMidReady("after persisting a Ready, before sending it") {
			return
		}
		n.send(rd.Messages)
	}
	if n.s.failed() || n.maybeCrashMidReady("after sending a Ready, before applying it") {
		return
	}
	for _, e := range rd.Execute {
		n.apply(e.Instance, e.Commands, false)
	}
}

// persist writes a Ready's records, reservation and executed ids, and
// syncs them if the Ready needs it (replica.Ready.NeedsSync), as the
// daemon's persister does: otherwise they stay pending and a crash before
// the next sync loses them.
func (n *node) persist(rd replica.Ready) {
	s := n.s
	defer func() {
		if rd.NeedsSync() && !s.failed() {
			n.disk.sync()
			if rd.ReserveSlots != 0 {
				n.core.SlotsReserved(rd.ReserveSlots)
			}
		}
	}()
	if rd.ReserveSlots != 0 {
		n.disk.reserved = max(n.disk.reserved, rd.ReserveSlots)
	}
	for _, rec := range rd.Instances {
		s.fp.record(n.id, rec)
		prev, had := n.disk.put(rec)
		s.checks.onPersist(n, rec, prev, had)
	}
	for _, e := range rd.Execute {
		rec, ok := n.disk.records[e.Instance]
		if !ok || rec.Phase != replica.Committed || rec.Command.Nop ||
			!rec.Command.Equal(&replica.Payload{Commands: e.Commands}) {
			s.fail("3. execution consistency", "replica %d executes %v with %v, but its disk holds %v",
				n.id, e.Instance, &replica.Payload{Commands: e.Commands}, describeRecord(rec, ok))
			return
		}
		if !n.disk.appendExecuted(e.Instance) {
			s.fail("3. execution consistency", "replica %d executes instance %v a second time", n.id, e.Instance)
			return
		}
	}
}

// sendEarly puts a Ready's early requests on the network before its records
// are durable, checking that each is one the core may send early: a
// PreAccept of the node's own instance in a slot its disk has durably
// reserved, so that a restart never proposes that slot again.
func (n *node) sendEarly(msgs []replica.Message) {
	for _, m := range msgs {
		if m.From != replica.ReplicaID(n.id) || m.Instance.Replica != m.From || m.Ballot != 0 ||
			m.Type != replica.MsgPreAccept || m.Instance.Slot > n.disk.durableRes {
			n.s.fail("persist-before-send", "replica %d sent %v before persisting it, but only PreAccepts of its own durably reserved slots (up to %d) may go early",
				n.id, m, n.disk.durableRes)
			return
		}
		n.s.net.send(m)
	}
}

// send puts a Ready's messages on the network, checking first that each is
// backed by the sender's durable state.
func (n *node) send(msgs []replica.Message) {
	for _, m := range msgs {
		if m.From != replica.ReplicaID(n.id) {
			n.s.fail("protocol", "replica %d emitted a message from %d: %v", n.id, m.From, m)
			return
		}
		if !n.s.p.NoPromiseCheck {
			if why := checkPromise(n.disk, m); why != "" {
				n.s.fail("persist-before-send", "replica %d sent %v, but %s", n.id, m, why)
				return
			}
		}
		n.s.net.send(m)
	}
}

// apply hands one executed instance's commands to the session table and the
// state machine, as the daemon's applier does: Filter drops duplicates and
// superseded requests, the state machine applies the rest, Record stores the
// results and wakes the clients waiting here. replay is set while a
// restarting node rebuilds its state from its executed log.
func (n *node) apply(id replica.InstanceID, cmds []replica.Command, replay bool) {
	s := n.s
	s.fp.u64(4, uint64(n.id)<<32^uint64(id.Replica)<<24^id.Slot)
	s.trace(traceEntry{kind: tkExec, node: n.id, id: id, replay: replay})
	scmds := make([]session.Command, len(cmds))
	for i, c := range cmds {
		scmds[i] = session.Command{
			Client: c.ClientID, Seq: c.Seq,
			Cmd: plugin.Command{Access: plugin.Access(c.Access), Key: []byte(c.Key), Value: c.Value},
		}
	}
	slots, batch := n.table.Filter(scmds)
	var results []plugin.Result
	if len(batch) > 0 {
		results = n.sm.Apply(batch)
		if len(results) != len(batch) {
			s.fail("harness", "kv returned %d results for %d commands", len(results), len(batch))
			return
		}
	}
	n.table.Record(scmds, slots, results)
	for i, c := range cmds {
		k := cmdKey{c.ClientID, c.Seq}
		if slots[i] >= 0 {
			if n.appliedSet[k] {
				s.fail("3. execution consistency", "replica %d applied command %v to its state machine twice (instance %v)", n.id, k, id)
				return
			}
			n.appliedSet[k] = true
			n.applied = append(n.applied, k)
			if _, ok := s.firstApplied[k]; !ok && !replay {
				s.firstApplied[k] = s.sched.now
			}
		}
		n.wake(k)
	}
}

// wake answers the client requests waiting here for k, whose result the
// session table has just delivered to their channels.
func (n *node) wake(k cmdKey) {
	keep := n.pending[:0]
	for _, a := range n.pending {
		if a.op.key() != k {
			keep = append(keep, a)
			continue
		}
		select {
		case r := <-a.ch:
			n.s.reply(a, reply{result: r})
		default:
			keep = append(keep, a) // not delivered: should not happen; the client times out
		}
	}
	clear(n.pending[len(keep):])
	n.pending = keep
}

// ---------------------------------------------------------------------------
// Client requests.

// request is a client request arriving here: register the waiter in the
// session table and propose the command, or answer at once if the table
// already has the result (a retry of an applied request).
func (n *node) request(a *attempt) {
	r, done, ch, cancel := n.table.Wait(a.op.cmd.ClientID, a.op.cmd.Seq)
	if done {
		n.s.reply(a, reply{result: r})
		return
	}
	a.ch, a.cancel, a.inc = ch, cancel, n.incarnation
	n.pending = append(n.pending, a)
	n.propose(a.op.cmd)
}

// abandon forgets a request whose client stopped waiting.
func (n *node) abandon(a *attempt) {
	if !n.up || a.inc != n.incarnation || a.cancel == nil {
		return
	}
	if i := slices.Index(n.pending, a); i >= 0 {
		n.pending = slices.Delete(n.pending, i, i+1)
	}
	a.cancel()
	a.cancel = nil
}

// ---------------------------------------------------------------------------
// Crashes and restarts.

// maybeCrashMidReady crashes the node between two steps of a Ready with the
// configured probability, while crashes are on. It reports whether it did.
func (n *node) maybeCrashMidReady(where string) bool {
	s := n.s
	prob := s.p.crashMidReady
	if s.p.Breakage == BreakSendBeforePersist {
		prob *= 20
	}
	if !s.faultsOn || !s.p.crashes() || s.rng.Float64() >= prob {
		return false
	}
	n.crash(where)
	s.scheduleRestart(n)
	return true
}

// crash drops everything volatile: the core (and with it any work it did
// that was not handed out and persisted), the session table, the state
// machine and the waiting requests, whose clients see their connection
// reset.
func (n *node) crash(where string) {
	s := n.s
	s.fp.u64(5, uint64(n.id))
	s.trace(traceEntry{kind: tkCrash, node: n.id, note: where})
	n.up = false
	n.incarnation++
	n.crashes++
	if lost := n.disk.crash(); lost > 0 {
		n.unsyncedLost += lost
		s.trace(traceEntry{kind: tkCrash, node: n.id, note: fmt.Sprintf("%d unsynced writes lost", lost)})
	}
	n.core, n.table, n.sm = nil, nil, nil
	n.prevApplied, n.applied, n.appliedSet = n.applied, nil, nil
	for _, a := range n.pending {
		s.reply(a, reply{reset: true})
	}
	clear(n.pending)
	n.pending = nil
	n.readyScheduled = false
}

// restart brings the node back from its disk: a new core with the same
// config restores the persisted HardState, and the session table and the
// state machine are rebuilt by replaying the executed log's commands in
// order. The replay and what the node applied before the crash must agree
// on their common prefix.
func (n *node) restart() {
	s := n.s
	s.fp.u64(6, uint64(n.id))
	s.trace(traceEntry{kind: tkRestart, node: n.id})
	core, err := replica.New(n.cfg)
	if err != nil {
		s.fail("harness", "replica.New: %v", err)
		return
	}
	if err := core.Restore(n.disk.hardState()); err != nil {
		s.fail("recovery", "replica %d cannot restore its own disk: %v", n.id, err)
		return
	}
	n.boot(core)
	for _, id := range n.disk.executed {
		rec := n.disk.records[id]
		n.apply(id, rec.Command.Clone().Commands, true)
		if s.failed() {
			return
		}
	}
	// The replay and what was applied before the crash agree on their
	// common prefix. The replay may be shorter (executions after the last
	// synced write were lost with it, and happen again when their commits
	// are learned again: the execution-order invariant checks them across
	// replicas) or longer (the crash struck between persisting a Ready and
	// applying it).
	if m := min(len(n.applied), len(n.prevApplied)); !slices.Equal(n.applied[:m], n.prevApplied[:m]) {
		s.fail("3. execution consistency", "replica %d: replaying its executed log after a restart applied %v, before the crash it had applied %v",
			n.id, clipKeys(n.applied), clipKeys(n.prevApplied))
		return
	}
	n.prevApplied = nil
	n.handleReady()
}

// ---------------------------------------------------------------------------

// checkPromise checks persist-before-send (package replica's doc): what a
// message promises is on the sender's disk. A Ready may gather several
// inputs, so the disk may already hold a later state of the instance than
// the one the message was built from; the check accepts any state at least
// as far along (bal only grows; a phase only advances; a commit is final).
// It returns why the message is not backed, or "".
func checkPromise(d *disk, m replica.Message) string {
	rec, ok := d.durableRecord(m.Instance)
	bad := func(what string) string {
		return fmt.Sprintf("its disk holds %s, which %s", describeRecord(rec, ok), what)
	}
	initial := ok && rec.Phase == replica.PreAccepted && rec.Bal == 0
	switch m.Type {
	case replica.MsgPreAccept:
		if !ok || rec.InitCommand == nil || initial && (!rec.InitCommand.Equal(m.Command) || !rec.InitDeps.Equal(m.Deps)) {
			return bad("is not the initial command and deps it pre-accepts")
		}
	case replica.MsgPreAcceptOK:
		if !ok || rec.Phase < replica.PreAccepted || initial && !rec.Deps.Equal(m.Deps) {
			return bad("is not the pre-accepted deps the reply promises")
		}
	case replica.MsgAccept:
		accepted := ok && rec.Phase == replica.Accepted && rec.Abal >= m.Ballot
		if !ok || rec.Phase != replica.Committed && !accepted ||
			accepted && rec.Abal == m.Ballot && (!rec.Command.Equal(m.Command) || !rec.Deps.Equal(m.Deps)) {
			return bad("is not the value its Accept proposes")
		}
	case replica.MsgAcceptOK:
		if !ok || rec.Phase < replica.Accepted || rec.Phase == replica.Accepted && rec.Abal < m.Ballot {
			return bad("has not accepted at the promised ballot")
		}
	case replica.MsgCommit:
		if !ok || rec.Phase != replica.Committed || !m.CommandElided && !rec.Command.Equal(m.Command) || !rec.Deps.Equal(m.Deps) {
			return bad("is not the committed value it announces")
		}
	case replica.MsgRecoverOK, replica.MsgValidateOK:
		if !ok || rec.Bal < m.Ballot {
			return bad("has not promised the ballot it answers")
		}
	}
	return ""
}

func describeRecord(rec replica.InstanceRecord, ok bool) string {
	if !ok {
		return "no record"
	}
	return fmt.Sprintf("{%v phase=%v bal=%d abal=%d cmd=%v deps=%v initCmd=%v initDeps=%v}",
		rec.ID, rec.Phase, rec.Bal, rec.Abal, rec.Command, rec.Deps, rec.InitCommand, rec.InitDeps)
}

func clipKeys(ks []cmdKey) string {
	if len(ks) > 12 {
		return fmt.Sprintf("%v ... (%d) ... %v", ks[:4], len(ks), ks[len(ks)-4:])
	}
	return fmt.Sprint(ks)
}
