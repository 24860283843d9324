package config

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestParse_EnvOverridesFile(t *testing.T) {
	src := `name      = "alpha"
data_dir  = "from-file"
timeout   = "1s"
thrifty   = false
aggregate = true
log_level = "info"
seed      = 1
client_rate_limit = 100
` + tail3
	env := map[string]string{
		EnvName:      "charlie",
		EnvDataDir:   "from-env",
		EnvTimeout:   "250ms",
		EnvThrifty:   "true",
		EnvAggregate: "false",
		EnvLogLevel:  " Trace ",
		EnvSeed:      "-7",

		EnvClientRateLimit: "0",
	}
	c := mustParse(t, src, env)
	want := Config{
		Name:      "charlie",
		DataDir:   "from-env", // as given: relative to the working directory, not the file
		Timeout:   250 * time.Millisecond,
		Thrifty:   true,
		Aggregate: false,
		LogLevel:  "trace",
		Seed:      -7,

		ClientRateLimit: 0,
	}
	got := *c
	got.File, got.Plugin, got.Replicas = "", Plugin{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if c.Self().PID != 2 {
		t.Errorf("Self() = %+v, want charlie", c.Self())
	}
}

func TestParse_EnvOverridesDefaults(t *testing.T) {
	stubHostname(t, "zulu")
	dir := t.TempDir()
	c, err := Parse([]byte(tail3), filepath.Join(dir, "epaxos.hcl"), envOf(map[string]string{EnvName: "bravo"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "bravo" {
		t.Errorf("Name = %q, want bravo from EPAXOS_NAME rather than the host name", c.Name)
	}
	if want := filepath.Join(dir, "data", "bravo"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q (the default follows the overridden name)", c.DataDir, want)
	}
}

func TestParse_EmptyEnvIsUnset(t *testing.T) {
	env := map[string]string{EnvName: "", EnvTimeout: "", EnvLogLevel: "", EnvAggregate: ""}
	c := mustParse(t, top+"timeout = \"2s\"\n"+tail3, env)
	if c.Name != "alpha" || c.Timeout != 2*time.Second || c.LogLevel != DefaultLogLevel || !c.Aggregate {
		t.Errorf("empty variables changed settings: %+v", c)
	}
}

func TestParse_EnvFixesBadFileValue(t *testing.T) {
	// The file's own value is still checked: a bad one is an error even if
	// the environment overrides it, so that the file stays usable alone.
	_, err := Parse([]byte(top+"timeout = \"soon\"\n"+tail3), "a.hcl", envOf(map[string]string{EnvTimeout: "1s"}))
	checkLines(t, err, []string{`a.hcl:2:11: Invalid duration: "soon"`})
}
