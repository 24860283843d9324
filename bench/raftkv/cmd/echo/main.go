// Command echo serves epaxosd's Client gRPC service (Propose and
// ProposeBatches) with no replication and no disk: each request is applied at
// once to an in-memory store with the kv plugin's semantics and answered
// (see raftkv.Echo). It is the benchmarks' baseline for "the same client
// protocol with no consensus at all".
//
//	echo -client 127.0.0.1:9001
//	echo -client 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003   # one store, three listeners
//	epaxosd bench -addr 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 -duration 10s
//
// Listening on as many addresses as a cluster has replicas gives `epaxosd
// bench` the same number of connections as against the cluster. SIGINT or
// SIGTERM stops it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc"

	"github.com/epaxosd/epaxosd/bench/raftkv"
	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stderr, sig, nil))
}

// run serves until a signal arrives on stop or a listener fails. If ready
// is not nil, it receives the addresses listened on once serving.
func run(args []string, stderr io.Writer, stop <-chan os.Signal, ready chan<- []string) int {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clientAddrs := fs.String("client", "127.0.0.1:9001", "client gRPC listen address(es), comma-separated: one store serves them all")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: echo [-client ADDR[,ADDR...]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "echo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var addrs []string
	for _, a := range strings.Split(*clientAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		fmt.Fprintln(stderr, "echo: -client names no address")
		return 2
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintf(stderr, "echo: -client: %v\n", err)
			return 1
		}
		ls = append(ls, l)
	}
	// The same message limits as epaxosd and raftkv.
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	epaxospb.RegisterClientServer(srv, raftkv.NewEcho())
	served := make(chan error, len(ls))
	var listening []string
	for _, l := range ls {
		go func() { served <- srv.Serve(l) }()
		listening = append(listening, l.Addr().String())
	}
	fmt.Fprintf(stderr, "echo: serving on %s\n", strings.Join(listening, ","))
	if ready != nil {
		ready <- listening
	}
	code := 0
	select {
	case <-stop:
	case err := <-served:
		fmt.Fprintf(stderr, "echo: client service stopped: %v\n", err)
		code = 1
	}
	srv.Stop()
	ls = nil // Stop closed them
	return code
}
