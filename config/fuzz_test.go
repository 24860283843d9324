package config

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzConfigParse feeds Parse arbitrary bytes as a configuration file. The
// seed corpus (testdata/fuzz/FuzzConfigParse) holds the repository's
// config.hcl, every file the package's tests parse, and some odd syntax.
//
// Whatever the file, Parse must not panic and must return exactly one of a
// Config and an error. An error must be an *Error whose every diagnostic is
// an error pointing into the file, with a position consistent with the
// file's text and printed as file:line:col, since nothing comes from the
// environment here. A Config must satisfy the invariants Config documents
// (an odd cluster of 3 to 15, PIDs exactly 0..N-1, unique valid names and
// addresses, Name among them, ...) and pass its own Validate. Parsing the
// same bytes twice gives the same answer.
func FuzzConfigParse(f *testing.F) {
	// The host name is fixed so that a file without a name parses the same
	// way everywhere; "fuzz-host" is a valid replica name a file may use.
	old := hostname
	hostname = func() (string, error) { return "fuzz-host", nil }
	f.Cleanup(func() { hostname = old })

	file := filepath.Join(f.TempDir(), "epaxos.hcl")
	f.Add([]byte(top + tail3))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, file, nil)
		switch {
		case c == nil && err == nil:
			t.Fatal("Parse returned neither a Config nor an error")
		case c != nil && err != nil:
			t.Fatalf("Parse returned a Config along with an error: %v", err)
		case err != nil:
			checkFileDiags(t, src, file, err)
		default:
			checkParsedConfig(t, c, file)
		}

		c2, err2 := Parse(src, file, nil)
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(c, c2) {
			t.Fatalf("Parse is not deterministic:\nfirst:  %+v, %v\nsecond: %+v, %v", c, err, c2, err2)
		}
	})
}

// checkFileDiags checks that err, from Parse of src as file without an
// environment, reports only errors at well-formed positions inside src.
func checkFileDiags(t *testing.T, src []byte, file string, err error) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T, not *config.Error: %v", err, err)
	}
	if len(ce.Diags) == 0 {
		t.Fatalf("*Error without diagnostics: %q", err)
	}
	// One line per problem, each starting with its position (the corpus
	// entry multiline-hcl-detail has a hclsyntax detail of several lines).
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(ce.Diags) {
		t.Errorf("%d lines of error text with a position for %d diagnostics:\n%v", len(lines), len(ce.Diags), err)
	}
	for i, d := range ce.Diags {
		if d.Severity != hcl.DiagError {
			t.Errorf("diagnostic %q has severity %v, want error", d.Summary, d.Severity)
		}
		if d.Summary == "" {
			t.Errorf("diagnostic without a summary: %+v", d)
		}
		s := d.Subject
		if s == nil {
			t.Errorf("diagnostic %q: %q has no position in the file", d.Summary, d.Detail)
			continue
		}
		if s.Filename != file {
			t.Errorf("diagnostic %q is in %q, want %q", d.Summary, s.Filename, file)
		}
		if s.Start.Byte < 0 || s.Start.Byte > s.End.Byte || s.End.Byte > len(src) {
			t.Errorf("diagnostic %q: range bytes %d..%d outside the file's %d bytes",
				d.Summary, s.Start.Byte, s.End.Byte, len(src))
			continue
		}
		if s.Start.Line < 1 || s.Start.Column < 1 {
			t.Errorf("diagnostic %q at line %d, column %d", d.Summary, s.Start.Line, s.Start.Column)
		}
		// Parse rejects a file that is not UTF-8 at its first bad byte (the
		// corpus entry invalid-utf8-swallows-newline: hclsyntax miscounts
		// lines after one), so every position's line is exact.
		if want := 1 + bytes.Count(src[:s.Start.Byte], []byte("\n")); s.Start.Line != want {
			t.Errorf("diagnostic %q at line %d, but its byte offset %d is on line %d",
				d.Summary, s.Start.Line, s.Start.Byte, want)
		}
		if i < len(lines) {
			if prefix := fmt.Sprintf("%s:%d:%d: ", file, s.Start.Line, s.Start.Column); !strings.HasPrefix(lines[i], prefix) {
				t.Errorf("error line %q does not start with %q", lines[i], prefix)
			}
		}
	}
	if t.Failed() {
		t.Logf("source:\n%q\nerror:\n%v", src, err)
	}
}

// checkParsedConfig checks the invariants that Config promises for what
// Parse returns.
func checkParsedConfig(t *testing.T, c *Config, file string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("config: %+v", c)
		}
	}()
	if c.File != file {
		t.Errorf("File = %q, want %q", c.File, file)
	}
	n := len(c.Replicas)
	if n < MinReplicas || n > MaxReplicas || n%2 == 0 {
		t.Errorf("%d replicas; want an odd number from %d to %d", n, MinReplicas, MaxReplicas)
	}
	names := make(map[string]bool, n)
	addrs := make(map[string]bool, n)
	for i, r := range c.Replicas {
		if r.PID != uint32(i) {
			t.Errorf("Replicas[%d].PID = %d, want %d", i, r.PID, i)
		}
		if !validName(r.Name) || names[r.Name] {
			t.Errorf("Replicas[%d].Name %q is invalid or repeated", i, r.Name)
		}
		names[r.Name] = true
		if err := checkAddress(r.Address); err != nil || addrs[addressKey(r.Address)] {
			t.Errorf("Replicas[%d].Address %q is invalid (%v) or repeated", i, r.Address, err)
		}
		addrs[addressKey(r.Address)] = true
	}
	if self := c.Self(); self.Name == "" || self.Name != c.Name {
		t.Errorf("Name %q is not a replica", c.Name)
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		// The file's directory is absolute, and relative paths are taken relative to it.
		t.Errorf("DataDir = %q, want an absolute path", c.DataDir)
	}
	if c.Timeout <= 0 {
		t.Errorf("Timeout = %v, want > 0", c.Timeout)
	}
	if !slices.Contains(LogLevels, c.LogLevel) {
		t.Errorf("LogLevel = %q, want one of %v", c.LogLevel, LogLevels)
	}
	switch p := c.Plugin; {
	case p.Builtin() && (!slices.Contains(BuiltinPlugins, p.Name) || len(p.Args) > 0):
		t.Errorf("Plugin = %+v: built-in plugins are %v and take no arguments", p, BuiltinPlugins)
	case !p.Builtin() && (p.Name == "" || !filepath.IsAbs(p.Command)):
		t.Errorf("Plugin = %+v: an external plugin has a name and an absolute command", p)
	}
	if tls := c.TLS; tls != nil && (tls.CAFile == "" || tls.CertFile == "" || tls.KeyFile == "") {
		t.Errorf("TLS = %+v, want all three files", tls)
	}
	for name, d := range c.EmulatedPeerDelay {
		if !names[name] || d < 0 {
			t.Errorf("EmulatedPeerDelay[%q] = %v: want a replica's name and a delay of at least 0", name, d)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of a parsed Config = %v", err)
	}
}
