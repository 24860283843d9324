package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// faultKind is a kind of fault the nemesis injects.
type faultKind string

const (
	faultKill         faultKind = "kill"               // SIGKILL, restart later
	faultPause        faultKind = "pause"              // SIGSTOP, SIGCONT later
	faultPluginKill   faultKind = "plugin-kill"        // SIGKILL of the plugin process
	faultPartMinority faultKind = "partition-minority" // a minority cut off
	faultPartSplit    faultKind = "partition-split"    // no side has a quorum
	faultPartBridge   faultKind = "partition-bridge"   // one replica sees both sides
)

var allFaultKinds = []faultKind{faultKill, faultPause, faultPluginKill, faultPartMinority, faultPartSplit, faultPartBridge}

// step is one step of the schedule: faults applied together, held, undone,
// then a quiet gap.
type step struct {
	Part      *partition // nil: no partition
	Proc      faultKind  // "" or kill, pause, plugin-kill
	ProcNodes []int
	Hold, Gap time.Duration
}

func (s step) String() string {
	var parts []string
	if s.Part != nil {
		parts = append(parts, "partition "+s.Part.String())
	}
	if s.Proc != "" {
		parts = append(parts, fmt.Sprintf("%s %s", s.Proc, formatNodes(s.ProcNodes)))
	}
	return fmt.Sprintf("%s; hold %v, then quiet %v", strings.Join(parts, " + "), s.Hold, s.Gap)
}

// plan derives the fault schedule of an n-replica run of length d from
// seed. Kinds come in shuffled rounds of all six, so every kind occurs
// once per six steps; a partition step sometimes carries a process fault.
func plan(seed int64, n int, d time.Duration) []step {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
	f := (n - 1) / 2
	var steps []step
	var round []faultKind
	for elapsed := time.Duration(0); elapsed < d; {
		if len(round) == 0 {
			round = slices.Clone(allFaultKinds)
			rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		kind := round[0]
		round = round[1:]
		s := step{
			// Holds up to 5s outlast a client's 3s deadline, so that some
			// operations end indeterminate.
			Hold: time.Second + time.Duration(rng.Int64N(int64(4*time.Second))),
			Gap:  300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond))),
		}
		perm := rng.Perm(n)
		switch kind {
		case faultPartMinority:
			size := 1 + rng.IntN(f)
			s.Part = &partition{Kind: "minority", Groups: [][]int{sorted(perm[:size]), sorted(perm[size:])}}
		case faultPartSplit:
			p := &partition{Kind: "split"}
			for i := 0; i < n; i += f {
				p.Groups = append(p.Groups, sorted(perm[i:min(i+f, n)]))
			}
			s.Part = p
		case faultPartBridge:
			rest := perm[1:]
			half := len(rest) / 2
			s.Part = &partition{Kind: "bridge", Bridge: perm[0], Groups: [][]int{sorted(rest[:half]), sorted(rest[half:])}}
		default:
			s.Proc = kind
		}
		if s.Part != nil && rng.IntN(4) == 0 {
			s.Proc = []faultKind{faultKill, faultPause, faultPluginKill}[rng.IntN(3)]
		}
		switch s.Proc {
		case faultPluginKill:
			s.ProcNodes = []int{rng.IntN(n)}
		case faultKill, faultPause:
			// Mostly one replica; sometimes a minority, a bare majority
			// or all of them.
			count := 1
			switch r := rng.IntN(20); {
			case r < 3:
				count = f
			case r < 5:
				count = f + 1
			case r < 7:
				count = n
			}
			s.ProcNodes = sorted(rng.Perm(n)[:count])
		}
		steps = append(steps, s)
		elapsed += s.Hold + s.Gap
	}
	return steps
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// nemesis runs a schedule against a cluster.
type nemesis struct {
	c     *cluster
	start time.Time // the history's time zero

	mu     sync.Mutex
	events []string          // what was done, when
	counts map[faultKind]int // faults injected, by kind
	errs   []string          // faults that could not be injected or undone
}

func newNemesis(c *cluster, start time.Time) *nemesis {
	return &nemesis{c: c, start: start, counts: map[faultKind]int{}}
}

func (nm *nemesis) logf(format string, args ...any) {
	line := fmt.Sprintf("%8.3fs %s", time.Since(nm.start).Seconds(), fmt.Sprintf(format, args...))
	nm.c.t.Log(line)
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.events = append(nm.events, line)
}

func (nm *nemesis) fail(err error) {
	if err == nil {
		return
	}
	nm.logf("ERROR %v", err)
	nm.mu.Lock()
	nm.errs = append(nm.errs, err.Error())
	nm.mu.Unlock()
}

func (nm *nemesis) count(k faultKind) {
	nm.mu.Lock()
	nm.counts[k]++
	nm.mu.Unlock()
}

// run applies the schedule until it ends or ctx is done, undoing each
// step before the next; the last step is undone when ctx ends.
func (nm *nemesis) run(ctx context.Context, steps []step) {
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		nm.apply(s)
		wait(ctx, s.Hold)
		nm.undo(s)
		wait(ctx, s.Gap)
	}
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (nm *nemesis) apply(s step) {
	c := nm.c
	if s.Part != nil {
		nm.logf("partition: %s", s.Part)
		if err := c.nw.apply(*s.Part); err != nil {
			nm.fail(err)
		} else {
			nm.count(faultKind("partition-" + s.Part.Kind))
		}
	}
	switch s.Proc {
	case faultKill:
		nm.logf("SIGKILL %s", formatNodes(s.ProcNodes))
		for _, i := range nm.up(s.ProcNodes) {
			nm.fail(c.kill(i))
		}
		nm.count(faultKill)
	case faultPause:
		nm.logf("SIGSTOP %s", formatNodes(s.ProcNodes))
		for _, i := range nm.up(s.ProcNodes) {
			nm.fail(c.pause(i))
		}
		nm.count(faultPause)
	case faultPluginKill:
		for _, i := range nm.up(s.ProcNodes) {
			killed, pid, err := c.killPlugin(i)
			switch {
			case err != nil:
				nm.fail(err)
			case !killed:
				nm.logf("plugin-kill r%d: no plugin process at the moment; skipped", i)
			default:
				nm.logf("SIGKILL plugin process %d of r%d", pid, i)
				nm.count(faultPluginKill)
			}
		}
	}
}

func (nm *nemesis) undo(s step) {
	c := nm.c
	switch s.Proc {
	case faultKill:
		nm.logf("restart %s", formatNodes(s.ProcNodes))
		for _, i := range s.ProcNodes {
			nm.fail(c.restart(i))
		}
	case faultPause:
		nm.logf("SIGCONT %s", formatNodes(s.ProcNodes))
		for _, i := range s.ProcNodes {
			nm.fail(c.resume(i))
		}
	}
	if s.Part != nil {
		nm.logf("heal")
		nm.fail(c.nw.apply(partition{}))
	}
	// A replica that exited on its own (already reported as a failure)
	// is restarted, so that the run goes on with the whole cluster.
	for i := 0; i < c.n; i++ {
		if !c.running(i) {
			nm.logf("restart r%d, which exited on its own", i)
			nm.fail(c.restart(i))
		}
	}
}

// up returns the replicas of nodes that are running: one that exited on
// its own is left alone until the step is undone.
func (nm *nemesis) up(nodes []int) []int {
	var out []int
	for _, i := range nodes {
		if nm.c.running(i) {
			out = append(out, i)
		} else {
			nm.logf("r%d is down (it exited on its own): no fault for it", i)
		}
	}
	return out
}

// healAll undoes every fault: it heals the network, resumes paused
// replicas and restarts the ones that are down (for whatever reason).
func (nm *nemesis) healAll() {
	c := nm.c
	nm.logf("final heal: network healed, every replica resumed or restarted")
	nm.fail(c.nw.apply(partition{}))
	for i := 0; i < c.n; i++ {
		nm.fail(c.resume(i))
		nm.fail(c.restart(i))
	}
}

// summary returns the fault counts as "kind=count ...", in a fixed order.
func (nm *nemesis) summary() string {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	var parts []string
	total := 0
	for _, k := range allFaultKinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, nm.counts[k]))
		total += nm.counts[k]
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
}
