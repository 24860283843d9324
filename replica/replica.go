package replica

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// DefaultTimeoutTicks is used when Config.TimeoutTicks is zero.
const DefaultTimeoutTicks = 10

// Config configures one replica's core.
type Config struct {
	// ID is this replica's pid, in [0, N).
	ID ReplicaID
	// N is the number of replicas: odd, at least 3.
	N int
	// Thrifty sends PreAccept to a fast quorum and Accept to a slow quorum
	// only, falling back to every replica when they do not answer in time.
	Thrifty bool
	// TimeoutTicks is how many ticks a coordinator waits for replies before
	// it resends to the replicas that have not answered, and how long it
	// waits for a full fast quorum before settling for the slow path.
	TimeoutTicks int
	// Seed seeds the core's only randomness: the delays that spread
	// competing recoveries apart. Equal seeds and inputs give equal outputs.
	Seed uint64
	// MaxBatch bounds the commands of one instance started by Enqueue
	// (DefaultMaxBatch when zero).
	MaxBatch int
}

// Replica is the protocol state of one replica. See the package doc for how
// to drive it.
type Replica struct {
	id      ReplicaID
	q       Quorums
	thrifty bool
	timeout uint64

	now       uint64 // ticks since start
	nextSlot  uint64 // next slot of this replica's own column
	reserved  uint64 // own slots up to here are durably reserved (reserve.go)
	reserving uint64 // the reservation last asked for in a Ready
	// lost are the own slots up to the restored reservation this replica
	// has no record of: treated as interfering with everything until their
	// command or decision is known (reserve.go).
	lost      map[InstanceID]bool
	instances map[InstanceID]*instance
	index     *interference
	leading   map[InstanceID]*instance // instances this replica coordinates
	exec      *executor
	rand      *rand.Rand
	gate      *gate // Enqueue's held commands (hold.go)
	counters  Counters

	// Recovery (Fig. 5) and the waits that start it.
	recovering map[InstanceID]*instance    // instances this replica recovers
	watched    map[InstanceID]*watchState  // instances this replica waits on
	waiters    map[InstanceID][]InstanceID // id' -> recoveries waiting on id' (lines 69–79)
	waitingFor map[InstanceID]uint32       // Waiting(id', k) received: max k per id'
	columns    []column                    // per replica: what this replica knows of its column (watch.go)

	// Output accumulated for the next Ready.
	dirty    []*instance
	messages []Message
	early    []Message // requests that may leave before dirty is durable
}

// New returns a replica with empty state.
func New(cfg Config) (*Replica, error) {
	q, err := NewQuorums(cfg.N)
	if err != nil {
		return nil, err
	}
	if int(cfg.ID) >= cfg.N {
		return nil, fmt.Errorf("replica id %d out of range for %d replicas", cfg.ID, cfg.N)
	}
	timeout := cfg.TimeoutTicks
	if timeout <= 0 {
		timeout = DefaultTimeoutTicks
	}
	r := &Replica{
		id:        cfg.ID,
		q:         q,
		thrifty:   cfg.Thrifty,
		timeout:   uint64(timeout),
		nextSlot:  1,
		instances: make(map[InstanceID]*instance),
		index:     newInterference(cfg.N),
		leading:   make(map[InstanceID]*instance),
		rand:      rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.ID))),

		recovering: make(map[InstanceID]*instance),
		watched:    make(map[InstanceID]*watchState),
		waiters:    make(map[InstanceID][]InstanceID),
		waitingFor: make(map[InstanceID]uint32),
		columns:    make([]column, cfg.N),
		gate:       newGate(cfg.MaxBatch),
		lost:       make(map[InstanceID]bool),
	}
	r.exec = newExecutor(r, cfg.N)
	return r, nil
}

// ID returns this replica's pid.
func (r *Replica) ID() ReplicaID { return r.id }

// Quorums returns the quorum sizes this replica uses.
func (r *Replica) Quorums() Quorums { return r.q }

// Ready is the work the caller must do next, in the order of the package doc.
type Ready struct {
	// Instances holds the new durable state of every instance changed since
	// the previous Ready; persist them before sending Messages.
	Instances []InstanceRecord
	// Messages are to be sent after Instances, and those of every earlier
	// Ready, are durable.
	Messages []Message
	// Early are requests that may be sent at once, before Instances are
	// durable: a coordinator's PreAccepts for its own instances in reserved
	// slots (reserve.go).
	Early []Message
	// ReserveSlots, when not zero, asks for a durable record that this
	// replica's own slots up to ReserveSlots may be in use. Once it is
	// durable, call SlotsReserved(ReserveSlots); until then nothing is sent
	// early for the slots it adds. It must be reloaded as
	// HardState.ReservedSlots.
	ReserveSlots uint64
	// Execute lists committed commands in execution order (no-ops omitted).
	// Apply them only after Instances, and those of every earlier Ready,
	// are durable.
	Execute []Execution
}

// Execution is one committed instance ready to be applied.
type Execution struct {
	Instance InstanceID
	Commands []Command
}

// NeedsSync reports whether Instances must be on stable storage (synced)
// before Messages are sent and Execute applied. When it is false the
// records may be written without waiting for the sync, provided a later
// synced write makes them durable in order (a write-ahead log does), and
// Messages and Execute may proceed at once:
//
//   - Messages promise the sender's records (a reply its vote, a
//     coordinator's Commit its decision, Fig. 5 line 56): a Ready with
//     messages, or with a reservation to confirm, is synced.
//   - Without messages, nothing leaves the process that depends on this
//     Ready's records. The coordinator's own pre-accepted record, whose
//     PreAccepts left early, is made durable by the synced write of the
//     Ready that decides the instance (it carries the Commits or Accepts),
//     before that decision leaves. A commit learned from a Commit message
//     is a decided value: executing it (and answering a client waiting
//     here) before its record is durable is safe, because after a crash
//     the replica rebuilds its state machine from its durable executed
//     log and learns the same decision again, and execution order is a
//     function of decided values. Its own decisions always come with
//     Commit messages, so are synced.
func (rd Ready) NeedsSync() bool {
	return len(rd.Messages) > 0 || rd.ReserveSlots != 0
}

// IsEmpty reports whether there is nothing to do.
func (rd Ready) IsEmpty() bool {
	return len(rd.Instances) == 0 && len(rd.Messages) == 0 && len(rd.Early) == 0 &&
		rd.ReserveSlots == 0 && len(rd.Execute) == 0
}

// HasReady reports whether Ready would return a non-empty Ready.
func (r *Replica) HasReady() bool {
	return len(r.dirty) > 0 || len(r.messages) > 0 || len(r.early) > 0 || r.exec.hasOutput()
}

// Ready returns the accumulated work and clears it; see the package doc.
func (r *Replica) Ready() Ready {
	var rd Ready
	if len(r.dirty) > 0 {
		rd.Instances = make([]InstanceRecord, len(r.dirty))
		for i, in := range r.dirty {
			rd.Instances[i] = in.record()
			in.dirty = false
		}
		r.dirty = r.dirty[:0]
	}
	rd.Messages, r.messages = r.messages, nil
	rd.Early, r.early = r.early, nil
	rd.ReserveSlots = r.reserveAhead()
	rd.Execute = r.exec.takeOutput()
	return rd
}

// Propose starts a new instance, coordinated by this replica, that decides
// the batch cmds, and returns its id. The commands are executed, on every
// replica, once the instance commits and its dependencies have executed.
//
// Propose starts the instance at once, whatever else is in flight; the
// daemon uses Enqueue, which holds back commands that would extend a
// dependency chain (hold.go).
func (r *Replica) Propose(cmds []Command) (InstanceID, error) {
	if err := validateBatch(cmds); err != nil {
		return InstanceID{}, err
	}
	id := r.nextOwnID()
	r.submit(id, &Payload{Commands: append([]Command(nil), cmds...)})
	return id, nil
}

// nextOwnID allocates the next slot of this replica's own column.
func (r *Replica) nextOwnID() InstanceID {
	id := InstanceID{Replica: r.id, Slot: r.nextSlot}
	r.nextSlot++
	return id
}

// Tick advances the replica's clock by one interval: coordinators resend
// phases that have waited TimeoutTicks without completing, and instances
// this replica has waited on too long are fetched from peers or recovered.
func (r *Replica) Tick() {
	r.now++
	// Handle the expired phases in instance-id order, not map order: the
	// messages and records they produce must not depend on Go's randomised
	// map iteration, or the core is not deterministic (doc.go) and a
	// simulation seed cannot be replayed.
	var expired []*instance
	for _, in := range r.leading {
		if r.now-in.lead.since >= r.timeout {
			expired = append(expired, in)
		}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i].id.Less(expired[j].id) })
	for _, in := range expired {
		r.onLeaderTimeout(in)
	}
	r.watchGaps()
	r.checkWatched()
	r.probeColumns()
	r.releaseHeld()
}

// Step hands the replica one message received from a peer. A message that
// no correct peer could have sent is rejected with an error and changes
// nothing; the caller should log it. Messages that are merely stale
// (superseded ballot, finished instance) are ignored without error.
func (r *Replica) Step(m Message) error {
	if err := r.validate(m); err != nil {
		return fmt.Errorf("reject %s from %d: %w", m.Type, m.From, err)
	}
	defer r.releaseHeld()
	switch m.Type {
	case MsgPreAccept:
		r.onPreAccept(m)
	case MsgPreAcceptOK:
		r.onPreAcceptOK(m)
	case MsgAccept:
		r.onAccept(m)
	case MsgAcceptOK:
		r.onAcceptOK(m)
	case MsgCommit:
		if err := r.onCommit(m); err != nil {
			return fmt.Errorf("reject Commit from %d: %w", m.From, err)
		}
	case MsgNack:
		r.onNack(m)
	case MsgRecover:
		r.onRecover(m)
	case MsgRecoverOK:
		r.onRecoverOK(m)
	case MsgValidate:
		r.onValidate(m)
	case MsgValidateOK:
		r.onValidateOK(m)
	case MsgWaiting:
		r.onWaiting(m)
	case MsgFetch:
		r.onFetch(m)
	}
	return nil
}

// send queues m for the next Ready, filling in From.
func (r *Replica) send(m Message) {
	m.From = r.id
	r.messages = append(r.messages, m)
}

// peers returns every replica id except this one, in the order a thrifty
// coordinator prefers them: the replicas after it, wrapping around.
func (r *Replica) peers() []ReplicaID {
	out := make([]ReplicaID, 0, r.q.N-1)
	for i := 1; i < r.q.N; i++ {
		out = append(out, ReplicaID((int(r.id)+i)%r.q.N))
	}
	return out
}

// instance returns the state for id, creating it (phase INITIAL, ⊥) if new.
func (r *Replica) instance(id InstanceID) *instance {
	in := r.instances[id]
	if in == nil {
		in = &instance{id: id}
		r.instances[id] = in
		r.learnColumn(id)
		if id.Replica == r.id && id.Slot >= r.nextSlot {
			// A slot of this replica's own column that it has not used:
			// no correct peer can know one (slots are persisted before
			// any message names them), but a new proposal must never take
			// a slot that some state already exists for.
			r.nextSlot = id.Slot + 1
		}
	}
	return in
}

// markDirty schedules in's record for the next Ready.
func (r *Replica) markDirty(in *instance) {
	if !in.dirty {
		in.dirty = true
		r.dirty = append(r.dirty, in)
	}
}

// learnCommand indexes in's command for dependency computation the first
// time it becomes known.
func (r *Replica) learnCommand(in *instance) {
	c := in.cmd
	if c == nil || c.Nop {
		// A restored record of an instance decided (or accepted) as a
		// no-op still carries the command it was proposed with.
		c = in.initCmd
	}
	if c != nil {
		r.forgetLost(in.id)
	}
	if in.indexed || c == nil || c.Nop {
		return
	}
	in.indexed = true
	r.index.add(in.id, c)
}

// conflicts computes {id' | cmd[id'] ⋈ p} over this replica's state, where
// cmd[id'] is the command id' was proposed with even if recovery has since
// replaced it by a no-op here. The paper's Nop ⋈ nothing would leave such an
// id' out, and that is unsafe with the optimized recovery: Fig. 5 line 65's
// second disjunct (and the committed-invalidator rule) assume that a process
// that knew id' before pre-accepting id put id' in id's deps. Counterexample
// found by the simulation (EPAXOS_SIM_SEED=44 go test ./sim -run
// '^TestSim_N3_Partitions$', N=3): 0.20 is recovered as a no-op at r0 and
// r2 but stays pre-accepted at r1; r0 then fast-commits 0.32 with r2, deps
// without 0.20; r2 recovers 0.32 with Q = {r1, r2}, r1 reports 0.20 as an
// invalidator whose initial coordinator r0 is outside Q, and line 65 picks
// a no-op for the fast-committed 0.32. Extra deps never break agreement or
// visibility; a no-op dependency is only waited for, never executed.
//
// It returns the set with h's horizon and, listed, every such id' above it
// (h's own listed ids are not included).
func (r *Replica) conflicts(p *Payload, self InstanceID, h Deps) Deps {
	d := NewDepsWithHorizon(h.horizon, r.index.conflicts(p, self, h).IDs()...)
	if p == nil || p.Nop {
		return d
	}
	return r.withLost(d, self)
}
