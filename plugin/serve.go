package plugin

import (
	"math"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// The go-plugin handshake between epaxosd and a plugin. A plugin in another
// language must check that the environment variable MagicCookieKey holds
// MagicCookieValue, announce ProtocolVersion on its handshake line, and
// support go-plugin's automatic mutual TLS, which epaxosd always asks for:
// serve TLS with a certificate of its own, sent on the handshake line, to
// clients presenting the one in PLUGIN_CLIENT_CERT (Serve does all this).
const (
	// ProtocolVersion is the version of the plugin protocol: the service in
	// proto/plugin.proto and the contract of StateMachine. It changes when
	// either changes incompatibly; epaxosd refuses plugins of another
	// version.
	ProtocolVersion = 1

	// MagicCookieKey and MagicCookieValue tell a plugin binary that epaxosd
	// started it. They are not a security measure: run directly, a plugin
	// prints a short explanation and exits.
	MagicCookieKey   = "EPAXOSD_PLUGIN"
	MagicCookieValue = "25496bb2c4a470be43db977fea8d5997"
)

// envLogLevel carries the host logger's level to the plugin, so the plugin
// does not encode log lines the host would drop.
const envLogLevel = "EPAXOSD_PLUGIN_LOG_LEVEL"

// dispenseName is the name of the one plugin in the go-plugin plugin set.
const dispenseName = "state_machine"

var handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// stderr is the process's standard error as it was before goplugin.Serve
// replaced os.Stderr with a pipe. epaxosd reads it and re-logs each JSON line
// under the plugin's name.
var stderr = os.Stderr

var logger = sync.OnceValue(func() hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(envLogLevel))
	if level == hclog.NoLevel {
		level = hclog.Trace // let the host filter
	}
	return hclog.New(&hclog.LoggerOptions{
		Output:     stderr,
		JSONFormat: true,
		Level:      level,
	})
})

// Logger returns the logger a plugin should use. It writes JSON lines to the
// process's standard error, which epaxosd re-logs under the plugin's name at
// the same level, with the same key-value pairs. It is safe for concurrent
// use and may be called before Serve.
func Logger() hclog.Logger { return logger() }

// Serve serves sm to the epaxosd process that started this one. It is the
// only call a plugin's main makes, and nothing may be written to standard
// output before it (the go-plugin handshake goes there).
//
// Batches are applied one at a time, strictly in the order they arrive, and
// each is answered with the same batch number before the next is read. If
// sm.Apply panics or returns the wrong number of results, the batch fails
// with an error that epaxosd reports under the plugin's name, and every later
// batch is refused: the state may be half-modified, so the only safe
// continuation is a fresh process rebuilt by replay.
//
// Serve returns when epaxosd shuts the plugin down; main should then return.
// Run directly rather than by epaxosd, it prints an explanation to standard
// error and exits with status 1.
func Serve(sm StateMachine) {
	if sm == nil {
		panic("plugin.Serve: nil StateMachine")
	}
	log := Logger()
	go exitWithParent(log)
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         goplugin.PluginSet{dispenseName: &grpcPlugin{sm: sm, log: log}},
		GRPCServer:      newGRPCServer,
		Logger:          log,
	})
}

// newGRPCServer is goplugin.DefaultGRPCServer with gRPC's 4 MiB limit on
// received messages lifted: one request carries a whole batch of commands.
// The host side's limits are already lifted by go-plugin.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return goplugin.DefaultGRPCServer(append(opts, grpc.MaxRecvMsgSize(math.MaxInt32)))
}
