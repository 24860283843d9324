package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// These tests start real plugin processes: the module's plugin binaries, or
// this test binary acting as a plugin (see TestMain).

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: &syncBuffer{}, Level: hclog.Warn})
}

func cmd(a Access, key, value string) Command {
	return Command{Access: a, Key: []byte(key), Value: []byte(value)}
}

func values(rs []Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
		if r.Error != "" {
			out[i] = "error: " + r.Error
		}
	}
	return out
}

func wantValues(t *testing.T, rs []Result, want ...string) {
	t.Helper()
	got := values(rs)
	if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
		t.Fatalf("results = %q, want %q", got, want)
	}
}

func TestLaunch_CounterBatchReturnsRunningTotals(t *testing.T) {
	h, err := Launch(HostConfig{Name: "counter", Command: pluginBinary(t, "epaxos-counter"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := testContext(t)

	rs, err := h.Apply(ctx, []Command{cmd(Write, "c", "1"), cmd(Write, "c", "1"), cmd(Write, "c", "1")})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, rs, "1", "2", "3")

	// The next batch sees the state the first one left, and a bad value is an
	// error reply that changes nothing.
	rs, err = h.Apply(ctx, []Command{cmd(Write, "c", "x"), cmd(Read, "c", ""), cmd(Read, "other", "")})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Error == "" {
		t.Fatalf("write of %q: no error reply, result %+v", "x", rs[0])
	}
	wantValues(t, rs[1:], "3", "0")
}

func TestLaunch_KVWriteThenReadReturnsValue(t *testing.T) {
	h, err := Launch(HostConfig{Name: "kv", Command: pluginBinary(t, "epaxos-kv"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := testContext(t)

	rs, err := h.Apply(ctx, []Command{cmd(Write, "k", "v"), cmd(Read, "k", "")})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, rs, "", "v")
	rs, err = h.Apply(ctx, []Command{cmd(Delete, "k", ""), cmd(Read, "k", "")})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, rs, "", "")
	if err := h.Ping(); err != nil {
		t.Fatalf("Ping of a healthy plugin: %v", err)
	}
}

// A plugin binary that cannot start gets an error that names the plugin and
// the binary and says, in a user's words, what is wrong with it.
func TestLaunch_BrokenPluginErrorSaysWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	notExecutable := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(notExecutable, 0o644); err != nil { // not masked by the umask
		t.Fatal(err)
	}
	notAProgram := filepath.Join(dir, "not-a-program")
	if err := os.WriteFile(notAProgram, []byte("plain text, no #! line\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noInterpreter := filepath.Join(dir, "no-interpreter")
	if err := os.WriteFile(noInterpreter, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self := os.Args[0]
	tests := []struct {
		name    string
		command string
		mode    string // EPAXOSD_TEST_PLUGIN for the test binary
		want    string // the error after "plugin NAME (COMMAND): "
		stderr  string // if set, want is followed by this, and maybe more
		wantErr error  // if set, the error wraps this

		startTimeout time.Duration
	}{
		{name: "StdoutBeforeHandshake", command: self, mode: "hello",
			want: `wrote "hello" to stdout before the go-plugin handshake; plugins must log to stderr`},
		{name: "NotAPlugin", command: self, mode: "stdout",
			want: `wrote "this line is not a go-plugin handshake" to stdout before the go-plugin handshake; plugins must log to stderr`},
		{name: "WrongProtocolVersion", command: self, mode: "version2",
			want: fmt.Sprintf("speaks plugin protocol version %d, this epaxosd needs %d", ProtocolVersion+1, ProtocolVersion)},
		{name: "WrongMagicCookie", command: self, mode: "cookie",
			want: "exited before the go-plugin handshake (exit status 1): it did not find the magic cookie it expects, " +
				"so it is not an epaxosd plugin, or was built for another version of epaxosd (epaxosd sets " +
				MagicCookieKey + "=" + MagicCookieValue + ")"},
		{name: "NotExecutable", command: notExecutable,
			want: "not executable (permission denied; its mode is -rw-r--r--)", wantErr: fs.ErrPermission},
		{name: "Directory", command: dir, want: "is a directory, not an executable"},
		{name: "DoesNotExist", command: filepath.Join(dir, "no-such-plugin"),
			want: "the plugin binary does not exist", wantErr: fs.ErrNotExist},
		{name: "NotInPath", command: "epaxosd-test-no-such-plugin",
			want: `there is no executable "epaxosd-test-no-such-plugin" in $PATH`, wantErr: exec.ErrNotFound},
		{name: "NotAProgram", command: notAProgram,
			want: "is not a program this system can run (exec format error): is it built for another OS or architecture?"},
		{name: "InterpreterDoesNotExist", command: noInterpreter,
			want: "exists but cannot be run: the interpreter on its #! line, or the dynamic loader it needs, does not exist"},
		{name: "NoHandshake", command: self, mode: "hang", startTimeout: 200 * time.Millisecond,
			want: "did not complete the go-plugin handshake within 200ms"},
		{name: "ExitsWithError", command: self, mode: "fail",
			want:   "exited before the go-plugin handshake (exit status 3); its stderr ends with: ",
			stderr: `"loading state: open /var/lib/app/state.db: permission denied\nfatal: cannot continue`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := HostConfig{Name: "broken", Command: tt.command, Logger: quietLogger(), StartTimeout: tt.startTimeout}
			if tt.mode != "" {
				cfg.Env = []string{envTestPlugin + "=" + tt.mode}
			}
			h, err := Launch(cfg)
			if err == nil {
				h.Close()
				t.Fatalf("Launch succeeded")
			}
			want := fmt.Sprintf("plugin broken (%s): %s%s", tt.command, tt.want, tt.stderr)
			if msg := err.Error(); msg != want && (tt.stderr == "" || !strings.HasPrefix(msg, want)) {
				t.Errorf("error:\n%s\nwant:\n%s", msg, want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
			t.Log(err)
		})
	}
}

// A long stderr is quoted by its last lines only, none of them cut.
func TestTailBuffer_KeepsLastLines(t *testing.T) {
	b := &tailBuffer{max: 64}
	for i := range 100 {
		fmt.Fprintf(b, "line %d\n", i)
	}
	if got, want := strings.Join(b.lastLines(3), "|"), "line 97|line 98|line 99"; got != want {
		t.Errorf("lastLines(3) = %q, want %q", got, want)
	}
	for _, l := range b.lastLines(100) {
		if !strings.HasPrefix(l, "line ") || len(l) != len("line 10") {
			t.Errorf("lastLines kept a cut line %q", l)
		}
	}
	if got := (&tailBuffer{max: 64}).lastLines(3); len(got) != 0 {
		t.Errorf("lastLines of nothing = %q", got)
	}
}

func TestLaunch_EmptyCommandIsAnError(t *testing.T) {
	if _, err := Launch(HostConfig{Name: "kv"}); err == nil {
		t.Fatal("Launch with no Command succeeded")
	}
}

func TestClose_StopsTheHostForGood(t *testing.T) {
	h, err := Launch(HostConfig{Name: "kv", Command: pluginBinary(t, "epaxos-kv"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	h.Close() // idempotent
	if _, err := h.Apply(testContext(t), []Command{cmd(Read, "k", "")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: error = %v, want ErrClosed", err)
	}
	if err := h.Ping(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: error = %v, want ErrClosed", err)
	}
}

// A plugin's hclog lines reach the host's logger, under the plugin's name,
// with their level, message and key-value pairs.
func TestLaunch_PluginLogsReachHostLoggerUnderPluginName(t *testing.T) {
	var buf syncBuffer
	hostLog := hclog.New(&hclog.LoggerOptions{Name: "host", Output: &buf, Level: hclog.Debug, JSONFormat: true})
	h := launchTestPlugin(t, "log", HostConfig{Name: "logtest", Logger: hostLog})
	if _, err := h.Apply(testContext(t), []Command{cmd(Write, "a", "1"), cmd(Write, "b", "2")}); err != nil {
		t.Fatal(err)
	}
	h.Close() // returns once the plugin's stderr is drained

	for _, line := range strings.Split(buf.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil || entry["@message"] != "applied batch" {
			continue
		}
		if mod, _ := entry["@module"].(string); !strings.HasPrefix(mod, "host.logtest") {
			t.Errorf("plugin log line under module %q, want it under host.logtest", mod)
		}
		if entry["@level"] != "info" || entry["commands"] != float64(2) {
			t.Errorf("plugin log line = %v, want level info and commands=2", entry)
		}
		return
	}
	t.Fatalf("plugin's log line not in the host log:\n%s", buf.String())
}

func TestLaunch_PluginPanicBreaksHostWithClearError(t *testing.T) {
	h := launchTestPlugin(t, "panic", HostConfig{Name: "panicky", Logger: quietLogger()})
	ctx := testContext(t)
	rs, err := h.Apply(ctx, []Command{cmd(Write, "fine", "")})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, rs, "fine")

	_, err = h.Apply(ctx, []Command{cmd(Write, "boom", "")})
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "panicked") ||
		!strings.Contains(err.Error(), "boom requested") || !strings.Contains(err.Error(), "panicky") {
		t.Fatalf("Apply of a panicking batch: error = %v, want ErrBroken naming the plugin and the panic", err)
	}
	if _, again := h.Apply(ctx, []Command{cmd(Write, "fine", "")}); again != err {
		t.Fatalf("Apply after the failure: error = %v, want the same error %v", again, err)
	}
	if perr := h.Ping(); perr != err {
		t.Fatalf("Ping after the failure: error = %v, want %v", perr, err)
	}
}

func TestLaunch_PluginExitBreaksHost(t *testing.T) {
	h := launchTestPlugin(t, "exit", HostConfig{Name: "mortal", Logger: quietLogger()})
	_, err := h.Apply(testContext(t), []Command{cmd(Write, "die", "")})
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "mortal") {
		t.Fatalf("Apply whose plugin exits: error = %v, want ErrBroken naming the plugin", err)
	}
}
