package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/epaxosd/epaxosd/config"
	"github.com/epaxosd/epaxosd/daemon"
)

// devNames name the replicas of a dev cluster.
var devNames = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}

func runDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("replicas", 3, "number of replicas: 3, 5 or 7")
	pluginName := fs.String("plugin", "kv", "built-in state machine: kv or counter")
	port := fs.Int("port", 7001, "port of the first replica; the others follow")
	level := fs.String("log-level", "info", "trace, debug, info, warn or error")
	thrifty := fs.Bool("thrifty", false, "send PreAccept and Accept to quorum members only")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: epaxosd dev [-replicas 3|5|7] [-plugin kv|counter] [-port 7001]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "epaxosd dev: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *n != 3 && *n != 5 && *n != 7 {
		fmt.Fprintf(stderr, "epaxosd dev: -replicas must be 3, 5 or 7, got %d\n", *n)
		return 2
	}
	if builtinPlugins[*pluginName] == nil {
		fmt.Fprintf(stderr, "epaxosd dev: -plugin must be kv or counter, got %q\n", *pluginName)
		return 2
	}
	if *port < 1 || *port+*n-1 > 65535 {
		fmt.Fprintf(stderr, "epaxosd dev: -port %d leaves no room for %d replicas\n", *port, *n)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "epaxosd dev: cannot find own binary for the built-in plugins: %v\n", err)
		return 1
	}

	replicas := make([]config.Replica, *n)
	addrs := make([]string, *n)
	for i := range replicas {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", *port+i)
		replicas[i] = config.Replica{Name: devNames[i], PID: uint32(i), Address: addrs[i]}
	}
	var daemons []*daemon.Daemon
	defer func() {
		var wg sync.WaitGroup
		for _, d := range daemons {
			wg.Add(1)
			go func() { defer wg.Done(); d.Stop() }()
		}
		wg.Wait()
	}()
	errc := make(chan error, *n)
	for _, r := range replicas {
		cfg := &config.Config{
			Name: r.Name, DataDir: "(none: dev clusters keep no data)", Timeout: config.DefaultTimeout, Aggregate: true, Thrifty: *thrifty,
			ClientRateLimit: config.DefaultClientRateLimit,
			LogLevel:        strings.ToLower(*level), Plugin: config.Plugin{Name: *pluginName}, Replicas: replicas,
		}
		if err := cfg.Validate(); err != nil {
			fmt.Fprintf(stderr, "epaxosd dev: %v\n", err)
			return 1
		}
		dc := daemon.FromConfig(cfg, self, newLogger(r.Name, cfg.LogLevel, stderr))
		dc.DataDir = "" // a dev cluster keeps nothing
		d, err := daemon.New(dc)
		if err != nil {
			fmt.Fprintf(stderr, "epaxosd dev: %v\n", err)
			return 1
		}
		daemons = append(daemons, d)
	}
	for _, d := range daemons {
		d.Start()
		go func(d *daemon.Daemon) {
			if err := <-d.Err(); err != nil {
				errc <- err
			}
		}(d)
	}
	fmt.Fprintf(stdout, `==> epaxosd dev cluster: %d replicas, state machine %q
    This is a development cluster. It keeps no data: everything is lost when it stops.
    It uses no TLS: anyone who can reach these ports can use it.
    Client addresses: %s
    Try: epaxosd propose -addr %s -access write greeting hello
         epaxosd propose -addr %s -access read greeting
    Press Ctrl-C to stop.
`, *n, *pluginName, strings.Join(addrs, ", "), addrs[0], strings.Join(addrs, ","))
	select {
	case sig := <-interrupted():
		fmt.Fprintf(stdout, "==> stopping dev cluster (%s)\n", sig)
		return 0
	case err := <-errc:
		fmt.Fprintf(stderr, "epaxosd dev: %v\n", err)
		return 1
	}
}
