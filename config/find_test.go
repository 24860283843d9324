package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind_ExplicitPathWins(t *testing.T) {
	dir := t.TempDir()
	explicit := writeFile(t, dir, "explicit.hcl", "", 0o644)
	fromEnv := writeFile(t, dir, "env.hcl", "", 0o644)
	t.Chdir(dir)
	writeFile(t, dir, "config.hcl", "", 0o644)

	got, err := Find(explicit, envOf(map[string]string{EnvConfig: fromEnv}))
	if err != nil || got != explicit {
		t.Errorf("Find = %q, %v; want %q", got, err, explicit)
	}
}

func TestFind_EnvBeatsSearch(t *testing.T) {
	dir := t.TempDir()
	fromEnv := writeFile(t, dir, "env.hcl", "", 0o644)
	t.Chdir(dir)
	writeFile(t, dir, "config.hcl", "", 0o644)

	got, err := Find("", envOf(map[string]string{EnvConfig: fromEnv}))
	if err != nil || got != fromEnv {
		t.Errorf("Find = %q, %v; want %q", got, err, fromEnv)
	}
}

func TestFind_NamedFileMustExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.hcl")
	tests := []struct {
		name     string
		explicit string
		env      map[string]string
		want     string
	}{
		{"Explicit", missing, nil, "config file " + missing + " does not exist"},
		{"Env", "", map[string]string{EnvConfig: missing}, "config file " + missing + " (from EPAXOS_CONFIG) does not exist"},
		{"Directory", filepath.Dir(missing), nil, "config file " + filepath.Dir(missing) + " is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Find(tt.explicit, envOf(tt.env))
			if got != "" || err == nil || err.Error() != tt.want {
				t.Errorf("Find = %q, %v; want \"\", %q", got, err, tt.want)
			}
		})
	}
}

// TestFind_SearchOrder checks ./config.hcl, then ~/.epaxos.hcl, then none.
// /etc/epaxos/config.hcl is checked through search, below, since tests
// must not write to /etc.
func TestFind_SearchOrder(t *testing.T) {
	cwd, home := t.TempDir(), t.TempDir()
	t.Chdir(cwd)
	t.Setenv("HOME", home)
	noEnv := envOf(nil)

	if _, err := os.Stat(SystemConfigFile); err == nil {
		t.Skipf("%s exists on this machine, so Find cannot fail to find a file", SystemConfigFile)
	}
	_, err := Find("", noEnv)
	if !errors.Is(err, ErrNoConfigFile) {
		t.Fatalf("Find with no files: error = %v, want ErrNoConfigFile", err)
	}
	for _, place := range []string{"./config.hcl", filepath.Join(home, ".epaxos.hcl"), SystemConfigFile, EnvConfig} {
		if !strings.Contains(err.Error(), place) {
			t.Errorf("error %q does not mention %s", err, place)
		}
	}

	homeFile := writeFile(t, home, ".epaxos.hcl", "", 0o644)
	if got, err := Find("", noEnv); err != nil || got != homeFile {
		t.Errorf("Find with ~/.epaxos.hcl = %q, %v; want %q", got, err, homeFile)
	}

	writeFile(t, cwd, "config.hcl", "", 0o644)
	if got, err := Find("", noEnv); err != nil || got != "./config.hcl" {
		t.Errorf("Find with ./config.hcl and ~/.epaxos.hcl = %q, %v; want ./config.hcl", got, err)
	}

	if got, err := Find("", nil); err != nil || got != "./config.hcl" {
		t.Errorf("Find with a nil getenv = %q, %v; want ./config.hcl", got, err)
	}
}

func TestSearchPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	want := []string{"./config.hcl", filepath.Join(home, ".epaxos.hcl"), "/etc/epaxos/config.hcl"}
	got := searchPath()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("searchPath() = %q, want %q", got, want)
	}
}

func TestSearch_TakesFirstExistingFile(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.hcl"), filepath.Join(dir, "b.hcl"), filepath.Join(dir, "c.hcl")
	if err := os.Mkdir(a, 0o755); err != nil { // a directory does not count
		t.Fatal(err)
	}
	writeFile(t, dir, "c.hcl", "", 0o644)
	if got, err := search([]string{a, b, c}); err != nil || got != c {
		t.Errorf("search = %q, %v; want %q", got, err, c)
	}
	writeFile(t, dir, "b.hcl", "", 0o644)
	if got, err := search([]string{a, b, c}); err != nil || got != b {
		t.Errorf("search = %q, %v; want %q", got, err, b)
	}
}
