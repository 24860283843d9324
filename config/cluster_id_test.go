package config

import (
	"regexp"
	"slices"
	"testing"
)

func TestClusterID_IsShortHex(t *testing.T) {
	if id := valid().ClusterID(); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("ClusterID() = %q, want 16 hex digits", id)
	}
}

// TestClusterID_IsStable pins the id of a known cluster: replicas of
// different builds must agree on it, so a change to the encoding must be
// deliberate (and bump clusterIDVersion).
func TestClusterID_IsStable(t *testing.T) {
	const want = "9c2e6663914c41bb" // sha256 of the v1 encoding, computed independently
	if got := valid().ClusterID(); got != want {
		t.Errorf("ClusterID() = %q, want %q", got, want)
	}
}

func TestClusterID_IgnoresOrderAndOtherSettings(t *testing.T) {
	a := valid()
	b := valid()
	slices.Reverse(b.Replicas)
	b.Name, b.DataDir, b.Timeout, b.Thrifty, b.Seed = "alpha", "elsewhere", 1, true, 99
	b.Plugin = Plugin{Name: "counter"}
	if a.ClusterID() != b.ClusterID() {
		t.Errorf("ClusterID() differs between %+v and %+v", a, b)
	}
}

func TestClusterID_ChangesWithTheReplicaSet(t *testing.T) {
	base := valid().ClusterID()
	tests := []struct {
		name   string
		change func(c *Config)
	}{
		{"Address", func(c *Config) { c.Replicas[2].Address = "10.0.0.3:7001" }},
		{"Name", func(c *Config) { c.Replicas[2].Name = "charles" }},
		{"PIDs", func(c *Config) { c.Replicas[1].PID, c.Replicas[2].PID = 2, 1 }},
		{"Added", func(c *Config) {
			c.Replicas = append(c.Replicas,
				Replica{Name: "delta", PID: 3, Address: "10.0.0.4:7000"},
				Replica{Name: "echo", PID: 4, Address: "10.0.0.5:7000"})
		}},
		{"Removed", func(c *Config) { c.Replicas = c.Replicas[:2] }},
		// Fields run together differently; length prefixes keep them apart.
		{"Boundary", func(c *Config) {
			c.Replicas[0].Name, c.Replicas[0].Address = "alpha1", "0.0.0.1:7000"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(c)
			if c.ClusterID() == base {
				t.Errorf("ClusterID() = %s, unchanged", base)
			}
		})
	}
}
