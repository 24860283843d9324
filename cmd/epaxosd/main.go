// Command epaxosd is the EPaxos* replication daemon, its dev cluster, its
// client CLI and the host of its built-in state-machine plugins.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `Usage: epaxosd <command> [flags]

Commands:
  dev       run a local development cluster (no data is kept)
  agent     run one replica from an HCL configuration file
  propose   propose a command through a replica and print the reply
  bench     measure throughput and latency of a replica set
  tls init  make a CA and certificates for mutual TLS
  version   print the version

Run "epaxosd <command> -h" for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "dev":
		return runDev(args[1:], stdout, stderr)
	case "agent":
		return runAgent(args[1:], stdout, stderr)
	case "propose":
		return runPropose(args[1:], stdout, stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "tls":
		return runTLS(args[1:], stdout, stderr)
	case "plugin":
		// Internal: the daemon runs its built-in state machines by executing
		// its own binary as "epaxosd plugin NAME", a go-plugin process like
		// any external plugin.
		return runPlugin(args[1:], stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "epaxosd", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "epaxosd: unknown command %q\n\n%s", args[0], usage)
	return 2
}
