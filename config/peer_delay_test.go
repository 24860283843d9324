package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse_EmulatedPeerDelay(t *testing.T) {
	c := mustParse(t, top+`emulated_peer_delay = {
  bravo     = "35ms"
  "charlie" = "1.5s"
  alpha     = "0s" # this replica: ignored by the daemon, allowed in a shared file
}
`+tail3, nil)
	want := map[string]time.Duration{"alpha": 0, "bravo": 35 * time.Millisecond, "charlie": 1500 * time.Millisecond}
	if !reflect.DeepEqual(c.EmulatedPeerDelay, want) {
		t.Errorf("EmulatedPeerDelay = %v, want %v", c.EmulatedPeerDelay, want)
	}

	if c := mustParse(t, top+tail3, nil); c.EmulatedPeerDelay != nil {
		t.Errorf("default EmulatedPeerDelay = %v, want none", c.EmulatedPeerDelay)
	}
	for _, empty := range []string{"{}", "null"} {
		if c := mustParse(t, top+"emulated_peer_delay = "+empty+"\n"+tail3, nil); c.EmulatedPeerDelay != nil {
			t.Errorf("emulated_peer_delay = %s: EmulatedPeerDelay = %v, want none", empty, c.EmulatedPeerDelay)
		}
	}
}

func TestParse_EmulatedPeerDelayFromEnv(t *testing.T) {
	// The variable replaces the file's map as a whole.
	src := top + `emulated_peer_delay = { bravo = "35ms" }` + "\n" + tail3
	c := mustParse(t, src, map[string]string{EnvEmulatedPeerDelay: " charlie=10ms, alpha = 2ms ,"})
	want := map[string]time.Duration{"alpha": 2 * time.Millisecond, "charlie": 10 * time.Millisecond}
	if !reflect.DeepEqual(c.EmulatedPeerDelay, want) {
		t.Errorf("EmulatedPeerDelay = %v, want %v", c.EmulatedPeerDelay, want)
	}
}

func TestParse_EmulatedPeerDelayRejects(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{name: "NotAMap", src: top + `emulated_peer_delay = "35ms"` + "\n" + tail3,
			want: []string{`{file}:2:23: Incorrect attribute value type: Inappropriate value for attribute "emulated_peer_delay": a map from replica names to durations`}},
		{name: "UnknownReplica", src: top + `emulated_peer_delay = { bravo = "35ms", zulu = "1ms" }` + "\n" + tail3,
			want: []string{`{file}:2:41: Unknown replica in emulated_peer_delay: "zulu" is not a replica; the replicas are alpha, bravo and charlie.`}},
		{name: "Negative", src: top + `emulated_peer_delay = { bravo = "-35ms" }` + "\n" + tail3,
			want: []string{`{file}:2:33: Invalid emulated_peer_delay: The delay to "bravo" must not be negative; got -35ms.`}},
		{name: "NotADuration", src: top + `emulated_peer_delay = { bravo = 35 }` + "\n" + tail3,
			want: []string{`{file}:2:33: Invalid duration: "35" is not a duration`}},
		{name: "WrongValueType", src: top + `emulated_peer_delay = { bravo = ["35ms"] }` + "\n" + tail3,
			want: []string{`{file}:2:33: Incorrect attribute value type: Inappropriate value for attribute "emulated_peer_delay": the delay to "bravo" must be a duration`}},
		{name: "Duplicate", src: top + "emulated_peer_delay = {\n  bravo = \"1ms\"\n  bravo = \"2ms\"\n}\n" + tail3,
			want: []string{`{file}:4:3: Duplicate replica in emulated_peer_delay: Replica "bravo" is given twice; the first is at {file}:3:3.`}},
		{name: "Variable", src: top + `emulated_peer_delay = { bravo = soon }` + "\n" + tail3,
			want: []string{`{file}:2:33: Variables not allowed`}},
		{name: "EnvNotAList", src: top + tail3, env: map[string]string{EnvEmulatedPeerDelay: "bravo:35ms"},
			want: []string{`EPAXOS_EMULATED_PEER_DELAY: Invalid emulated_peer_delay: "bravo:35ms" is not NAME=DURATION`}},
		{name: "EnvBadDuration", src: top + tail3, env: map[string]string{EnvEmulatedPeerDelay: "bravo=35"},
			want: []string{`EPAXOS_EMULATED_PEER_DELAY: Invalid emulated_peer_delay: the delay to "bravo": "35" is not a duration`}},
		{name: "EnvUnknownReplica", src: top + tail3, env: map[string]string{EnvEmulatedPeerDelay: "bravo=1ms,zulu=2ms"},
			want: []string{`EPAXOS_EMULATED_PEER_DELAY: Unknown replica in emulated_peer_delay: "zulu" is not a replica`}},
		{name: "EnvNegative", src: top + tail3, env: map[string]string{EnvEmulatedPeerDelay: "bravo=-1ms"},
			want: []string{`EPAXOS_EMULATED_PEER_DELAY: Invalid emulated_peer_delay: The delay to "bravo" must not be negative`}},
		{name: "EnvDuplicate", src: top + tail3, env: map[string]string{EnvEmulatedPeerDelay: "bravo=1ms,bravo=2ms"},
			want: []string{`EPAXOS_EMULATED_PEER_DELAY: Invalid emulated_peer_delay: replica "bravo" is given twice.`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "epaxos.hcl")
			_, err := Parse([]byte(tt.src), file, envOf(tt.env))
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "{file}", file)
			}
			checkLines(t, err, want)
		})
	}
}

func TestValidate_EmulatedPeerDelay(t *testing.T) {
	c := mustParse(t, top+tail3, nil)
	c.EmulatedPeerDelay = map[string]time.Duration{"bravo": -time.Millisecond, "zulu": time.Millisecond}
	err := c.Validate()
	checkLines(t, err, []string{
		`Invalid emulated_peer_delay: The delay to "bravo" must not be negative; got -1ms.`,
		`Unknown replica in emulated_peer_delay: "zulu" is not a replica; the replicas are alpha, bravo and charlie.`,
	})
}
