package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/epaxosd/epaxosd/proto/pluginpb"
)

// DefaultStartTimeout bounds a plugin's start-up, from exec to the end of the
// go-plugin handshake, when HostConfig.StartTimeout is zero.
const DefaultStartTimeout = 10 * time.Second

var (
	// ErrBroken is wrapped by every error of a Host that can no longer be
	// used: a batch failed in a way that leaves the plugin's state unknown
	// (the plugin panicked, died, misbehaved, or the batch was abandoned in
	// flight). Close the Host, Launch a new one and replay into it.
	ErrBroken = errors.New("plugin broken")

	// ErrClosed is wrapped by every error of a Host after Close.
	ErrClosed = errors.New("plugin host closed")
)

// HostConfig says how to start a plugin.
type HostConfig struct {
	// Name names the plugin in logs and errors, e.g. "kv". If empty, the
	// base name of Command is used.
	Name string

	// Command is the plugin binary: a path, or a name looked up in PATH.
	Command string

	// Args are the arguments after the program name, e.g. ["plugin", "kv"]
	// when epaxosd runs its own binary as a built-in plugin.
	Args []string

	// Logger receives go-plugin's messages about the plugin and the plugin's
	// own log lines, both under Logger.Named(Name); the plugin's lines are
	// further named after the binary's base name. Its level when Launch is
	// called is passed to the plugin, which then skips finer lines. If nil,
	// hclog.Default() is used.
	Logger hclog.Logger

	// Env is added to epaxosd's own environment for the plugin process, as
	// "KEY=value" entries that override epaxosd's.
	Env []string

	// StartTimeout bounds start-up; zero means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Host is a running plugin and the open Apply stream to it.
//
// A Host that fails stays failed: after the first error wrapping ErrBroken
// every call returns that same error. Errors that do not wrap ErrBroken or
// ErrClosed (a context already done, an invalid Command) were caught before
// anything was sent and leave the Host usable.
type Host struct {
	name   string
	log    hclog.Logger
	stream grpc.BidiStreamingClient[pluginpb.ApplyRequest, pluginpb.ApplyResponse]
	cancel context.CancelFunc // ends stream
	ping   func() error
	kill   func()           // stops the plugin and waits until it is gone
	client *goplugin.Client // nil for a TestHost

	mu    sync.Mutex // held by Apply for a whole round trip
	batch uint64     // number of the last batch sent

	stateMu sync.Mutex
	failed  error // set once: the error every later call returns
	closed  bool

	closeOnce sync.Once
}

// Launch starts the plugin binary cfg.Command, completes the go-plugin
// handshake (gRPC only, this package's ProtocolVersion and cookie, and
// go-plugin's automatic mutual TLS, so that no other process can use the
// plugin's socket) and opens the Apply stream. Errors name the plugin and the
// binary. The caller must Close the Host: go-plugin plugins ignore SIGINT, so
// the process outlives epaxosd otherwise.
func Launch(cfg HostConfig) (*Host, error) {
	if cfg.Command == "" {
		return nil, errors.New("plugin: launch: HostConfig.Command is empty")
	}
	name := cfg.Name
	if name == "" {
		name = filepath.Base(cfg.Command)
	}
	base := cfg.Logger
	if base == nil {
		base = hclog.Default()
	}
	log := base.Named(name)
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}

	cmd := exec.Command(cfg.Command, cfg.Args...)
	// go-plugin would put epaxosd's environment after ours, letting it win;
	// build the whole environment here instead, with cfg.Env last.
	cmd.Env = append(os.Environ(), envLogLevel+"="+log.GetLevel().String())
	cmd.Env = append(cmd.Env, cfg.Env...)

	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          goplugin.PluginSet{dispenseName: &grpcPlugin{}},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true, // one-time certificates: only this process can talk to the plugin
		Logger:           log,
		Managed:          false,
		StartTimeout:     timeout,
		// What the plugin writes to os.Stdout or os.Stderr after the
		// handshake arrives here rather than in its log lines.
		SyncStdout: log.Named("stdout").StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
		SyncStderr: log.Named("stderr").StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}),
	})
	fail := func(step string, err error) (*Host, error) {
		client.Kill()
		return nil, fmt.Errorf("plugin %s (%s): %s: %w", name, cfg.Command, step, err)
	}

	rpc, err := client.Client()
	if err != nil {
		return fail("start", err)
	}
	raw, err := rpc.Dispense(dispenseName)
	if err != nil {
		return fail("dispense", err)
	}
	sc, ok := raw.(pluginpb.StateMachineClient)
	if !ok {
		return fail("dispense", fmt.Errorf("got %T, want a StateMachine client", raw))
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := sc.Apply(ctx)
	if err != nil {
		cancel()
		return fail("open Apply stream", err)
	}
	h := newHost(name, log, stream, cancel, rpc.Ping, func() { killHard(client, cmd) })
	h.client = client
	return h, nil
}

// killGrace is how long a plugin gets to exit on go-plugin's graceful
// shutdown before it is killed.
const killGrace = 2 * time.Second

// killHard stops the plugin process. go-plugin's Kill first asks the plugin
// to shut down over gRPC and waits for that call without a deadline, which
// never returns if the process hangs (or is stopped); after killGrace the
// process is killed outright, which also ends that call.
func killHard(client *goplugin.Client, cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() {
		client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(killGrace):
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		<-done
	}
}

func newHost(name string, log hclog.Logger,
	stream grpc.BidiStreamingClient[pluginpb.ApplyRequest, pluginpb.ApplyResponse],
	cancel context.CancelFunc, ping func() error, kill func()) *Host {
	return &Host{name: name, log: log, stream: stream, cancel: cancel, ping: ping, kill: kill}
}

// Apply sends cmds to the plugin as one batch and waits for its results, one
// per command, in order. An empty cmds returns no results without contacting
// the plugin.
//
// Batches are applied in the order Apply is called. Apply is safe to call
// from several goroutines but runs one batch at a time, in no particular
// order between callers; epaxosd, which must apply in execution order, calls
// it from one goroutine.
//
// If ctx ends before the batch is sent, Apply returns ctx's error and the
// Host stays usable. If ctx ends while the batch is in flight, the plugin may
// or may not have applied it, so the Host becomes broken (ErrBroken).
func (h *Host) Apply(ctx context.Context, cmds []Command) ([]Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.err(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("plugin %s: apply: %w", h.name, err)
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	pcs, err := commandsToProto(cmds)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: apply: %w", h.name, err)
	}

	h.batch++
	batch := h.batch
	resp, err := h.roundTrip(ctx, &pluginpb.ApplyRequest{Batch: batch, Commands: pcs})
	switch {
	case err != nil:
	case resp.GetBatch() != batch:
		err = fmt.Errorf("plugin answered batch %d instead", resp.GetBatch())
	case len(resp.GetResults()) != len(cmds):
		err = fmt.Errorf("plugin returned %d results for %d commands", len(resp.GetResults()), len(cmds))
	}
	if err != nil {
		return nil, h.fail(batch, err)
	}
	return resultsFromProto(resp.GetResults()), nil
}

// roundTrip sends req and receives its response. If ctx ends meanwhile, it
// ends the stream, which is then unusable.
func (h *Host) roundTrip(ctx context.Context, req *pluginpb.ApplyRequest) (*pluginpb.ApplyResponse, error) {
	stop := context.AfterFunc(ctx, h.cancel)
	var resp *pluginpb.ApplyResponse
	err := h.stream.Send(req)
	if err == nil || errors.Is(err, io.EOF) {
		// On io.EOF the plugin ended the stream, and Recv returns why.
		resp, err = h.stream.Recv()
	}
	if !stop() {
		return nil, fmt.Errorf("abandoned in flight, so it may or may not have been applied: %w", ctx.Err())
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("plugin ended the Apply stream")
	}
	return resp, err
}

// brokenError is the error of a Host whose plugin state became unknown.
type brokenError struct {
	msg   string
	cause error
}

func (e *brokenError) Error() string   { return e.msg }
func (e *brokenError) Unwrap() []error { return []error{ErrBroken, e.cause} }

// fail makes h broken, unless it already failed or was closed, and returns
// the error every later call will return.
func (h *Host) fail(batch uint64, cause error) error {
	h.stateMu.Lock()
	defer h.stateMu.Unlock()
	if h.closed {
		return h.closedErr()
	}
	if h.failed == nil {
		h.failed = &brokenError{
			msg:   fmt.Sprintf("plugin %s: batch %d failed, plugin broken: %v", h.name, batch, cause),
			cause: cause,
		}
		h.log.Error("plugin broken", "batch", batch, "error", cause)
	}
	return h.failed
}

func (h *Host) err() error {
	h.stateMu.Lock()
	defer h.stateMu.Unlock()
	if h.closed {
		return h.closedErr()
	}
	return h.failed
}

func (h *Host) closedErr() error { return fmt.Errorf("plugin %s: %w", h.name, ErrClosed) }

// Ping reports whether the plugin process answers go-plugin's health check
// and the Host is still usable; it returns the Host's error otherwise. It has
// no deadline of its own: it blocks while the plugin neither answers nor
// drops the connection (a stopped process, say).
func (h *Host) Ping() error {
	if err := h.err(); err != nil {
		return err
	}
	if err := h.ping(); err != nil {
		return fmt.Errorf("plugin %s: ping: %w", h.name, err)
	}
	return nil
}

// Close ends the Apply stream and stops the plugin process, killing it if it
// does not exit within go-plugin's grace period; it returns once the process
// is gone. An Apply in flight returns an error wrapping ErrClosed. Close may
// be called more than once, from any goroutine.
func (h *Host) Close() {
	h.closeOnce.Do(func() {
		h.stateMu.Lock()
		h.closed = true
		h.stateMu.Unlock()
		h.cancel()
		h.kill()
	})
}
