package sim

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"time"

	"github.com/epaxosd/epaxosd/replica"
)

// Options are the knobs of a run that do not change what happens in it.
type Options struct {
	// Trace, if set, receives every event of the run as it happens.
	Trace func(line string)
	// ArtifactsDir is where a failed linearizability check writes its
	// porcupine visualisation; "" means a new directory under os.TempDir.
	ArtifactsDir string
	// LinearizabilityTimeout bounds porcupine's search; 0 means 5s. A
	// timeout is not a failure when the witness check (linearizability.go)
	// has shown the history linearizable; it is counted in Stats.
	LinearizabilityTimeout time.Duration
}

// Result is the outcome of one run.
type Result struct {
	Seed        uint64
	Params      string // the configuration and the seed's random choices
	Fingerprint uint64 // hash of every event: equal seeds give equal values
	Stats       Stats
	Failure     *Failure // nil if every invariant held
}

// Stats counts what happened in a run.
type Stats struct {
	Events                                  int
	Ticks                                   int64 // virtual time at the end, in ticks
	Sent, Delivered, Lost, Duplicated, Cuts int
	Partitions, Crashes                     int
	UnsyncedLost                            int // writes not yet synced that crashes dropped
	Ops, OpsOK, OpsUnknown, Attempts        int
	Instances, Nops                         int
	// PorcupineTimeouts counts histories porcupine could not decide in time
	// (the witness check had shown them linearizable).
	PorcupineTimeouts int
}

// Failure is a violated invariant.
type Failure struct {
	Invariant string // e.g. "1. agreement", "5. liveness"
	Detail    string
	At        int64  // virtual time, in units
	Trace     string // the last events before the failure, oldest first
	// Visualization is the path of porcupine's HTML visualisation of a
	// non-linearizable history, if one was written.
	Visualization string
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invariant %s violated at t=%d.%d:\n  %s\n", f.Invariant, f.At/TickUnits, f.At%TickUnits,
		strings.ReplaceAll(f.Detail, "\n", "\n  "))
	if f.Visualization != "" {
		fmt.Fprintf(&b, "porcupine visualisation: %s\n", f.Visualization)
	}
	if f.Trace != "" {
		fmt.Fprintf(&b, "last events:\n%s", f.Trace)
	}
	return b.String()
}

// Sim is one run in progress. It is used by one goroutine and is not
// reusable; see Run.
type Sim struct {
	p        *params
	seed     uint64
	coreSeed uint64
	opts     Options
	rng      *rand.Rand
	sched    scheduler
	net      *network
	nodes    []*node
	clients  []*client
	ops      []*op
	issued   map[cmdKey]replica.Command
	checks   *checker
	// firstApplied is when any replica first applied each command to its
	// state machine (replays excluded).
	firstApplied map[cmdKey]int64
	quiescent    bool // the run ended with everything executed everywhere

	porcupineTimeouts int // porcupine timed out after the witness held

	faultsOn                     bool
	faultEnd, issueEnd, deadline int64

	fp         fingerprint
	tr         tracer
	traceAll   bool
	failure    *Failure
	events     int
	partitions int
}

// Run executes one simulated run of cfg from seed and checks every
// invariant. Equal (cfg, seed) give equal runs.
func Run(cfg Config, seed uint64, opts Options) Result {
	s := newSim(cfg, seed, opts)
	if !s.failed() {
		s.start()
		s.loop()
	}
	if !s.failed() {
		s.checks.final()
	}
	if !s.failed() {
		s.checkLinearizable()
	}
	return s.result()
}

// newSim draws the run's parameters from the seed and builds the replicas.
func newSim(cfg Config, seed uint64, opts Options) *Sim {
	// The config is mixed into the PCG's second word, so that one seed
	// gives unrelated runs under different configs.
	rng := rand.New(rand.NewPCG(seed, 0x5eed_5eed_0000_0000^uint64(cfg.N)<<16^uint64(cfg.Mix)<<8^uint64(cfg.Breakage)))
	s := &Sim{
		p:            draw(cfg, rng),
		seed:         seed,
		opts:         opts,
		rng:          rng,
		issued:       make(map[cmdKey]replica.Command),
		faultsOn:     true,
		firstApplied: make(map[cmdKey]int64),
		fp:           newFingerprint(),
	}
	s.coreSeed = rng.Uint64()
	if opts.Trace != nil {
		s.traceAll = true
		s.tr.out = opts.Trace
		opts.Trace(fmt.Sprintf("seed=%d %s", seed, s.p))
	}
	s.checks = newChecker(s)
	s.net = newNetwork(s, s.p.N)
	s.faultEnd = int64(s.p.FaultTicks) * TickUnits
	s.issueEnd = s.faultEnd + int64(s.p.CalmTicks)*TickUnits
	s.deadline = s.faultEnd + int64(s.p.LivenessTicks)*TickUnits
	for i := 0; i < s.p.N && !s.failed(); i++ {
		s.nodes = append(s.nodes, newNode(s, i))
	}
	return s
}

// start schedules the clocks, the clients and the faults.
func (s *Sim) start() {
	for _, n := range s.nodes {
		s.scheduleTicks(n)
	}
	for k := 0; k < s.p.Clients; k++ {
		c := &client{index: k, id: uint64(k + 1)}
		s.clients = append(s.clients, c)
		s.sched.after(s.rng.Int64N(4*TickUnits), func() { s.wake(c) })
	}
	if s.p.partitions() {
		s.schedulePartitions()
	}
	if s.p.crashes() {
		for _, n := range s.nodes {
			s.scheduleCrashes(n)
		}
	}
	s.sched.after(s.faultEnd, s.heal)
}

// loop runs events until the run is done, fails, or runs out of time. A
// panic (the core panics when it detects an agreement violation) ends the
// run as a failure.
func (s *Sim) loop() {
	defer func() {
		if r := recover(); r != nil {
			inv := "panic"
			if msg := fmt.Sprint(r); strings.Contains(msg, "agreement violated") {
				inv = "1. agreement"
			}
			s.fail(inv, "panic: %v\n%s", r, debug.Stack())
		}
	}()
	nextCheck := s.issueEnd
	for !s.failed() {
		e, ok := s.sched.pop()
		if !ok {
			s.fail("harness", "no events left")
			return
		}
		if e.at > s.deadline {
			s.fail("5. liveness", "%d ticks after the heal, the run has not finished:\n%s",
				(s.deadline-s.faultEnd)/TickUnits, s.checks.pendingReport())
			return
		}
		s.events++
		e.fn()
		if s.sched.now >= nextCheck {
			nextCheck = s.sched.now + 4*TickUnits
			if s.done() {
				s.quiescent = true
				return
			}
		}
	}
}

// done reports whether the run has finished: the faults are healed, every
// client has finished, and every instance known anywhere is committed at
// every replica and executed (unless a no-op) by every replica.
func (s *Sim) done() bool {
	if s.faultsOn {
		return false
	}
	for _, c := range s.clients {
		if !c.done || c.cur != nil {
			return false
		}
	}
	for _, n := range s.nodes {
		if !n.up {
			return false
		}
	}
	return s.checks.quiescent()
}

// heal ends the fault phase: links reconnect, loss and duplication stop,
// crashed replicas restart and no more crash; clients stop giving up.
func (s *Sim) heal() {
	s.faultsOn = false
	s.net.faults = false
	s.net.healLinks()
	s.trace(traceEntry{kind: tkPhase, note: "heal: faults off, crashed replicas restart"})
	for _, n := range s.nodes {
		if !n.up && !s.failed() {
			n.restart()
		}
	}
}

func (s *Sim) scheduleTicks(n *node) {
	var tick func()
	tick = func() {
		if n.up {
			n.tick()
		}
		s.sched.after(max(1, n.tickPeriod+s.rng.Int64N(2*s.p.tickJitter+1)-s.p.tickJitter), tick)
	}
	s.sched.after(1+s.rng.Int64N(TickUnits), tick)
}

func (s *Sim) schedulePartitions() {
	between := func(r [2]int64) int64 { return r[0] + s.rng.Int64N(r[1]-r[0]+1) }
	var form func()
	form = func() {
		if !s.faultsOn {
			return
		}
		s.partitions++
		s.trace(traceEntry{kind: tkPartition, note: s.net.partition()})
		s.sched.after(between(s.p.partitionHold), func() {
			if !s.faultsOn {
				return
			}
			s.net.healLinks()
			s.trace(traceEntry{kind: tkPartition, note: "healed"})
			s.sched.after(between(s.p.partitionGap), form)
		})
	}
	s.sched.after(s.rng.Int64N(s.p.partitionGap[1]), form)
}

func (s *Sim) scheduleCrashes(n *node) {
	var crash func()
	crash = func() {
		if !s.faultsOn {
			return
		}
		if n.up {
			n.crash("at a random moment")
			s.scheduleRestart(n)
		}
		s.sched.after(1+int64(s.rng.ExpFloat64()*float64(s.p.crashEvery)), crash)
	}
	s.sched.after(1+int64(s.rng.ExpFloat64()*float64(s.p.crashEvery)), crash)
}

// scheduleRestart restarts n after a random downtime, unless the heal
// restarts it first.
func (s *Sim) scheduleRestart(n *node) {
	inc := n.incarnation
	d := s.p.downtime[0] + s.rng.Int64N(s.p.downtime[1]-s.p.downtime[0]+1)
	s.sched.after(d, func() {
		if !n.up && n.incarnation == inc && !s.failed() {
			n.restart()
		}
	})
}

// ---------------------------------------------------------------------------

func (s *Sim) trace(e traceEntry) {
	e.at = s.sched.now
	s.tr.add(e)
}

// fail records the first violation; the run stops at the next event.
func (s *Sim) fail(invariant, format string, args ...any) {
	if s.failure != nil {
		return
	}
	s.failure = &Failure{Invariant: invariant, Detail: fmt.Sprintf(format, args...), At: s.sched.now, Trace: s.tr.tail()}
	if s.tr.out != nil {
		s.tr.out(fmt.Sprintf("FAILED: %s: %s", invariant, s.failure.Detail))
	}
}

func (s *Sim) failed() bool { return s.failure != nil }

func (s *Sim) result() Result {
	st := Stats{
		Events: s.events, Ticks: s.sched.now / TickUnits,
		Sent: s.net.sent, Delivered: s.net.delivered, Lost: s.net.lost,
		Duplicated: s.net.duplicated, Cuts: s.net.cutDrops, Partitions: s.partitions,
		Instances: len(s.checks.chosen), Nops: len(s.checks.chosen) - s.checks.nonNop,
		PorcupineTimeouts: s.porcupineTimeouts,
	}
	for _, n := range s.nodes {
		st.Crashes += n.crashes
		st.UnsyncedLost += n.unsyncedLost
	}
	for _, o := range s.ops {
		st.Ops++
		st.Attempts += o.attempts
		switch o.status {
		case opOK:
			st.OpsOK++
		case opUnknown:
			st.OpsUnknown++
		}
	}
	return Result{Seed: s.seed, Params: s.p.String(), Fingerprint: s.fp.h, Stats: st, Failure: s.failure}
}
