package config

import (
	"os"
	"testing"
	"time"
)

// TestExampleConfig checks that config.hcl, the commented example at the top
// of the repository, stays valid and says what its comments say.
func TestExampleConfig(t *testing.T) {
	const path = "../config.hcl"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(src, path, nil)
	if err != nil {
		t.Fatalf("%s does not parse:\n%v", path, err)
	}
	if c.Name != "alpha" || c.Timeout != 500*time.Millisecond || c.LogLevel != "info" ||
		!c.Aggregate || c.Thrifty || c.Seed != 0 {
		t.Errorf("unexpected settings: %+v", c)
	}
	if c.Plugin.Name != "kv" || !c.Plugin.Builtin() {
		t.Errorf("Plugin = %+v, want the built-in kv", c.Plugin)
	}
	want := []Replica{
		{Name: "alpha", PID: 0, Address: "127.0.0.1:7001"},
		{Name: "bravo", PID: 1, Address: "127.0.0.1:7002"},
		{Name: "charlie", PID: 2, Address: "127.0.0.1:7003"},
	}
	if len(c.Replicas) != len(want) {
		t.Fatalf("Replicas = %+v, want %+v", c.Replicas, want)
	}
	for i := range want {
		if c.Replicas[i] != want[i] {
			t.Errorf("Replicas[%d] = %+v, want %+v", i, c.Replicas[i], want[i])
		}
	}

	// Its comments promise that each replica can use the file by setting
	// EPAXOS_NAME, with a data directory of its own.
	dirs := map[string]bool{}
	for _, r := range want {
		c, err := Parse(src, path, envOf(map[string]string{EnvName: r.Name}))
		if err != nil {
			t.Fatalf("EPAXOS_NAME=%s: %v", r.Name, err)
		}
		dirs[c.DataDir] = true
	}
	if len(dirs) != len(want) {
		t.Errorf("replicas share data directories: %v", dirs)
	}
}
