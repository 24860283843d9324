package replica

import "fmt"

// The proposal gate: Enqueue's rule against execution livelock.
//
// Execution (Fig. 1) runs a strongly connected component of the committed
// dependency graph only once every instance it reaches is committed. Under
// a saturating hot key, a replica that pipelines (starts instance X' on key
// k while its own X on k is still in flight) lets a dependency cycle with a
// concurrent instance Y of another replica extend to X', then to that
// replica's Y', and so on: the component never closes and nothing on the
// key executes until the load stops (efficient/epaxos #14, #19; our
// livelock_test.go showed waits of ~16,000 of ~17,000 steps).
//
// The gate stops a replica from being the one that extends the chain: a
// command that interferes with a command of an instance this replica
// coordinates and that has not committed here yet waits, and is proposed,
// batched with every other command released at the same moment, once no
// such instance is left. So a replica has at most one uncommitted instance
// per key and per client session at any time, and its next instance on k is
// proposed only after its previous one on k committed.
//
// Why that bounds the chains in practice: X' can only join a cycle with an
// instance Y that was still being pre-accepted when X' was proposed, that
// is, Y must have been proposed after (roughly) X's commit minus one
// message delay. Y itself could only be cyclic with X if it was proposed
// within one message delay of X. Both hold only if X took no longer than
// about two message delays to commit, which is the fast path, on which X
// has no cycle to extend. With arbitrary message delays a chain can still
// grow, but each link now needs a delay pattern that recurs only by
// chance, so chains end with probability one and their length is
// geometric, not the length of the load (measured by
// TestCluster_HotKeyExecutionDelayStaysBounded and the 100% conflict
// benchmark's execution latency time series). EPaxos*'s agreed values are
// (cmd, dep) only; a hard bound under an adversarial scheduler needs an
// agreed order such as sequence numbers or timestamps, which EPaxos* does
// not have and this gate does not add.
//
// Safety does not depend on the gate: it only delays when a command is
// proposed. Each held command is proposed exactly once, in arrival order
// among the commands it interferes with.
type gate struct {
	maxBatch int
	keys     map[string]int // key -> own uncommitted gated instances touching it
	sessions map[uint64]int // client id -> the same, per session
	held     []Command      // waiting, in arrival order
	released bool           // an instance left the gate since the last release
}

func newGate(maxBatch int) *gate {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	return &gate{maxBatch: maxBatch, keys: make(map[string]int), sessions: make(map[uint64]int)}
}

// DefaultMaxBatch is used when Config.MaxBatch is zero.
const DefaultMaxBatch = 1024

// blocked reports whether c interferes with an own uncommitted instance.
func (g *gate) blocked(c Command) bool {
	return g.keys[c.Key] > 0 || (c.ClientID != 0 && g.sessions[c.ClientID] > 0)
}

func (g *gate) count(p *Payload, delta int) {
	for _, c := range p.Commands {
		g.keys[c.Key] += delta
		if g.keys[c.Key] == 0 {
			delete(g.keys, c.Key)
		}
		if c.ClientID != 0 {
			g.sessions[c.ClientID] += delta
			if g.sessions[c.ClientID] == 0 {
				delete(g.sessions, c.ClientID)
			}
		}
	}
}

// Enqueue hands the replica client commands to propose. A command that
// interferes with an instance this replica coordinates and that has not
// committed here waits until none does (see the gate's comment in hold.go);
// the others are proposed now, in instances of at most Config.MaxBatch
// commands. Commands are validated as by Propose; an invalid batch is
// refused whole.
func (r *Replica) Enqueue(cmds []Command) error {
	if err := validateBatch(cmds); err != nil {
		return err
	}
	var now []Command
	for _, c := range cmds {
		if r.gate.blocked(c) {
			r.gate.held = append(r.gate.held, c)
		} else {
			now = append(now, c)
		}
	}
	r.proposeGated(now)
	return nil
}

// Held returns how many commands wait in the gate.
func (r *Replica) Held() int { return len(r.gate.held) }

// proposeGated starts instances for cmds, at most maxBatch commands each,
// and counts them in the gate until they commit.
func (r *Replica) proposeGated(cmds []Command) {
	for len(cmds) > 0 {
		n := min(len(cmds), r.gate.maxBatch)
		p := &Payload{Commands: cmds[:n:n]}
		cmds = cmds[n:]
		id := r.nextOwnID()
		in := r.instance(id)
		in.gated = true
		r.gate.count(p, +1)
		r.submit(id, p)
	}
}

// ungate is called when in commits: if it held keys in the gate they are
// free again, and the held commands are looked at after the current input.
func (r *Replica) ungate(in *instance) {
	if !in.gated {
		return
	}
	in.gated = false
	if in.initCmd != nil {
		r.gate.count(in.initCmd, -1)
	}
	r.gate.released = true
}

// releaseHeld proposes, in arrival order, every held command no longer
// blocked. A command stays held if an earlier held command it interferes
// with stays held, so commands on one key are proposed in arrival order.
func (r *Replica) releaseHeld() {
	if !r.gate.released {
		return
	}
	r.gate.released = false
	if len(r.gate.held) == 0 {
		return
	}
	var now, still []Command
	stillKeys := make(map[string]bool)
	stillSessions := make(map[uint64]bool)
	for _, c := range r.gate.held {
		if r.gate.blocked(c) || stillKeys[c.Key] || (c.ClientID != 0 && stillSessions[c.ClientID]) {
			still = append(still, c)
			stillKeys[c.Key] = true
			if c.ClientID != 0 {
				stillSessions[c.ClientID] = true
			}
			continue
		}
		now = append(now, c)
	}
	r.gate.held = still
	r.proposeGated(now)
}

// validateBatch checks a batch handed to Propose or Enqueue.
func validateBatch(cmds []Command) error {
	if len(cmds) == 0 {
		return fmt.Errorf("propose: empty batch")
	}
	for i, c := range cmds {
		if !c.Access.Valid() {
			return fmt.Errorf("propose: command %d: invalid access %d", i, c.Access)
		}
	}
	return nil
}
