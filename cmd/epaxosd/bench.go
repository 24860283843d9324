package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/epaxosd/epaxosd/bench"
)

// runBench runs `epaxosd bench ...`; args are the arguments after "bench".
// An interrupt ends the run early, still printing its summary. See
// bench.Command for the syntax and exit statuses.
func runBench(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench.Command(ctx, args, stdout, stderr)
}
