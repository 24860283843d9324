// Command raftkv runs one node of raftkv, a Raft-replicated key-value store
// that serves epaxosd's Client gRPC service, as a baseline for
// `epaxosd bench`. See package raftkv.
//
//	raftkv -id n1 -bind 127.0.0.1:8001 -client 127.0.0.1:9001 \
//	    -peers n1=127.0.0.1:8001/127.0.0.1:9001,n2=127.0.0.1:8002/127.0.0.1:9002,n3=127.0.0.1:8003/127.0.0.1:9003 \
//	    -data data/n1 -store bolt -bootstrap
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/bench/raftkv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("raftkv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "this node's id, one of -peers")
	bind := fs.String("bind", "", "raft listen address (default: this node's raft address in -peers)")
	clientAddr := fs.String("client", "", "client gRPC listen address (default: this node's client address in -peers)")
	peersFlag := fs.String("peers", "", "the cluster: ID=RAFT_ADDR/CLIENT_ADDR,... (this node included)")
	dataDir := fs.String("data", "", "data directory (snapshots; raft.db with -store bolt)")
	store := fs.String("store", "bolt", "log and stable store: bolt (raft-boltdb, fsync on) or mem (nothing durable)")
	bootstrap := fs.Bool("bootstrap", false, "bootstrap the cluster from -peers if this node has no state")
	level := fs.String("log-level", "warn", "trace, debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: raftkv -id ID -peers ID=RAFT/CLIENT,... -data DIR [-bind ADDR] [-client ADDR] [-store bolt|mem] [-bootstrap]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "raftkv: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *id == "" || *peersFlag == "" || *dataDir == "" {
		fmt.Fprintln(stderr, "raftkv: -id, -peers and -data are required")
		fs.Usage()
		return 2
	}
	if *store != "bolt" && *store != "mem" {
		fmt.Fprintf(stderr, "raftkv: -store must be bolt or mem, got %q\n", *store)
		return 2
	}
	peers, err := raftkv.ParsePeers(*peersFlag)
	if err != nil {
		fmt.Fprintf(stderr, "raftkv: -peers: %v\n", err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: *id, Level: hclog.LevelFromString(*level), Output: stderr})
	cfg := raftkv.Config{ID: *id, Peers: peers, DataDir: *dataDir, Store: *store, Bootstrap: *bootstrap, Logger: log}
	// -bind and -client may listen on other addresses than the ones
	// advertised in -peers (such as 0.0.0.0:PORT).
	if *bind != "" {
		l, err := net.Listen("tcp", *bind)
		if err != nil {
			fmt.Fprintf(stderr, "raftkv: -bind: %v\n", err)
			return 1
		}
		cfg.RaftListener = l
	}
	if *clientAddr != "" {
		l, err := net.Listen("tcp", *clientAddr)
		if err != nil {
			if cfg.RaftListener != nil {
				cfg.RaftListener.Close()
			}
			fmt.Fprintf(stderr, "raftkv: -client: %v\n", err)
			return 1
		}
		cfg.ClientListener = l
	}
	n, err := raftkv.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "raftkv: %v\n", err)
		return 1
	}
	log.Info("started", "store", *store, "client", n.ClientAddr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	code := 0
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case err := <-n.Served():
		fmt.Fprintf(stderr, "raftkv: client service stopped: %v\n", err)
		code = 1
	}
	if err := n.Close(); err != nil {
		fmt.Fprintf(stderr, "raftkv: close: %v\n", err)
		code = 1
	}
	return code
}
