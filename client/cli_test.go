package client

import (
	"bytes"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = ProposeCommand(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestProposeCommand(t *testing.T) {
	cl := newCluster()
	r := startReplica(t, cl, nil)
	addrs := deadAddr(t) + "," + r.addr

	steps := []struct {
		args       []string
		code       int
		stdout     string
		stderrHas  string
		stderrLine bool // stderr is exactly one line
	}{
		{args: []string{"-addr", addrs, "-access", "write", "color", "blue"}, code: 0},
		{args: []string{"-addr", addrs, "-access", "read", "color"}, code: 0, stdout: "blue\n"},
		{args: []string{"-addr", addrs, "-access", "delete", "color"}, code: 0},
		{args: []string{"-addr", addrs, "-timeout", "5s", "-access", "read", "color"}, code: 1,
			stderrHas: `epaxosd propose: state machine error: key "color" not found`, stderrLine: true},
		{args: []string{"-addr", addrs, "-access", "write", "k", "fail"}, code: 1,
			stderrHas: "epaxosd propose: state machine error: value refused", stderrLine: true},
	}
	for _, s := range steps {
		code, stdout, stderr := runCLI(s.args...)
		if code != s.code || stdout != s.stdout || !strings.Contains(stderr, s.stderrHas) {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				s.args, code, stdout, stderr, s.code, s.stdout, s.stderrHas)
		}
		if s.stderrLine && strings.Count(stderr, "\n") != 1 {
			t.Fatalf("%q: stderr is not one line: %q", s.args, stderr)
		}
		if s.code == 0 && stderr != "" {
			t.Fatalf("%q: stderr %q on success", s.args, stderr)
		}
	}
}

func TestProposeCommandUnreachable(t *testing.T) {
	code, stdout, stderr := runCLI("-addr", deadAddr(t), "-timeout", "200ms", "-access", "read", "k")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "epaxosd propose: ") ||
		!strings.Contains(stderr, "deadline exceeded") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestProposeCommandUsage(t *testing.T) {
	const addr = "127.0.0.1:1"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"-addr", addr, "-access", "read"}, "KEY is required"},
		{"write without value", []string{"-addr", addr, "-access", "write", "k"}, "VALUE is required for write"},
		{"read with value", []string{"-addr", addr, "-access", "read", "k", "v"}, "VALUE is not allowed for read"},
		{"delete with value", []string{"-addr", addr, "-access", "delete", "k", "v"}, "VALUE is not allowed for delete"},
		{"unknown access", []string{"-addr", addr, "-access", "update", "k"}, `unknown access "update"`},
		{"no access", []string{"-addr", addr, "k"}, "-access is required"},
		{"no addr", []string{"-access", "read", "k"}, "-addr is required"},
		{"empty addr list", []string{"-addr", " , ", "-access", "read", "k"}, "-addr is required"},
		{"too many args", []string{"-addr", addr, "-access", "write", "k", "v", "w"}, "too many arguments"},
		{"unknown flag", []string{"-addr", addr, "-bogus", "-access", "read", "k"}, "flag provided but not defined: -bogus"},
		{"bad timeout", []string{"-addr", addr, "-timeout", "soon", "-access", "read", "k"}, "invalid value"},
		{"negative timeout", []string{"-addr", addr, "-timeout", "-1s", "-access", "read", "k"}, "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "usage: epaxosd propose") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and a usage error mentioning %q", code, stdout, stderr, tc.want)
			}
		})
	}
	if code, _, stderr := runCLI("-h"); code != 0 || !strings.Contains(stderr, "-access") {
		t.Fatalf("-h: exit %d, stderr %q", code, stderr)
	}
}
