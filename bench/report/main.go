// Command report turns a results directory of bench/matrix.sh (or of
// bench/run.sh with RESULTS=DIR) into BENCHMARKS.md: the machine, the
// commands, a table per (replicas, value size, clients) with each
// system's throughput and p99 by conflict rate and epaxosd's throughput
// relative to the Raft baselines and to the unreplicated echo server, and
// PNG plots of latency against throughput and of the hot-key run second
// by second.
//
//	cd bench/report && go run . -results ../results/DIR -out ../../BENCHMARKS.md
//
// The plots go to -plots (default: docs/bench beside -out) and are linked
// from the document by relative paths. With -require-ok it fails when any
// run failed, measured no successful operation or had failed operations
// (make bench-smoke).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	results := fs.String("results", "", "the results directory (results.jsonl, series/, run.json)")
	out := fs.String("out", "BENCHMARKS.md", "the Markdown file to write")
	plots := fs.String("plots", "", "directory for the PNG plots (default: docs/bench beside -out)")
	requireOK := fs.Bool("require-ok", false, "fail if any run failed, measured no successful operation or had failed operations")
	wan := fs.String("wan", "", "also report a bench/wan/run.sh results directory (latency.jsonl, hotkey.jsonl)")
	notes := fs.String("notes", "", "a Markdown file to include, verbatim, after the machine section (the analysis)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: report -results DIR [-out BENCHMARKS.md] [-plots DIR] [-require-ok] [-wan DIR] [-notes FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *results == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *plots == "" {
		*plots = filepath.Join(filepath.Dir(*out), "docs", "bench")
	}
	cmdline := "report " + strings.Join(args, " ")
	if err := Generate(Options{Results: *results, Out: *out, Plots: *plots, RequireOK: *requireOK, Command: cmdline, WAN: *wan, Notes: *notes}); err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "report: wrote %s and plots in %s\n", *out, *plots)
	return 0
}
