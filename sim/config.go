package sim

import (
	"fmt"
	"math/rand/v2"
)

// Virtual time. A replica ticks about every TickUnits units; message delays,
// client think times and fault durations are all in units, so events of
// different replicas interleave at a finer grain than ticks.
const TickUnits = 8

// Mix is a fault mix: which faults are active during a run's fault phase.
// Each mix includes the ones before it.
type Mix int

const (
	// MixLossy: message loss, duplication, reordering (random delays with a
	// long tail) and per-replica clock drift and tick jitter.
	MixLossy Mix = iota
	// MixPartitions adds partitions that form and heal: a replica cut off,
	// the cluster split in two, or links cut in one direction only.
	MixPartitions
	// MixCrashes adds replica crashes, which lose everything not yet
	// persisted (including a Ready persisted but not yet sent or applied),
	// and restarts from the disk.
	MixCrashes
	// MixHotKey is everything, with every client operation on one key.
	MixHotKey
)

func (m Mix) String() string {
	switch m {
	case MixLossy:
		return "lossy"
	case MixPartitions:
		return "partitions"
	case MixCrashes:
		return "crashes"
	case MixHotKey:
		return "hotkey"
	}
	return fmt.Sprintf("mix(%d)", int(m))
}

// Config is what a test fixes about a run; the seed draws the rest (see
// params). Zero fields take defaults.
type Config struct {
	N   int // replicas: 3, 5 or 7
	Mix Mix

	// Clients is the number of closed-loop clients; 0 draws 3..8.
	Clients int
	// OpsPerClient bounds the operations each client issues; 0 means 40.
	OpsPerClient int
	// HotKeyRate is the probability that an operation uses the shared hot
	// key (the conflict rate); the other operations use one of Keys other
	// keys. A negative value draws it per seed from [0, 0.6]; MixHotKey
	// forces 1.
	HotKeyRate float64
	// Keys is the number of keys besides the hot one; 0 means 6.
	Keys int

	// FaultTicks is the length of the fault phase; 0 means 300.
	FaultTicks int
	// CalmTicks is how long clients keep issuing after the heal; 0 means 60.
	CalmTicks int
	// LivenessTicks bounds the run after the heal: by then everything must
	// have completed; 0 means 8000 (recoveries back off exponentially under
	// faults, up to 32 timeouts plus jitter, and that backoff outlives them).
	LivenessTicks int

	// Sessions is how clients use client ids; see SessionMode.
	Sessions SessionMode

	// Breakage deliberately breaks a rule of the daemon's contract, to show
	// that the checks catch it. Tests leave it BreakNone.
	Breakage Breakage
	// NoPromiseCheck disables the direct persist-before-send check, so that
	// a SendBeforePersist breakage must be caught by the protocol invariants.
	NoPromiseCheck bool
}

// SessionMode is how simulated clients use the exactly-once session table.
type SessionMode int

const (
	// SessionPerClient: each client has one client id and numbers its
	// requests 1, 2, 3, ..., as the Go client library does (a session is
	// reused with seq+1). session.Table skips a request whose seq is not
	// above the last one applied for its client id, which is right only if
	// every replica executes a session's requests in seq order whatever
	// their keys; package replica makes a session's commands interfere for
	// that (commit ff80d4d). Before that, this mode failed almost every seed.
	SessionPerClient SessionMode = iota
	// SessionPerRequest: each request uses a client id of its own, with seq
	// 1, kept across its retries. Retries through other replicas still
	// produce duplicate instances that the session table must filter.
	SessionPerRequest
)

func (m SessionMode) String() string {
	if m == SessionPerRequest {
		return "per-request"
	}
	return "per-client"
}

// Breakage names a deliberate violation of the daemon's contract.
type Breakage int

const (
	BreakNone Breakage = iota
	// BreakSendBeforePersist sends a Ready's messages before persisting its
	// records, so a crash in between loses what the messages promised.
	BreakSendBeforePersist
)

func (c Config) String() string {
	s := fmt.Sprintf("N=%d mix=%s sessions=%s", c.N, c.Mix, c.Sessions)
	if c.Breakage == BreakSendBeforePersist {
		s += " breakage=send-before-persist"
	}
	return s
}

// params is a Config with every random choice made from the seed.
type params struct {
	Config
	thrifty      bool
	timeoutTicks int
	hotRate      float64

	// Network.
	loss, dup      float64
	maxDelay       int64   // units; delays are uniform in [1, maxDelay]
	longDelay      float64 // probability of a delay up to longDelayMul times longer
	longDelayMul   int64
	clientLoss     float64 // loss on client<->replica links during faults
	tickDrift      []int64 // per replica: units added to TickUnits per tick
	tickJitter     int64   // per tick: uniform in [-tickJitter, tickJitter]
	deferReady     float64 // probability that a Ready is handled a little later
	partitionGap   [2]int64
	partitionHold  [2]int64
	crashEvery     int64 // mean units between crashes of one replica
	downtime       [2]int64
	crashMidReady  float64 // per Ready handled: crash between its steps
	attemptTimeout int64   // units a client waits for one attempt
	maxAttempts    int     // attempts before a client gives up (faults only)
}

func (p *params) partitions() bool { return p.Mix >= MixPartitions }
func (p *params) crashes() bool    { return p.Mix >= MixCrashes }

// draw fills in a Config's defaults and the per-seed choices.
func draw(cfg Config, rng *rand.Rand) *params {
	p := &params{Config: cfg}
	if p.Clients == 0 {
		p.Clients = 3 + rng.IntN(6)
	}
	if p.OpsPerClient == 0 {
		p.OpsPerClient = 40
	}
	if p.Keys == 0 {
		p.Keys = 6
	}
	if p.FaultTicks == 0 {
		p.FaultTicks = 300
	}
	if p.CalmTicks == 0 {
		p.CalmTicks = 60
	}
	if p.LivenessTicks == 0 {
		p.LivenessTicks = 8000
	}
	switch {
	case p.Mix == MixHotKey:
		p.hotRate = 1
	case p.HotKeyRate < 0:
		p.hotRate = 0.6 * rng.Float64()
	default:
		p.hotRate = p.HotKeyRate
	}
	p.thrifty = rng.IntN(4) == 0
	p.timeoutTicks = 4 + rng.IntN(5) // 4..8
	// Delays of 1..3 ticks: a round trip is often shorter than a timeout and
	// sometimes (long tail, drift, loss) longer, so resends and recoveries
	// really fire.
	p.maxDelay = int64(1+rng.IntN(3)) * TickUnits
	p.longDelay = 0.02 + 0.03*rng.Float64()
	p.longDelayMul = 4 + rng.Int64N(5)
	p.loss = 0.01 + 0.09*rng.Float64()
	p.dup = 0.05 * rng.Float64()
	p.clientLoss = 0.03 * rng.Float64()
	p.tickJitter = 1 + rng.Int64N(2)
	p.tickDrift = make([]int64, p.N)
	for i := range p.tickDrift {
		p.tickDrift[i] = rng.Int64N(5) - 2 // ticks 25% faster to 25% slower
	}
	p.deferReady = 0.2 * rng.Float64()
	p.partitionGap = [2]int64{20 * TickUnits, 120 * TickUnits}
	p.partitionHold = [2]int64{10 * TickUnits, 80 * TickUnits}
	p.crashEvery = int64(100+rng.IntN(200)) * TickUnits
	p.downtime = [2]int64{3 * TickUnits, 60 * TickUnits}
	p.crashMidReady = 0.0005 + 0.002*rng.Float64()
	p.attemptTimeout = int64((6+rng.IntN(6))*p.timeoutTicks) * TickUnits
	p.maxAttempts = 3 + rng.IntN(4)
	return p
}

func (p *params) String() string {
	return fmt.Sprintf("%s clients=%d hot=%.2f thrifty=%v timeout=%d loss=%.3f dup=%.3f maxDelay=%d",
		p.Config, p.Clients, p.hotRate, p.thrifty, p.timeoutTicks, p.loss, p.dup, p.maxDelay)
}
