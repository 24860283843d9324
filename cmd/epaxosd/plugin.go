package main

import (
	"fmt"
	"io"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/plugins/counter"
	"github.com/epaxosd/epaxosd/plugins/kv"
)

// builtinPlugins are the state machines compiled into epaxosd.
var builtinPlugins = map[string]func() plugin.StateMachine{
	"kv":      func() plugin.StateMachine { return kv.New() },
	"counter": func() plugin.StateMachine { return counter.New() },
}

// runPlugin serves a built-in state machine over go-plugin. It only
// returns on a usage error: plugin.Serve exits the process when done.
func runPlugin(args []string, stderr io.Writer) int {
	if len(args) != 1 || builtinPlugins[args[0]] == nil {
		fmt.Fprintln(stderr, "epaxosd plugin: usage: epaxosd plugin kv|counter (run by epaxosd itself, not by hand)")
		return 2
	}
	plugin.Serve(builtinPlugins[args[0]]())
	return 0
}
