package chaos

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/epaxosd/epaxosd/client"
)

const (
	defaultDuration = 30 * time.Second // fault-run time of each cluster size
	workers         = 8                // concurrent clients
	opTimeout       = 3 * time.Second  // a client operation's deadline
	attemptTimeout  = time.Second      // one attempt at one replica, then fail over
	readyTimeout    = 60 * time.Second // a fresh cluster serves within
	finalTimeout    = 120 * time.Second
)

// Keys: at any time the clients use a small set of keysPerGen keys, so
// that operations conflict; the set changes every keyGeneration (Jepsen's
// independent keys), so that each key's history, which porcupine checks on
// its own, stays small however long the run: porcupine's memory grows with
// the square of a key's operations.
const (
	keysPerGen    = 5
	keyGeneration = 10 * time.Second
)

// keyAt returns the i-th key of the generation current at elapsed.
func keyAt(elapsed time.Duration, i int) string {
	return fmt.Sprintf("g%d-k%d", elapsed/keyGeneration, i)
}

// epaxosd is the static binary TestMain builds; unavailable says why the
// chaos test cannot run here ("" when it can).
var (
	epaxosd     string
	unavailable string
)

func TestMain(m *testing.M) {
	flag.Parse()
	go interruptHandler()
	unavailable = prerequisites()
	code := 0
	if bin := os.Getenv("EPAXOS_CHAOS_BIN"); bin != "" && unavailable == "" {
		// A prebuilt binary (for example a release, or another commit's).
		epaxosd, _ = filepath.Abs(bin)
		code = m.Run()
	} else if unavailable == "" && wantsChaos() {
		dir, err := os.MkdirTemp("", "epaxosd-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		epaxosd = filepath.Join(dir, "epaxosd")
		cmd := exec.Command("go", "build", "-o", epaxosd, "./cmd/epaxosd")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "CGO_ENABLED=0 go build ./cmd/epaxosd: %v\n%s", err, b)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		code = m.Run()
		os.RemoveAll(dir)
	} else {
		code = m.Run()
	}
	os.Exit(code)
}

// wantsChaos reports whether -test.run may select TestChaos (only then is
// the binary worth building).
func wantsChaos() bool {
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	first := strings.Split(f.Value.String(), "/")[0]
	re, err := regexp.Compile(first)
	return err != nil || re.MatchString("TestChaos")
}

// prerequisites returns why the chaos test cannot run here, or "".
func prerequisites() string {
	if os.Geteuid() != 0 {
		return "not running as root: network namespaces, veths and nftables rules need root"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("%s is not installed: %v", tool, err)
		}
	}
	probe := fmt.Sprintf("%s-%xz-probe", namePrefix, os.Getpid())
	defer removeNamespace(probe)
	if err := run("", "ip", "netns", "add", probe); err != nil {
		return fmt.Sprintf("ip netns is unavailable: %v", err)
	}
	if err := run(nftScript([]string{"10.0.0.1"}), "ip", "netns", "exec", probe, "nft", "-f", "-"); err != nil {
		return fmt.Sprintf("nftables is unavailable inside a network namespace: %v", err)
	}
	return ""
}

// ciSet reports whether the CI environment variable is set (to anything
// but false or 0).
func ciSet() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v != "" && v != "false" && v != "0"
}

// Interrupt handling: SIGINT, SIGTERM and SIGHUP run every registered
// cleanup (killing the replicas, removing the namespaces) before exiting.
var interrupts struct {
	sync.Mutex
	next int
	fns  map[int]func()
}

// onInterrupt registers fn to run if the process is interrupted; the
// returned function unregisters it.
func onInterrupt(fn func()) func() {
	interrupts.Lock()
	defer interrupts.Unlock()
	if interrupts.fns == nil {
		interrupts.fns = map[int]func(){}
	}
	id := interrupts.next
	interrupts.next++
	interrupts.fns[id] = fn
	return func() {
		interrupts.Lock()
		delete(interrupts.fns, id)
		interrupts.Unlock()
	}
}

func interruptHandler() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	sig := <-ch
	fmt.Fprintf(os.Stderr, "chaos: %v: killing the replicas and removing the namespaces\n", sig)
	interrupts.Lock()
	ids := make([]int, 0, len(interrupts.fns))
	for id := range interrupts.fns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i := len(ids) - 1; i >= 0; i-- { // newest first, like t.Cleanup
		interrupts.fns[ids[i]]()
	}
	os.Exit(130)
}

// settings are the run's parameters, from the environment.
type settings struct {
	seed      int64
	duration  time.Duration
	artifacts string
	logLevel  string
	keep      bool // write the artifacts even when the run passes
}

func loadSettings(t *testing.T) settings {
	s := settings{seed: time.Now().UnixNano() & (1<<53 - 1), duration: defaultDuration, artifacts: "artifacts", logLevel: "debug"}
	if v := os.Getenv("EPAXOS_CHAOS_SEED"); v != "" {
		seed, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("EPAXOS_CHAOS_SEED=%q: %v", v, err)
		}
		s.seed = seed
	}
	if v := os.Getenv("EPAXOS_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("EPAXOS_CHAOS_DURATION=%q: want a positive duration such as 30s or 30m", v)
		}
		s.duration = d
	}
	if v := os.Getenv("EPAXOS_CHAOS_ARTIFACTS"); v != "" {
		s.artifacts = v
	}
	s.keep = os.Getenv("EPAXOS_CHAOS_KEEP") != ""
	if v := os.Getenv("EPAXOS_CHAOS_LOG_LEVEL"); v != "" {
		s.logLevel = v
	}
	return s
}

// TestChaos runs the fault test against 3 and then 5 replicas.
func TestChaos(t *testing.T) {
	if unavailable != "" {
		if ciSet() {
			t.Fatalf("the chaos test cannot run, and CI is set, so it must not be skipped: %s", unavailable)
		}
		t.Skipf("skipping the chaos test: %s (with CI set this fails instead)", unavailable)
	}
	s := loadSettings(t)
	// Each size needs its fault run plus set-up, the final heal and reads,
	// and the check.
	need := 2*s.duration + 5*time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl) < need {
		t.Fatalf("EPAXOS_CHAOS_DURATION=%v needs go test -timeout of at least %v (make chaos DURATION=%v sets it)", s.duration, need.Round(time.Minute), s.duration)
	}
	if removed := sweepLeftovers(); len(removed) > 0 {
		t.Logf("removed leftovers of earlier runs: %s", strings.Join(removed, ", "))
	}
	t.Logf("seed %d (replay with EPAXOS_CHAOS_SEED=%d); %v of faults per cluster size", s.seed, s.seed, s.duration)
	var summaries []string
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("N%d", n), func(t *testing.T) {
			summaries = append(summaries, runChaos(t, n, s))
		})
	}
	for _, line := range summaries {
		t.Log(line)
	}
}

// chaosRun is one cluster size's run: what the artifacts are made of.
type chaosRun struct {
	t        *testing.T
	n        int
	s        settings
	steps    []step
	c        *cluster
	nm       *nemesis
	rec      *recorder
	lin      *linearizability
	summary  string
	failures []string
}

// runChaos runs the fault test against n replicas and returns its summary.
func runChaos(t *testing.T, n int, s settings) string {
	r := &chaosRun{t: t, n: n, s: s}
	// Cleanups run last-registered first: the replicas stop, then the
	// network goes, then the artifacts are written, then the temporary
	// directory (registered by this first TempDir) is removed.
	t.TempDir()
	t.Cleanup(func() {
		if t.Failed() || r.s.keep {
			r.writeArtifacts()
		}
	})
	setup := time.Now()
	nw := newNetwork(t, n)
	r.c = newCluster(t, nw, s.seed, s.logLevel)
	if err := r.c.waitServing(readyTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d replicas serving after %v; replicas %s", n, time.Since(setup).Round(time.Millisecond), strings.Join(r.c.addrs, " "))

	r.steps = plan(s.seed, n, s.duration)
	start := time.Now()
	r.rec = newRecorder(start)
	r.nm = newNemesis(r.c, start)
	ctx, cancel := context.WithTimeout(context.Background(), s.duration)
	defer cancel()

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		// Each worker prefers another replica first.
		addrs := append(slices.Clone(r.c.addrs[w%n:]), r.c.addrs[:w%n]...)
		cl := r.c.newClient(addrs)
		rng := rand.New(rand.NewPCG(uint64(s.seed), uint64(1000*n+w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx, w, cl, rng)
		}()
	}
	nemesisDone := make(chan struct{})
	go func() {
		defer close(nemesisDone)
		r.nm.run(ctx, r.steps)
	}()
	<-ctx.Done()
	<-nemesisDone
	faultTime := time.Since(start)
	wg.Wait()

	// The end: heal everything, then read every key through every replica.
	r.nm.healAll()
	healed := time.Now()
	keys := usedKeys(r.rec.history())
	final, converged := r.finalReads(keys)
	recovery := time.Since(healed)
	for _, p := range r.c.takeProblems() {
		r.fail("%s (see its log)", p)
	}
	for _, e := range r.nm.errs {
		r.fail("nemesis: %s", e)
	}

	ops := r.rec.history()
	timeout := max(time.Minute, s.duration/2)
	lin := checkLinearizable(ops, timeout)
	r.lin = &lin
	switch lin.Result {
	case porcupine.Illegal:
		r.fail("the history is not linearizable:\n%s", lin.Detail)
	case porcupine.Unknown:
		r.fail("porcupine could not decide linearizability within %v", timeout)
	}
	lost := []string{}
	if converged {
		lost = lostWrites(ops, final)
		for _, l := range lost {
			r.fail("lost write: %s", l)
		}
	}

	cnt := counts(ops)
	conv := fmt.Sprintf("all %d replicas agree on %d keys, %v after the final heal", n, len(keys), recovery.Round(10*time.Millisecond))
	if !converged {
		conv = "replicas DID NOT converge"
	}
	lostS := "none lost"
	if !converged {
		lostS = "not checked (no agreed final values)"
	} else if len(lost) > 0 {
		lostS = fmt.Sprintf("%d LOST", len(lost))
	}
	r.summary = fmt.Sprintf("chaos N=%d seed=%d: fault run %v; faults %s; ops %d: ok=%d failed=%d indeterminate=%d; linearizability: %s; acknowledged writes: %s; %s",
		n, s.seed, faultTime.Round(100*time.Millisecond), r.nm.summary(), len(ops), cnt[ok], cnt[failed], cnt[indeterminate],
		lin, lostS, conv)
	t.Log(r.summary)
	for _, f := range r.failures {
		t.Error(f)
	}
	return r.summary
}

func (r *chaosRun) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// worker runs operations until ctx is done. An operation already issued
// runs to its own deadline.
func (r *chaosRun) worker(ctx context.Context, w int, cl *client.Client, rng *rand.Rand) {
	proc := r.rec.newProc()
	for seq := 0; ctx.Err() == nil; seq++ {
		o := op{Proc: proc, Worker: w, Replica: -1, Key: keyAt(time.Since(r.rec.start), rng.IntN(keysPerGen))}
		var value []byte
		switch x := rng.IntN(20); {
		case x < 10:
			o.Access = client.Read
		case x < 18:
			o.Access = client.Write
			o.Value = fmt.Sprintf("%d-%d", w, seq)
			value = []byte(o.Value)
		default:
			o.Access = client.Delete
		}
		opCtx, cancel := context.WithTimeout(context.Background(), opTimeout)
		o.Call = r.rec.now()
		out, err := cl.Propose(opCtx, o.Access, o.Key, value)
		o.Return = r.rec.now()
		cancel()
		o.Output = string(out)
		o.Outcome, o.Err = classify(err)
		r.rec.add(o)
		if o.Outcome == indeterminate {
			// The operation may still be in flight: later operations of
			// this worker are a new process, as in Jepsen.
			proc = r.rec.newProc()
		}
	}
}

// finalReads reads every key the clients used through every replica, in
// rounds, until the replicas agree (a write left in flight may land between
// rounds). It returns the agreed values.
func (r *chaosRun) finalReads(keys []string) (map[string]string, bool) {
	deadline := time.Now().Add(finalTimeout)
	for round := 0; round < 5; round++ {
		vals := make([]map[string]string, r.n)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []string
		for i := 0; i < r.n; i++ {
			vals[i] = map[string]string{}
			cl, err := client.New(client.Config{Addrs: []string{r.c.addrs[i]}, DialTimeout: time.Second})
			if err != nil {
				r.t.Fatal(err)
			}
			todo := make(chan string, len(keys))
			for _, k := range keys {
				todo <- k
			}
			close(todo)
			var rwg sync.WaitGroup
			for reader := 0; reader < 4; reader++ {
				rwg.Add(1)
				go func() {
					defer rwg.Done()
					proc := r.rec.newProc()
					for k := range todo {
						for {
							o := op{Proc: proc, Worker: -1, Replica: i, Access: client.Read, Key: k}
							ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
							o.Call = r.rec.now()
							out, err := cl.Propose(ctx, client.Read, k, nil)
							o.Return = r.rec.now()
							cancel()
							o.Output = string(out)
							o.Outcome, o.Err = classify(err)
							r.rec.add(o)
							if o.Outcome == ok {
								mu.Lock()
								vals[i][k] = o.Output
								mu.Unlock()
								break
							}
							proc = r.rec.newProc()
							if time.Now().After(deadline) {
								mu.Lock()
								errs = append(errs, fmt.Sprintf("replica r%d did not serve a read of %s within %v of the final heal: %v", i, k, finalTimeout, err))
								mu.Unlock()
								return
							}
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rwg.Wait()
				cl.Close()
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			slices.Sort(errs)
			for _, e := range errs {
				r.fail("%s", e)
			}
			return nil, false
		}
		var differ []string
		for _, k := range keys {
			for i := 1; i < r.n; i++ {
				if vals[i][k] != vals[0][k] {
					differ = append(differ, k)
					break
				}
			}
		}
		if len(differ) == 0 {
			r.nm.logf("final reads, round %d: all %d replicas agree on the %d keys", round+1, r.n, len(keys))
			return vals[0], true
		}
		r.nm.logf("final reads, round %d: the replicas disagree on %d keys: %s", round+1, len(differ), formatFinal(vals, differ))
	}
	r.fail("the replicas still disagree after 5 rounds of final reads (see schedule.txt)")
	return nil, false
}

// formatFinal shows what each replica read of some keys.
func formatFinal(vals []map[string]string, keys []string) string {
	if len(keys) > 10 {
		keys = keys[:10]
	}
	var parts []string
	for _, k := range keys {
		var rs []string
		for i, v := range vals {
			rs = append(rs, fmt.Sprintf("r%d=%q", i, v[k]))
		}
		parts = append(parts, fmt.Sprintf("%s{%s}", k, strings.Join(rs, " ")))
	}
	return strings.Join(parts, " ")
}

// usedKeys returns the keys of the history, sorted.
func usedKeys(ops []op) []string {
	seen := map[string]bool{}
	var keys []string
	for _, o := range ops {
		if !seen[o.Key] {
			seen[o.Key] = true
			keys = append(keys, o.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// writeArtifacts saves what explains a failure and prints where.
func (r *chaosRun) writeArtifacts() {
	t := r.t
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	dir := filepath.Join(r.s.artifacts, fmt.Sprintf("%s-%d", name, r.s.seed))
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Logf("cannot write the artifacts: %v", err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d (replay: EPAXOS_CHAOS_SEED=%d EPAXOS_CHAOS_DURATION=%v)\nreplicas %d\n\n", r.s.seed, r.s.seed, r.s.duration, r.n)
	fmt.Fprintf(&b, "planned schedule:\n")
	for i, st := range r.steps {
		fmt.Fprintf(&b, "  %3d. %s\n", i+1, st)
	}
	if r.nm != nil {
		fmt.Fprintf(&b, "\nwhat happened (seconds since the history's start):\n")
		r.nm.mu.Lock()
		for _, e := range r.nm.events {
			fmt.Fprintf(&b, "  %s\n", e)
		}
		r.nm.mu.Unlock()
	}
	os.WriteFile(filepath.Join(dir, "schedule.txt"), []byte(b.String()), 0o644)

	b.Reset()
	fmt.Fprintf(&b, "%s\n\nfailures:\n", r.summary)
	for _, f := range r.failures {
		fmt.Fprintf(&b, "- %s\n", f)
	}
	os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(b.String()), 0o644)

	if r.rec != nil {
		ops := r.rec.history()
		slices.SortStableFunc(ops, func(a, b op) int { return int(a.Call - b.Call) })
		b.Reset()
		fmt.Fprintf(&b, "# every operation by call time: [process start..end] operation outcome\n")
		for _, o := range ops {
			fmt.Fprintf(&b, "%s\n", o)
		}
		os.WriteFile(filepath.Join(dir, "history.txt"), []byte(b.String()), 0o644)
		var bad []string
		if r.lin != nil {
			bad = r.lin.BadKeys
		}
		if err := visualize(ops, bad, filepath.Join(dir, "linearizability.html"), time.Minute); err != nil {
			t.Logf("cannot write the visualisation: %v", err)
		}
	}
	if r.c != nil {
		for i, log := range r.c.logs {
			copyFile(log, filepath.Join(dir, "logs", fmt.Sprintf("r%d.log", i)))
		}
		for i, f := range r.c.files {
			copyFile(f, filepath.Join(dir, "logs", fmt.Sprintf("r%d.hcl", i)))
		}
	}
	t.Logf("artifacts (seed, schedule, history, porcupine visualisation, replica logs): %s", dir)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
