package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

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
// plugin's socket) and opens the Apply stream. The caller must Close the
// Host: go-plugin plugins ignore SIGINT, so the process outlives epaxosd
// otherwise.
//
// Errors name the plugin and the binary, as "plugin NAME (COMMAND): ...". A
// binary that does not start says why in a user's words: it does not exist
// or is not executable, wrote to stdout before the handshake, speaks another
// protocol version, expects another magic cookie, or exited (quoting the end
// of its stderr).
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

	stderr := &tailBuffer{max: stderrTail}
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
		// The tail of the plugin's raw stderr, for the error of a plugin
		// that fails to start.
		Stderr: stderr,
	})
	fail := func(step string, err error) (*Host, error) {
		client.Kill()
		return nil, fmt.Errorf("plugin %s (%s): %s: %w", name, cfg.Command, step, err)
	}

	rpc, err := client.Client()
	if err != nil {
		client.Kill() // waits for the process and the end of its stderr
		why := startFailure(err, cmd, timeout, stderr.lastLines(stderrLines))
		return nil, &startError{msg: fmt.Sprintf("plugin %s (%s): %s", name, cfg.Command, why), err: err}
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

// stderrTail is how much of a plugin's standard error Launch keeps, and
// stderrLines how many of its last lines a start-up error quotes.
const (
	stderrTail  = 4 << 10
	stderrLines = 5
)

// startError is the error of a plugin that did not start: a message that
// says what went wrong in a user's words, wrapping go-plugin's or exec's
// error.
type startError struct {
	msg string
	err error
}

func (e *startError) Error() string { return e.msg }
func (e *startError) Unwrap() error { return e.err }

// The messages of go-plugin's Client.Start (v1.8.0) that startFailure
// recognises; go-plugin reports these conditions as plain strings.
const (
	gpUnrecognized    = "Unrecognized remote plugin message: "
	gpNoLines         = "Failed to read any lines from plugin's stdout"
	gpExited          = "plugin exited before we could connect"
	gpTimeout         = "timeout while waiting for plugin to start"
	gpAPIVersion      = "incompatible API version with plugin. Plugin version: "
	gpCoreVersion     = "incompatible core API version with plugin. Plugin version: "
	gpCoreParse       = "error parsing core protocol version"
	gpProtocol        = "unsupported plugin protocol "
	gpNotPluginBinary = "This binary is a plugin. These are not meant to be executed directly."
)

// startFailure explains why go-plugin could not start the plugin process
// cmd within timeout: err is the error of Client.Start, and stderr the last
// lines the process wrote to its standard error (complete, since the process
// has been reaped).
func startFailure(err error, cmd *exec.Cmd, timeout time.Duration, stderr []string) string {
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Sprintf("there is no executable %q in $PATH", cmd.Path)
	case errors.Is(err, fs.ErrNotExist) && errors.As(err, &pathErr):
		if _, serr := os.Stat(cmd.Path); serr == nil {
			return "exists but cannot be run: the interpreter on its #! line, or the dynamic loader it needs, does not exist"
		}
		return "the plugin binary does not exist"
	case errors.Is(err, fs.ErrPermission) && errors.As(err, &pathErr):
		info, serr := os.Stat(cmd.Path)
		switch {
		case serr != nil:
			return "not executable (permission denied)"
		case info.IsDir():
			return "is a directory, not an executable"
		}
		return fmt.Sprintf("not executable (permission denied; its mode is %v)", info.Mode().Perm())
	case errors.Is(err, syscall.ENOEXEC):
		return "is not a program this system can run (exec format error): is it built for another OS or architecture?"
	}

	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, gpUnrecognized):
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, gpUnrecognized), "\n")
		switch {
		case line == "" && strings.Contains(msg, gpNoLines):
			return exitedEarly(cmd, stderr)
		case line == "":
			return "wrote an empty line to stdout before the go-plugin handshake; plugins must log to stderr"
		}
		return fmt.Sprintf("wrote %q to stdout before the go-plugin handshake; plugins must log to stderr", clip(line, 100))
	case msg == gpExited:
		return exitedEarly(cmd, stderr)
	case strings.HasPrefix(msg, gpAPIVersion):
		var v int
		if _, serr := fmt.Sscanf(strings.TrimPrefix(msg, gpAPIVersion), "%d", &v); serr == nil {
			return fmt.Sprintf("speaks plugin protocol version %d, this epaxosd needs %d", v, ProtocolVersion)
		}
	case strings.HasPrefix(msg, gpCoreVersion):
		v, _, _ := strings.Cut(strings.TrimPrefix(msg, gpCoreVersion), ",")
		return fmt.Sprintf("speaks go-plugin core protocol version %s, this epaxosd needs %d: rebuild it with a compatible github.com/hashicorp/go-plugin",
			clip(v, 20), goplugin.CoreProtocolVersion)
	case strings.HasPrefix(msg, gpCoreParse):
		return "wrote something other than the go-plugin handshake to stdout; plugins must log to stderr"
	case strings.HasPrefix(msg, gpProtocol):
		var proto string
		if _, serr := fmt.Sscanf(strings.TrimPrefix(msg, gpProtocol), "%q", &proto); serr == nil {
			return fmt.Sprintf("serves go-plugin's %q protocol; epaxosd plugins must serve gRPC", proto)
		}
	case msg == gpTimeout:
		return fmt.Sprintf("did not complete the go-plugin handshake within %v%s", timeout, stderrSuffix(stderr))
	}
	return "start: " + msg + stderrSuffix(stderr)
}

// exitedEarly describes a plugin process that ended before the handshake.
func exitedEarly(cmd *exec.Cmd, stderr []string) string {
	what := "exited before the go-plugin handshake"
	if ps := cmd.ProcessState; ps != nil {
		what += " (" + ps.String() + ")"
	}
	for _, line := range stderr {
		if strings.Contains(line, gpNotPluginBinary) {
			return fmt.Sprintf("%s: it did not find the magic cookie it expects, so it is not an epaxosd plugin, "+
				"or was built for another version of epaxosd (epaxosd sets %s=%s)", what, MagicCookieKey, MagicCookieValue)
		}
	}
	if len(stderr) == 0 {
		return what + "; it wrote nothing to stderr"
	}
	return what + stderrSuffix(stderr)
}

// stderrSuffix quotes the last lines of a plugin's stderr, if any, for the
// end of an error message.
func stderrSuffix(stderr []string) string {
	if len(stderr) == 0 {
		return ""
	}
	return fmt.Sprintf("; its stderr ends with: %q", strings.Join(stderr, "\n"))
}

// clip shortens s to at most n bytes (and whole runes), marking a cut with "...".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// tailBuffer keeps the last max bytes written to it. It is safe for
// concurrent use.
type tailBuffer struct {
	max int

	mu        sync.Mutex
	buf       []byte
	truncated bool // bytes before buf were dropped
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.truncated = true
	}
	return len(p), nil
}

// lastLines returns up to n of the last non-blank lines written, trimmed,
// leaving out a first line that was cut.
func (b *tailBuffer) lastLines(n int) []string {
	b.mu.Lock()
	text := string(b.buf)
	truncated := b.truncated
	b.mu.Unlock()
	lines := strings.Split(text, "\n")
	if truncated {
		lines = lines[1:]
	}
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, clip(l, 300))
		}
	}
	return out[max(0, len(out)-n):]
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
	var results []Result
	if err == nil {
		results, err = resultsFromReply(resp, batch, len(cmds))
	}
	if err != nil {
		return nil, h.fail(batch, err)
	}
	return results, nil
}

// resultsFromReply returns the results in resp, the plugin's reply to batch
// number batch of n commands, or an error if it is not that batch's reply
// with one result per command.
func resultsFromReply(resp *pluginpb.ApplyResponse, batch uint64, n int) ([]Result, error) {
	switch {
	case resp.GetBatch() != batch:
		return nil, fmt.Errorf("plugin answered batch %d instead", resp.GetBatch())
	case len(resp.GetResults()) != n:
		return nil, fmt.Errorf("plugin returned %d results for %d commands", len(resp.GetResults()), n)
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
