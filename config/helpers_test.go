package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// tail3 is the rest of a valid file after its top-level attributes: the kv
// plugin and a three-replica cluster. It is 13 lines long; a test that puts
// k lines before it has the plugin on line k+1 and replica "alpha" on line
// k+2.
const tail3 = `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "bravo" {
  pid     = 1
  address = "127.0.0.1:7002"
}
replica "charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
`

// names are replica names for generated clusters.
var names = []string{
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
	"juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec",
}

// clusterHCL returns n replica blocks, four lines each, with pids 0..n-1
// and ports 7001 upwards.
func clusterHCL(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "replica %q {\n  pid     = %d\n  address = \"127.0.0.1:%d\"\n}\n", names[i], i, 7001+i)
	}
	return b.String()
}

// envOf returns a getenv that reports the variables in m and nothing else.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes content to dir/name with the given mode and returns its
// path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // not masked by the umask
		t.Fatal(err)
	}
	return path
}

// mustParse parses src as dir/epaxos.hcl with the given environment and
// fails the test on error.
func mustParse(t *testing.T, src string, env map[string]string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), filepath.Join(t.TempDir(), "epaxos.hcl"), envOf(env))
	if err != nil {
		t.Fatalf("Parse failed:\n%v\nsource:\n%s", err, src)
	}
	return c
}

// diagsOf returns the diagnostics of an *Error, failing the test if err is
// not one.
func diagsOf(t *testing.T, err error) hcl.Diagnostics {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T, not *config.Error: %v", err, err)
	}
	return ce.Diags
}

// checkLines checks that err has exactly one line per want, each starting
// with the corresponding want.
func checkLines(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want:\n%s", strings.Join(want, "\n"))
	}
	diags := diagsOf(t, err)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(diags) {
		t.Errorf("%d lines for %d diagnostics", len(lines), len(diags))
	}
	ok := len(lines) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(lines[i], want[i])
	}
	if !ok {
		t.Errorf("error:\n%v\nwant lines starting with:\n%s", err, strings.Join(want, "\n"))
	}
}
