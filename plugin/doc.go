// Package plugin connects epaxosd to the application state machine, which
// runs as a separate process loaded with hashicorp/go-plugin over gRPC.
//
// It has two sides.
//
// The plugin side is the SDK a plugin author uses: implement StateMachine,
// then call Serve from main and do nothing else there:
//
//	func main() {
//		plugin.Serve(kv.New())
//	}
//
// Log through Logger. Never write to standard output: before the handshake
// that breaks start-up, and afterwards it is only a warning in the daemon's
// log. The package must not hide state from the daemon: everything a plugin
// holds is rebuilt by replaying commands into a fresh process.
//
// The host side is what epaxosd uses: Launch starts a plugin binary and
// returns a Host, whose Apply sends one batch of executed commands and waits
// for the batch's results. TestHost serves a StateMachine in-process over the
// same wire, for plugin authors' tests.
//
// The wire is proto/plugin.proto (package pluginpb): one bidirectional
// stream, StateMachine.Apply, carrying numbered batches in execution order and
// their results in the same order. Plugins in other languages serve that
// service with go-plugin's handshake (ProtocolVersion, MagicCookieKey,
// MagicCookieValue) and gRPC health service.
package plugin
