package main

import (
	"io"

	"github.com/epaxosd/epaxosd/client"
)

// runPropose runs `epaxosd propose ...`; args are the arguments after
// "propose". See client.ProposeCommand for the syntax and exit statuses.
func runPropose(args []string, stdout, stderr io.Writer) int {
	return client.ProposeCommand(args, stdout, stderr)
}
