package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/epaxosd/epaxosd/config"
	"github.com/epaxosd/epaxosd/daemon"
)

func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: $EPAXOS_CONFIG, ./config.hcl, ~/.epaxos.hcl, /etc/epaxos/config.hcl)")
	validate := fs.Bool("validate", false, "check the configuration and exit")
	pprofAddr := fs.String("pprof", "", "serve Go's net/http/pprof profiles on this address (keep it on loopback)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: epaxosd agent [-config FILE] [-validate]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "epaxosd agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	file, err := config.Find(*path, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "epaxosd agent: %v\n", err)
		return 1
	}
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *validate {
		security := "no TLS"
		if cfg.TLS != nil {
			security = "mutual TLS"
		}
		fmt.Fprintf(stdout, "%s: valid; replica %q of %d, plugin %q, %s\n", file, cfg.Name, len(cfg.Replicas), cfg.Plugin.Name, security)
		return 0
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "epaxosd agent: cannot find own binary for the built-in plugins: %v\n", err)
		return 1
	}
	log := newLogger(cfg.Name, cfg.LogLevel, stderr)
	if cfg.TLS == nil {
		log.Warn("no tls block: peer and client traffic is unauthenticated and unencrypted")
	} else {
		log.Info("mutual TLS for peers and clients", "ca_file", cfg.TLS.CAFile, "cert_file", cfg.TLS.CertFile)
	}
	d, err := daemon.New(daemon.FromConfig(cfg, self, log))
	if err != nil {
		fmt.Fprintf(stderr, "epaxosd agent: %v\n", err)
		return 1
	}
	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr, log); err != nil {
			fmt.Fprintf(stderr, "epaxosd agent: -pprof: %v\n", err)
			return 1
		}
	}
	d.Start()
	defer d.Stop()
	select {
	case sig := <-interrupted():
		log.Info("shutting down", "signal", sig.String())
		return 0
	case err := <-d.Err():
		log.Error("fatal", "error", err)
		return 1
	}
}
