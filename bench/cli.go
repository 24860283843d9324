package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

const usage = `usage: epaxosd bench -addr HOST:PORT[,HOST:PORT...] (-duration D | -ops N)
        [-clients N | -rate R [-max-outstanding N] [-backlog N]] [-conflict P] [-reads P]
        [-value-size B] [-warmup D] [-plugin kv|counter] [-seed S] [-timeout D] [-out FILE]
        [-key-prefix P]
        [-ca FILE -cert FILE -key FILE [-server-name NAME]]`

// getenv reads the environment; tests replace it.
var getenv = os.Getenv

// Command runs the CLI command `epaxosd bench` with args (the arguments
// after "bench") until it is done or ctx ends (an interrupt: the summary of
// what was measured so far is still printed).
//
// It prints progress lines on stderr about once a second and, at the end,
// one summary line on stdout:
//
//	ops/s=... p50_ms=... p90_ms=... p99_ms=... p999_ms=... errors=...
//
// followed on stderr by the detailed counts. With -out FILE it writes one
// JSON line of statistics per second to FILE (see IntervalStats). It
// returns 0 after a run, 2 on a usage error, and 1 on any other error, on
// an interrupted run, and on a run in which no operation succeeded.
//
// Every benchmark client uses a client.Client, the Go client with its
// failover: there is one per replica, each listing the replicas starting
// from a different one, and benchmark client i uses the (i mod replicas)-th,
// so clients are spread round-robin over the replicas, each preferring its
// own until it fails. TLS flags are those of `epaxosd propose`.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("epaxosd bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addrs := fs.String("addr", "", "comma-separated client addresses of the replicas (host:port)")
	duration := fs.Duration("duration", 0, "fixed-duration mode: measure for this long (after the warmup)")
	ops := fs.Int64("ops", 0, "maximum-operations mode: measure this many operations (after the warmup)")
	clients := fs.Int("clients", 32, "closed loop: number of clients, each with one command in flight")
	rate := fs.Float64("rate", 0, "open loop: Poisson arrivals per second (instead of -clients)")
	maxOut := fs.Int("max-outstanding", DefaultMaxOutstanding, "open loop: most requests in flight at once")
	backlog := fs.Int("backlog", DefaultBacklog, "open loop: most arrivals waiting for a request slot; more are dropped (0: none wait)")
	conflict := fs.Float64("conflict", 0, "percent of commands on one hot key shared by all clients")
	reads := fs.Float64("reads", 0, "percent of commands that are reads")
	valueSize := fs.Int("value-size", 16, "bytes in a kv write's value")
	warmup := fs.Duration("warmup", 2*time.Second, "load run before the measurement and left out of the results")
	pluginName := fs.String("plugin", "kv", "state machine of the cluster: kv or counter (counter writes are increments)")
	seed := fs.Uint64("seed", 1, "seed of every random choice")
	keyPrefix := fs.String("key-prefix", DefaultKeyPrefix, "prefix of every key (P/cN/... private, P/hot shared): give concurrent bench processes different prefixes to keep their private keys apart")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each operation, failover included (0: none)")
	outFile := fs.String("out", "", "write per-second statistics as JSON lines to this file")
	caFile := fs.String("ca", "", "mutual TLS: PEM certificate of the CA that signed the replicas' certificates (default $"+client.EnvCAFile+")")
	certFile := fs.String("cert", "", "mutual TLS: this client's PEM certificate, signed by that CA (default $"+client.EnvCertFile+")")
	keyFile := fs.String("key", "", "mutual TLS: the PEM private key of -cert (default $"+client.EnvKeyFile+")")
	serverName := fs.String("server-name", "", "mutual TLS: check the replicas' certificates against this name instead of each address's host")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "epaxosd bench: "+format+"\n", a...)
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has printed the error and the usage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var addrList []string
	for _, a := range strings.Split(*addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrList = append(addrList, a)
		}
	}
	if len(addrList) == 0 {
		return usageErr("-addr is required")
	}
	if (*duration > 0) == (*ops > 0) || *duration < 0 || *ops < 0 {
		return usageErr("%v", ErrMode)
	}
	if *rate > 0 && set["clients"] {
		return usageErr("give -clients (closed loop) or -rate (open loop), not both")
	}
	if (set["max-outstanding"] || set["backlog"]) && !(*rate > 0) {
		return usageErr("-max-outstanding and -backlog apply to open loop (-rate) only")
	}
	cfg := Config{
		Duration: *duration, Ops: *ops, Warmup: *warmup,
		Conflict: *conflict, Reads: *reads, ValueSize: *valueSize, Plugin: *pluginName,
		Seed: *seed, Timeout: *timeout, Progress: stderr, KeyPrefix: *keyPrefix,
	}
	if *rate > 0 {
		cfg.Rate, cfg.MaxOutstanding, cfg.Backlog = *rate, *maxOut, *backlog
		if *backlog == 0 {
			cfg.Backlog = -1 // none wait
		}
		if *maxOut <= 0 {
			return usageErr("-max-outstanding must be positive")
		}
	} else {
		cfg.Clients = *clients
	}
	if *backlog < 0 {
		return usageErr("-backlog must not be negative")
	}

	if err := client.ResolveTLSFlags(caFile, certFile, keyFile, *serverName, getenv); err != nil {
		return usageErr("%v", err)
	}
	// Check the rest of the configuration before connecting or creating
	// the output file; the proposers are filled in below.
	cfg.Proposers = []Proposer{nil}
	if err := cfg.Validate(); err != nil {
		return usageErr("%s", strings.TrimPrefix(err.Error(), "bench: "))
	}

	ccfg := client.Config{Addrs: addrList}
	var err error
	if ccfg.TLS, err = client.LoadTLSFlags(*caFile, *certFile, *keyFile, *serverName); err != nil {
		return fail(stderr, err)
	}
	cls, err := NewClients(ccfg)
	if err != nil {
		return fail(stderr, err)
	}
	defer func() {
		for _, c := range cls {
			c.Close()
		}
	}()
	cfg.Proposers = cfg.Proposers[:0]
	for _, c := range cls {
		cfg.Proposers = append(cfg.Proposers, c)
	}

	if *outFile != "" {
		f, err := os.Create(*outFile)
		if err != nil {
			return fail(stderr, err)
		}
		defer f.Close()
		cfg.Out = f
	}
	b, err := New(cfg)
	if err != nil {
		return usageErr("%v", err)
	}
	res, runErr := b.Run(ctx)
	fmt.Fprintln(stdout, res.SummaryLine())
	fmt.Fprintf(stderr, "epaxosd bench: ok=%d errors=%d elapsed=%s warmup_ops=%d unfinished=%d",
		res.Ops, res.Errors, res.Elapsed.Round(time.Millisecond), res.WarmupOps, res.Unfinished)
	if cfg.Rate > 0 {
		fmt.Fprintf(stderr, " dropped=%d late=%d", res.Dropped, res.Late)
	}
	fmt.Fprintf(stderr, " mean_ms=%.3f max_ms=%.3f\n", ms(res.Latency.Mean), ms(res.Latency.Max))
	if res.FirstError != nil {
		fmt.Fprintf(stderr, "epaxosd bench: first error: %s\n", oneLine(res.FirstError.Error()))
	}
	if f, ok := cfg.Out.(*os.File); ok {
		if err := f.Close(); err != nil && runErr == nil {
			runErr = err
		}
	}
	switch {
	case runErr != nil:
		return fail(stderr, runErr)
	case res.Ops == 0:
		return fail(stderr, errors.New("no operation succeeded"))
	}
	return 0
}

// NewClients returns one client per address of cfg.Addrs: the i-th lists
// the addresses starting from the i-th, so it prefers that replica and fails
// over to the next ones in turn. Close them when done.
func NewClients(cfg client.Config) ([]*client.Client, error) {
	addrs := cfg.Addrs
	var cls []*client.Client
	for i := range addrs {
		c := cfg
		c.Addrs = append(append([]string(nil), addrs[i:]...), addrs[:i]...)
		cl, err := client.New(c)
		if err != nil {
			for _, cl := range cls {
				cl.Close()
			}
			return nil, err
		}
		cls = append(cls, cl)
	}
	if len(cls) == 0 {
		return nil, errors.New("bench: no replica address")
	}
	return cls, nil
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// fail prints err as one line on stderr and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "epaxosd bench: %s\n", oneLine(err.Error()))
	return 1
}
