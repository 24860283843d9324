package config

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// valid returns a valid Config as code would build it.
func valid() *Config {
	return &Config{
		Name:      "bravo",
		DataDir:   "data/bravo",
		Timeout:   time.Second,
		Aggregate: true,
		LogLevel:  "info",
		Plugin:    Plugin{Name: "kv"},
		Replicas: []Replica{
			{Name: "alpha", PID: 0, Address: "10.0.0.1:7000"},
			{Name: "bravo", PID: 1, Address: "10.0.0.2:7000"},
			{Name: "charlie", PID: 2, Address: "10.0.0.3:7000"},
		},
	}
}

func TestValidate_AcceptsValidConfig(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestValidate_AcceptsWhatParseReturns(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ext", "#!/bin/sh\n", 0o755)
	src := top + "plugin \"ext\" {\n  command = \"./ext\"\n}\n" + clusterHCL(5)
	c, err := Parse([]byte(src), filepath.Join(dir, "epaxos.hcl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() on a parsed Config = %v", err)
	}
}

// TestValidate_Rejects checks Validate's position-less errors, one case per
// problem.
func TestValidate_Rejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"UnknownName", func(c *Config) { c.Name = "zulu" },
			[]string{`Unknown replica name: "zulu" is not a replica; the replicas are alpha, bravo and charlie.`}},
		{"EmptyName", func(c *Config) { c.Name = "" },
			[]string{"Invalid name: The name must not be empty"}},
		{"EmptyDataDir", func(c *Config) { c.DataDir = "" },
			[]string{"Invalid data_dir: The data directory must not be empty."}},
		{"ZeroTimeout", func(c *Config) { c.Timeout = 0 },
			[]string{"Invalid timeout: The timeout must be positive; got 0s."}},
		{"UnnormalizedLogLevel", func(c *Config) { c.LogLevel = "INFO" },
			[]string{`Invalid log_level: "INFO" is not a log level`}},
		{"EmptyPluginName", func(c *Config) { c.Plugin = Plugin{} },
			[]string{"Invalid plugin name: The plugin name must not be empty."}},
		{"UnknownBuiltinPlugin", func(c *Config) { c.Plugin.Name = "redis" },
			[]string{`Unknown built-in plugin: There is no built-in plugin "redis"`}},
		{"ArgsWithoutCommand", func(c *Config) { c.Plugin.Args = []string{"-v"} },
			[]string{"Arguments without a command"}},
		{"MissingCommand", func(c *Config) { c.Plugin.Command = "/nonexistent/epaxos-plugin" },
			[]string{`Invalid plugin command: "/nonexistent/epaxos-plugin" does not exist.`}},
		{"DuplicatePID", func(c *Config) { c.Replicas[2].PID = 1 },
			[]string{`Duplicate replica pid: Replica "charlie" has pid 1, which replica "bravo" already has.`}},
		{"PIDOutOfRange", func(c *Config) { c.Replicas[2].PID = 7 },
			[]string{"Invalid replica pid: pid 7 is out of range; a cluster of 3 replicas has pids 0 to 2."}},
		{"Unsorted", func(c *Config) { c.Replicas[0], c.Replicas[1] = c.Replicas[1], c.Replicas[0] },
			[]string{"Replicas not sorted by PID: Replicas[0] has PID 1; Replicas[i].PID must be i."}},
		{"DuplicateName", func(c *Config) { c.Replicas[2].Name = "alpha" },
			[]string{`Duplicate replica name: A replica named "alpha" is already defined.`}},
		{"DuplicateAddress", func(c *Config) { c.Replicas[2].Address = "10.0.0.1:7000" },
			[]string{`Duplicate replica address: Replica "charlie" has address "10.0.0.1:7000", which replica "alpha" already has.`}},
		{"BadAddress", func(c *Config) { c.Replicas[2].Address = "10.0.0.3" },
			[]string{`Invalid replica address: "10.0.0.3" is not host:port: missing port in address.`}},
		{"TooFewReplicas", func(c *Config) { c.Replicas = c.Replicas[:1]; c.Name = "alpha" },
			[]string{"Too few replicas: A cluster needs at least 3 replicas so that it survives a failure; found 1."}},
		{"EvenReplicas", func(c *Config) {
			c.Replicas = append(c.Replicas, Replica{Name: "delta", PID: 3, Address: "10.0.0.4:7000"})
		}, []string{"Even number of replicas"}},
		{"Several", func(c *Config) { c.Timeout = -1; c.Name = "zulu"; c.Replicas[1].Address = "x" },
			[]string{"Invalid timeout", `Invalid replica address: "x"`, "Unknown replica name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(c)
			err := c.Validate()
			checkLines(t, err, tt.want)
			for _, d := range diagsOf(t, err) {
				if d.Subject != nil {
					t.Errorf("diagnostic %q has a Subject, %v, for a Config built in code", d.Summary, d.Subject)
				}
			}
		})
	}
}

func TestValidate_DoesNotChangeConfig(t *testing.T) {
	c := valid()
	c.Replicas[0], c.Replicas[1] = c.Replicas[1], c.Replicas[0]
	c.LogLevel = "INFO"
	before := slices.Clone(c.Replicas)
	_ = c.Validate()
	if !slices.Equal(c.Replicas, before) || c.LogLevel != "INFO" {
		t.Errorf("Validate changed the Config: %+v", c)
	}
}

func TestSelf(t *testing.T) {
	c := valid()
	if got, want := c.Self(), c.Replicas[1]; got != want {
		t.Errorf("Self() = %+v, want %+v", got, want)
	}
	c.Name = "zulu"
	if got := c.Self(); got != (Replica{}) {
		t.Errorf("Self() with an unknown name = %+v, want the zero Replica", got)
	}
}
