package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
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

func TestLaunch_MissingBinaryErrorNamesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-plugin")
	_, err := Launch(HostConfig{Name: "kv", Command: path, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Launch(%s) error = %v, want one naming the binary", path, err)
	}
}

func TestLaunch_NotExecutableErrorNamesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Launch(HostConfig{Name: "kv", Command: path, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Launch(%s) error = %v, want one naming the binary", path, err)
	}
}

func TestLaunch_HandshakeFailureNamesBinary(t *testing.T) {
	_, err := Launch(HostConfig{
		Name: "bogus", Command: os.Args[0], Env: []string{envTestPlugin + "=stdout"}, Logger: quietLogger(),
	})
	if err == nil || !strings.Contains(err.Error(), os.Args[0]) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("Launch of a non-plugin: error = %v, want one naming %q and %q", err, "bogus", os.Args[0])
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
