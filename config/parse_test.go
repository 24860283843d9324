package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestParse_AcceptsOddClusters(t *testing.T) {
	for _, n := range []int{3, 5, 7, 15} {
		t.Run(fmt.Sprintf("%dReplicas", n), func(t *testing.T) {
			c := mustParse(t, top+"plugin \"kv\" {}\n"+clusterHCL(n), nil)
			if len(c.Replicas) != n {
				t.Fatalf("got %d replicas, want %d", len(c.Replicas), n)
			}
			for i, r := range c.Replicas {
				want := Replica{Name: names[i], PID: uint32(i), Address: fmt.Sprintf("127.0.0.1:%d", 7001+i)}
				if r != want {
					t.Errorf("Replicas[%d] = %+v, want %+v", i, r, want)
				}
			}
			if got := c.Self(); got != c.Replicas[0] {
				t.Errorf("Self() = %+v, want %+v", got, c.Replicas[0])
			}
		})
	}
}

func TestParse_SortsReplicasByPID(t *testing.T) {
	c := mustParse(t, top+`plugin "kv" {}
replica "charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "bravo" {
  pid     = 1
  address = "127.0.0.1:7002"
}
`, nil)
	var got []string
	for i, r := range c.Replicas {
		if r.PID != uint32(i) {
			t.Errorf("Replicas[%d].PID = %d", i, r.PID)
		}
		got = append(got, r.Name)
	}
	if want := []string{"alpha", "bravo", "charlie"}; !slices.Equal(got, want) {
		t.Errorf("replica order = %v, want %v", got, want)
	}
}

func TestParse_Defaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "epaxos.hcl")
	c, err := Parse([]byte(top+tail3), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		File:      file,
		Name:      "alpha",
		DataDir:   filepath.Join(dir, "data", "alpha"),
		Timeout:   500 * time.Millisecond,
		Thrifty:   false,
		Aggregate: true,
		LogLevel:  "info",
		Seed:      0,
		Plugin:    Plugin{Name: "kv"},

		ClientRateLimit: DefaultClientRateLimit,
	}
	got := *c
	got.Replicas = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if !c.Plugin.Builtin() {
		t.Errorf("plugin without command is not built-in")
	}
}

func TestParse_NullMeansUnset(t *testing.T) {
	c := mustParse(t, top+"timeout = null\nlog_level = null\naggregate = null\n"+tail3, nil)
	if c.Timeout != DefaultTimeout || c.LogLevel != DefaultLogLevel || c.Aggregate != DefaultAggregate {
		t.Errorf("null attributes did not leave defaults: timeout %v, log_level %q, aggregate %v",
			c.Timeout, c.LogLevel, c.Aggregate)
	}
}

func TestParse_FileValues(t *testing.T) {
	c := mustParse(t, `name      = "bravo"
data_dir  = "/var/lib/epaxos"
timeout   = "1.5s"
thrifty   = true
aggregate = false
log_level = "DEBUG"
seed      = -42
`+tail3, nil)
	if c.Name != "bravo" || c.DataDir != "/var/lib/epaxos" || c.Timeout != 1500*time.Millisecond ||
		!c.Thrifty || c.Aggregate || c.LogLevel != "debug" || c.Seed != -42 {
		t.Errorf("file values not taken: %+v", c)
	}
	if c.Self().PID != 1 {
		t.Errorf("Self() = %+v, want bravo with pid 1", c.Self())
	}
}

func TestParse_DataDirIsRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]byte(top+"data_dir = \"state/a\"\n"+tail3), filepath.Join(dir, "epaxos.hcl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "state", "a"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
}

// metrics, like data_dir, is relative to the file; EPAXOS_METRICS is taken
// as given; unset, no metrics file is written.
func TestParse_MetricsFileIsRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "epaxos.hcl")
	c, err := Parse([]byte(top+"metrics = \"m/alpha.jsonl\"\n"+tail3), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "m", "alpha.jsonl"); c.Metrics != want {
		t.Errorf("Metrics = %q, want %q", c.Metrics, want)
	}
	c, err = Parse([]byte(top+tail3), file, func(k string) string {
		if k == EnvMetrics {
			return "rel.jsonl"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics != "rel.jsonl" {
		t.Errorf("with EPAXOS_METRICS, Metrics = %q, want rel.jsonl", c.Metrics)
	}
	if c := mustParse(t, top+tail3, nil); c.Metrics != "" {
		t.Errorf("Metrics = %q by default, want none", c.Metrics)
	}
}

func TestParse_DefaultNameIsTheHostname(t *testing.T) {
	stubHostname(t, "bravo")
	c := mustParse(t, tail3, nil)
	if c.Name != "bravo" || c.Self().Name != "bravo" {
		t.Errorf("Name = %q, Self() = %+v; want bravo", c.Name, c.Self())
	}
	if filepath.Base(c.DataDir) != "bravo" {
		t.Errorf("DataDir = %q, want one ending in bravo", c.DataDir)
	}
}

func TestParse_HostnameError(t *testing.T) {
	old := hostname
	hostname = func() (string, error) { return "", fmt.Errorf("no uts namespace") }
	t.Cleanup(func() { hostname = old })
	_, err := Parse([]byte(tail3), "a.hcl", nil)
	checkLines(t, err, []string{"a.hcl:1:1: Missing name: name is not set and the host name is unknown (no uts namespace)"})
}

func TestParse_ExternalPluginCommand(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "plugins/kv-ext", "#!/bin/sh\n", 0o755)
	src := top + `plugin "kv-ext" {
  command = "plugins/kv-ext"
  args    = ["--shards", "4"]
}
` + clusterHCL(3)
	c, err := Parse([]byte(src), filepath.Join(dir, "epaxos.hcl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Plugin{Name: "kv-ext", Command: bin, Args: []string{"--shards", "4"}}
	if c.Plugin.Name != want.Name || c.Plugin.Command != want.Command || !slices.Equal(c.Plugin.Args, want.Args) {
		t.Errorf("Plugin = %+v, want %+v", c.Plugin, want)
	}
	if c.Plugin.Builtin() {
		t.Errorf("plugin with a command is built-in")
	}
}

func TestParse_ExternalPluginInPath(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "epaxos-kv", "#!/bin/sh\n", 0o755)
	t.Setenv("PATH", dir)
	src := top + "plugin \"kv\" {\n  command = \"epaxos-kv\"\n}\n" + clusterHCL(3)
	c := mustParse(t, src, nil)
	if c.Plugin.Command != bin {
		t.Errorf("Command = %q, want %q", c.Plugin.Command, bin)
	}
}

func TestParse_CounterPlugin(t *testing.T) {
	c := mustParse(t, top+"plugin \"counter\" {}\n"+clusterHCL(3), nil)
	if c.Plugin.Name != "counter" || !c.Plugin.Builtin() {
		t.Errorf("Plugin = %+v, want built-in counter", c.Plugin)
	}
}

func TestLoad(t *testing.T) {
	for _, k := range []string{EnvName, EnvDataDir, EnvTimeout, EnvThrifty, EnvAggregate, EnvSeed} {
		t.Setenv(k, "")
	}
	t.Setenv(EnvLogLevel, "warn")
	path := writeFile(t, t.TempDir(), "epaxos.hcl", top+tail3, 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Name != "alpha" || len(c.Replicas) != 3 {
		t.Errorf("Load(%q) = %+v", path, c)
	}
	if c.LogLevel != "warn" {
		t.Errorf("LogLevel = %q; Load did not apply EPAXOS_LOG_LEVEL=warn", c.LogLevel)
	}
}

func TestLoad_MissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.hcl")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(%q) error = %v, want one wrapping fs.ErrNotExist", path, err)
	}
}
