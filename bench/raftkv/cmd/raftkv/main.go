// Command raftkv runs one node of raftkv, a Raft-replicated key-value store
// that serves epaxosd's Client gRPC service, as a baseline for
// `epaxosd bench`. See package raftkv.
//
//	raftkv -id n1 -bind 127.0.0.1:8001 -client 127.0.0.1:9001 \
//	    -peers n1=127.0.0.1:8001/127.0.0.1:9001,n2=127.0.0.1:8002/127.0.0.1:9002,n3=127.0.0.1:8003/127.0.0.1:9003 \
//	    -data data/n1 -store bolt -bootstrap
//
// For wide-area benchmarks on one machine, -delay emulates a one-way network
// delay to each peer (give every node the same symmetric matrix), and -lead
// bootstraps the cluster and waits until this node is the leader, printing
// "raftkv: ID is the leader" on stderr then, and "raftkv: ID lost the
// leadership" if it ever does.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	delays := fs.String("delay", "", "for benchmarks: emulated one-way network delay to peers, ID=DURATION,... (e.g. n2=30ms,n3=35.5ms)")
	lead := fs.Bool("lead", false, "bootstrap as -bootstrap does, then wait until this node is the leader (-lead-timeout) and report it on stderr")
	leadTimeout := fs.Duration("lead-timeout", time.Minute, "with -lead: give up if this node is not the leader by then")
	level := fs.String("log-level", "warn", "trace, debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: raftkv -id ID -peers ID=RAFT/CLIENT,... -data DIR [-bind ADDR] [-client ADDR] [-store bolt|mem] [-bootstrap | -lead] [-delay ID=DURATION,...]")
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
	delay, err := raftkv.ParseDelays(*delays)
	if err != nil {
		fmt.Fprintf(stderr, "raftkv: -delay: %v\n", err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: *id, Level: hclog.LevelFromString(*level), Output: stderr})
	cfg := raftkv.Config{ID: *id, Peers: peers, DataDir: *dataDir, Store: *store, Bootstrap: *bootstrap || *lead, Delay: delay, Logger: log}
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
	stop := make(chan struct{})
	defer close(stop)
	leading := make(chan error, 1) // with -lead: the wait for the leadership is over
	if *lead {
		ctx, cancel := context.WithTimeout(context.Background(), *leadTimeout)
		defer cancel()
		go func() { leading <- n.WaitLeader(ctx) }()
	}
	code := 0
wait:
	for {
		select {
		case s := <-sig:
			log.Info("shutting down", "signal", s.String())
			break wait
		case err := <-n.Served():
			fmt.Fprintf(stderr, "raftkv: client service stopped: %v\n", err)
			code = 1
			break wait
		case err := <-leading:
			if err != nil {
				fmt.Fprintf(stderr, "raftkv: -lead: %v\n", err)
				code = 1
				break wait
			}
			fmt.Fprintf(stderr, "raftkv: %s is the leader\n", *id)
			go watchLeadership(n, *id, stderr, stop)
		}
	}
	if err := n.Close(); err != nil {
		fmt.Fprintf(stderr, "raftkv: close: %v\n", err)
		code = 1
	}
	return code
}

// watchLeadership reports on stderr every time node n loses or regains the
// leadership, until stop closes.
func watchLeadership(n *raftkv.Node, id string, stderr io.Writer, stop <-chan struct{}) {
	for {
		select {
		case leader := <-n.Raft().LeaderCh():
			if leader {
				fmt.Fprintf(stderr, "raftkv: %s is the leader again\n", id)
			} else {
				fmt.Fprintf(stderr, "raftkv: %s lost the leadership\n", id)
			}
		case <-stop:
			return
		}
	}
}
