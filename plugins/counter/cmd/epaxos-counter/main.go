// Command epaxos-counter is the counter state machine as an epaxosd plugin
// binary.
//
// This is all a plugin's main needs: build the state machine and hand it to
// plugin.Serve. Copy it for your own plugin. Print nothing to standard output
// before or after (go-plugin's handshake uses it); log with plugin.Logger().
package main

import (
	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/plugins/counter"
)

func main() {
	plugin.Serve(counter.New())
}
