package main

import (
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/hashicorp/go-hclog"
)

// servePprof serves the runtime profiles (CPU, heap, allocations,
// goroutines, mutex and block) under /debug/pprof/ on addr, for `go tool
// pprof http://ADDR/debug/pprof/profile`. It has no authentication: bind
// it to loopback.
func servePprof(addr string, log hclog.Logger) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("serving profiles", "url", "http://"+lis.Addr().String()+"/debug/pprof/")
	go func() {
		if err := http.Serve(lis, mux); err != nil {
			log.Warn("pprof server stopped", "error", err)
		}
	}()
	return nil
}
