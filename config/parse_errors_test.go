package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stubHostname makes the default name h for the rest of the test.
func stubHostname(t *testing.T, h string) {
	old := hostname
	hostname = func() (string, error) { return h, nil }
	t.Cleanup(func() { hostname = old })
}

// top is the first line of most files below: the name of a replica in tail3.
const top = `name = "alpha"
`

// TestParse_Rejects has one case per kind of problem. Each file is parsed
// as {dir}/epaxos.hcl; each want is the start of one line of the error, in
// order, with {file} and {dir} standing for the file's path and directory.
// A case must produce exactly the lines it lists, so a problem reported
// twice, or a second problem caused by the first, fails it.
func TestParse_Rejects(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		env   map[string]string
		setup func(t *testing.T, dir string) // makes files the case needs
		want  []string
	}{
		// Syntax and schema.
		{name: "SyntaxError", src: top + "seed = = 1\n" + tail3,
			want: []string{"{file}:2:8: Invalid expression"}},
		{name: "UnclosedBlock", src: top + "plugin \"kv\" {\n",
			want: []string{"{file}:2:13: Unclosed configuration block"}},
		{name: "UnknownAttribute", src: top + "port = 7001\n" + tail3,
			want: []string{`{file}:2:1: Unsupported argument: An argument named "port" is not expected here.`}},
		{name: "UnknownBlock", src: top + "peer \"x\" {}\n" + tail3,
			want: []string{`{file}:2:1: Unsupported block type: Blocks of type "peer" are not expected here.`}},
		{name: "RepeatedAttribute", src: top + "name = \"bravo\"\n" + tail3,
			want: []string{"{file}:2:1: Attribute redefined"}},
		{name: "UnknownReplicaAttribute", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  port    = 7001
  address = "127.0.0.1:7001"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:5:3: Unsupported argument: An argument named "port" is not expected here.`}},
		{name: "UnknownPluginAttribute", src: top + `plugin "kv" {
  cmd = "kv-plugin"
}
` + clusterHCL(3),
			want: []string{`{file}:3:3: Unsupported argument: An argument named "cmd" is not expected here.`}},
		{name: "PluginWithoutLabel", src: top + "plugin {}\n" + clusterHCL(3),
			want: []string{"{file}:2:8: Missing name for plugin"}},

		// Types.
		{name: "WrongTypeBool", src: top + "thrifty = \"yes\"\n" + tail3,
			want: []string{`{file}:2:11: Incorrect attribute value type: Inappropriate value for attribute "thrifty"`}},
		{name: "WrongTypeString", src: top + "log_level = [\"info\"]\n" + tail3,
			want: []string{`{file}:2:13: Incorrect attribute value type: Inappropriate value for attribute "log_level"`}},
		{name: "FractionalSeed", src: top + "seed = 1.5\n" + tail3,
			want: []string{`{file}:2:8: Incorrect attribute value type: Inappropriate value for attribute "seed": a whole number`}},
		{name: "VariableReference", src: top + "seed = base\n" + tail3,
			want: []string{"{file}:2:8: Variables not allowed"}},
		{name: "WrongTypeArgs", src: top + `plugin "kv" {
  args = 1
}
` + clusterHCL(3),
			want: []string{`{file}:3:10: Incorrect attribute value type: Inappropriate value for attribute "args"`}},

		// Not UTF-8: reported at the first bad byte, before hclsyntax
		// (which miscounts lines after one) sees the file.
		{name: "InvalidUTF8", src: top + "log_level = \"in\xfffo\"\n" + tail3,
			want: []string{`{file}:2:16: Invalid UTF-8: Byte 0xff is not UTF-8; a configuration file must be UTF-8 text.`}},

		// Settings.
		{name: "BadDuration", src: top + "timeout = \"abc\"\n" + tail3,
			want: []string{`{file}:2:11: Invalid duration: "abc" is not a duration; write one such as "500ms" or "2s".`}},
		{name: "DurationWithoutUnit", src: top + "timeout = 500\n" + tail3,
			want: []string{`{file}:2:11: Invalid duration: "500" is not a duration`}},
		{name: "ZeroTimeout", src: top + "timeout = \"0s\"\n" + tail3,
			want: []string{"{file}:2:11: Invalid timeout: The timeout must be positive; got 0s."}},
		{name: "NegativeTimeout", src: top + "timeout = \"-2s\"\n" + tail3,
			want: []string{"{file}:2:11: Invalid timeout: The timeout must be positive; got -2s."}},
		{name: "UnknownLogLevel", src: top + "log_level = \"loud\"\n" + tail3,
			want: []string{`{file}:2:13: Invalid log_level: "loud" is not a log level; use one of trace, debug, info, warn or error.`}},
		{name: "NegativeClientRateLimit", src: top + "client_rate_limit = -1\n" + tail3,
			want: []string{"{file}:2:21: Invalid client_rate_limit: The limit is requests per second per client connection, 0 for none; got -1."}},
		{name: "FractionalClientRateLimit", src: top + "client_rate_limit = 1.5\n" + tail3,
			want: []string{`{file}:2:21: Incorrect attribute value type: Inappropriate value for attribute "client_rate_limit": a whole number`}},
		{name: "EmptyDataDir", src: top + "data_dir = \"\"\n" + tail3,
			want: []string{"{file}:2:12: Invalid data_dir: The data directory must not be empty."}},

		// This replica's name.
		{name: "NameNotAReplica", src: "name = \"zulu\"\n" + tail3,
			want: []string{`{file}:1:8: Unknown replica name: "zulu" is not a replica; the replicas are alpha, bravo and charlie.`}},
		{name: "EmptyName", src: "name = \"\"\n" + tail3,
			want: []string{"{file}:1:8: Invalid name: The name must not be empty"}},
		{name: "NameFromEnvNotAReplica", src: top + tail3, env: map[string]string{"EPAXOS_NAME": "zulu"},
			want: []string{`EPAXOS_NAME: Unknown replica name: "zulu" is not a replica; the replicas are alpha, bravo and charlie.`}},
		{name: "NameFromHostnameNotAReplica", src: tail3,
			want: []string{`{file}:1:1: Unknown replica name: name is not set, so it defaults to the host name "test-host", which is not a replica`}},

		// The plugin.
		{name: "MissingPlugin", src: top + clusterHCL(3),
			want: []string{"{file}:1:1: Missing plugin block"}},
		{name: "TwoPlugins", src: top + "plugin \"kv\" {}\nplugin \"counter\" {}\n" + clusterHCL(3),
			want: []string{"{file}:3:1: Duplicate plugin block: Only one plugin block is allowed; the first is at {file}:2:1."}},
		{name: "UnknownBuiltinPlugin", src: top + "plugin \"redis\" {}\n" + clusterHCL(3),
			want: []string{`{file}:2:8: Unknown built-in plugin: There is no built-in plugin "redis"; the built-in plugins are kv and counter.`}},
		{name: "ArgsWithoutCommand", src: top + `plugin "kv" {
  args = ["-v"]
}
` + clusterHCL(3),
			want: []string{"{file}:3:10: Arguments without a command"}},
		{name: "CommandOfWrongType", src: top + `plugin "ext" {
  command = ["ext"]
}
` + clusterHCL(3),
			want: []string{`{file}:3:13: Incorrect attribute value type: Inappropriate value for attribute "command"`}},
		{name: "EmptyCommand", src: top + `plugin "ext" {
  command = ""
}
` + clusterHCL(3),
			want: []string{"{file}:3:13: Invalid plugin command: The command must not be empty"}},
		{name: "CommandDoesNotExist", src: top + `plugin "ext" {
  command = "bin/ext"
}
` + clusterHCL(3),
			want: []string{`{file}:3:13: Invalid plugin command: "bin/ext" ({dir}/bin/ext) does not exist.`}},
		{name: "CommandNotExecutable", src: top + `plugin "ext" {
  command = "./bin/ext"
}
` + clusterHCL(3),
			setup: func(t *testing.T, dir string) { writeFile(t, dir, "bin/ext", "#!/bin/sh\n", 0o644) },
			want:  []string{`{file}:3:13: Invalid plugin command: "./bin/ext" ({dir}/bin/ext) is not executable.`}},
		{name: "CommandIsDirectory", src: top + `plugin "ext" {
  command = "./bin"
}
` + clusterHCL(3),
			setup: func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, "bin"), 0o755) },
			want:  []string{`{file}:3:13: Invalid plugin command: "./bin" ({dir}/bin) is not a regular file.`}},
		{name: "CommandNotInPath", src: top + `plugin "ext" {
  command = "epaxosd-ext"
}
` + clusterHCL(3),
			setup: func(t *testing.T, dir string) {
				// Next to the file does not count: a bare name is looked up in $PATH only.
				writeFile(t, dir, "epaxosd-ext", "#!/bin/sh\n", 0o755)
				t.Setenv("PATH", t.TempDir())
			},
			want: []string{`{file}:3:13: Invalid plugin command: "epaxosd-ext" is not in $PATH; for a program next to the configuration file, write ./epaxosd-ext.`}},

		// The cluster.
		{name: "DuplicatePID", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "bravo" {
  pid     = 0
  address = "127.0.0.1:7002"
}
replica "charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
`,
			want: []string{`{file}:8:13: Duplicate replica pid: Replica "bravo" has pid 0, which replica "alpha" ({file}:4:13) already has.`}},
		{name: "DuplicateName", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "alpha" {
  pid     = 1
  address = "127.0.0.1:7002"
}
replica "charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
`,
			want: []string{`{file}:7:9: Duplicate replica name: A replica named "alpha" is already defined ({file}:3:1).`}},
		{name: "DuplicateAddress", src: top + `plugin "kv" {}
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
  address = "127.0.0.1:7001"
}
`,
			want: []string{`{file}:13:13: Duplicate replica address: Replica "charlie" has address "127.0.0.1:7001", which replica "alpha" ({file}:5:13) already has.`}},
		{name: "DuplicateAddressSpelledDifferently", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "LocalHost:7001"
}
replica "bravo" {
  pid     = 1
  address = "localhost:07001"
}
replica "charlie" {
  pid     = 2
  address = "localhost:7003"
}
`,
			want: []string{`{file}:9:13: Duplicate replica address`}},
		{name: "AddressWithoutPort", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:5:13: Invalid replica address: "127.0.0.1" is not host:port: missing port in address.`}},
		{name: "AddressWithNamedPort", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:http"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:5:13: Invalid replica address: "127.0.0.1:http" is not host:port: port "http" is not a number from 1 to 65535.`}},
		{name: "AddressWithPortZero", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:0"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:5:13: Invalid replica address: "127.0.0.1:0" is not host:port: port "0" is not a number`}},
		{name: "AddressWithPortTooLarge", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:65536"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:5:13: Invalid replica address: "127.0.0.1:65536" is not host:port: port "65536" is not a number`}},
		{name: "AddressWithoutHost", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = ":7001"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:5:13: Invalid replica address: ":7001" is not host:port: the host is missing`}},
		{name: "PIDOutOfRange", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "bravo" {
  pid     = 1
  address = "127.0.0.1:7002"
}
replica "charlie" {
  pid     = 3
  address = "127.0.0.1:7003"
}
`,
			want: []string{"{file}:12:13: Invalid replica pid: pid 3 is out of range; a cluster of 3 replicas has pids 0 to 2."}},
		{name: "NegativePID", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = -1
  address = "127.0.0.1:7001"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{"{file}:4:13: Invalid replica pid: pid -1 is out of range; a cluster of 3 replicas has pids 0 to 2."}},
		{name: "PIDNotANumber", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = "zero"
  address = "127.0.0.1:7001"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:4:13: Incorrect attribute value type: Inappropriate value for attribute "pid"`}},
		{name: "MissingPID", src: top + `plugin "kv" {}
replica "alpha" {
  address = "127.0.0.1:7001"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:3:1: Missing pid: Replica "alpha" needs a pid`}},
		{name: "MissingAddress", src: top + `plugin "kv" {}
replica "alpha" {
  pid = 0
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{`{file}:3:1: Missing address: Replica "alpha" needs an address`}},
		{name: "InvalidReplicaName", src: top + `plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "bravo" {
  pid     = 1
  address = "127.0.0.1:7002"
}
replica "../charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
`,
			want: []string{`{file}:11:9: Invalid replica name: "../charlie" is not a valid replica name`}},
		{name: "ReplicaWithoutLabel", src: top + `plugin "kv" {}
replica {
  pid     = 0
  address = "127.0.0.1:7001"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{"{file}:3:9: Missing name for replica"}},
		{name: "ReplicaWithTwoLabels", src: top + `plugin "kv" {}
replica "alpha" "extra" {
  pid     = 0
  address = "127.0.0.1:7001"
}
` + clusterHCL(3)[len(clusterHCL(1)):],
			want: []string{"{file}:3:17: Extraneous label for replica"}},
		{name: "NoReplicas", src: top + "plugin \"kv\" {}\n",
			want: []string{
				"{file}:1:1: Too few replicas: A cluster needs at least 3 replicas so that it survives a failure; found 0.",
				`{file}:1:8: Unknown replica name: "alpha" is not a replica; there are none.`,
			}},
		{name: "TooFewReplicas", src: top + "plugin \"kv\" {}\n" + clusterHCL(1),
			want: []string{"{file}:3:1: Too few replicas: A cluster needs at least 3 replicas so that it survives a failure; found 1."}},
		{name: "EvenReplicas", src: top + "plugin \"kv\" {}\n" + clusterHCL(4),
			want: []string{"{file}:3:1: Even number of replicas: A cluster needs an odd number of replicas, since 4 replicas survive no more failures than 3; found 4."}},
		{name: "TooManyReplicas", src: top + "plugin \"kv\" {}\n" + clusterHCL(17),
			want: []string{"{file}:3:1: Too many replicas: A cluster has at most 15 replicas; found 17."}},

		// The environment.
		{name: "EnvBadDuration", src: top + tail3, env: map[string]string{"EPAXOS_TIMEOUT": "abc"},
			want: []string{`EPAXOS_TIMEOUT: Invalid duration: "abc" is not a duration; write one such as "500ms" or "2s".`}},
		{name: "EnvBadClientRateLimit", src: top + tail3, env: map[string]string{"EPAXOS_CLIENT_RATE_LIMIT": "fast"},
			want: []string{`EPAXOS_CLIENT_RATE_LIMIT: Invalid client_rate_limit: "fast" is not a whole number of requests per second`}},
		{name: "EnvNegativeClientRateLimit", src: top + tail3, env: map[string]string{"EPAXOS_CLIENT_RATE_LIMIT": "-5"},
			want: []string{"EPAXOS_CLIENT_RATE_LIMIT: Invalid client_rate_limit: The limit is requests per second per client connection, 0 for none; got -5."}},
		{name: "EnvZeroTimeout", src: top + tail3, env: map[string]string{"EPAXOS_TIMEOUT": "0s"},
			want: []string{"EPAXOS_TIMEOUT: Invalid timeout: The timeout must be positive; got 0s."}},
		{name: "EnvBadThrifty", src: top + tail3, env: map[string]string{"EPAXOS_THRIFTY": "maybe"},
			want: []string{`EPAXOS_THRIFTY: Invalid boolean: "maybe" is not a boolean; use true or false.`}},
		{name: "EnvBadAggregate", src: top + tail3, env: map[string]string{"EPAXOS_AGGREGATE": "2"},
			want: []string{`EPAXOS_AGGREGATE: Invalid boolean: "2" is not a boolean`}},
		{name: "EnvBadSeed", src: top + tail3, env: map[string]string{"EPAXOS_SEED": "0x"},
			want: []string{`EPAXOS_SEED: Invalid seed: "0x" is not a whole number`}},
		{name: "EnvBadLogLevel", src: top + tail3, env: map[string]string{"EPAXOS_LOG_LEVEL": "loud"},
			want: []string{`EPAXOS_LOG_LEVEL: Invalid log_level: "loud" is not a log level`}},

		// All at once: problems in file order, then those of the environment.
		{name: "CollectsAllProblems", src: `name      = "alpha"
timeout   = "soon"
log_level = "loud"
plugin "kv" {}
replica "alpha" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "bravo" {
  pid     = 0
  address = "127.0.0.1"
}
replica "charlie" {
  pid     = 2
  address = "127.0.0.1:7003"
}
`, env: map[string]string{"EPAXOS_SEED": "x", "EPAXOS_THRIFTY": "y"},
			want: []string{
				`{file}:2:13: Invalid duration: "soon"`,
				`{file}:3:13: Invalid log_level: "loud"`,
				`{file}:10:13: Duplicate replica pid`,
				`{file}:11:13: Invalid replica address: "127.0.0.1"`,
				`EPAXOS_THRIFTY: Invalid boolean`,
				`EPAXOS_SEED: Invalid seed`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stubHostname(t, "test-host")
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			file := filepath.Join(dir, "epaxos.hcl")
			c, err := Parse([]byte(tt.src), file, envOf(tt.env))
			if c != nil {
				t.Errorf("Parse returned a Config along with its error")
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.NewReplacer("{file}", file, "{dir}", dir).Replace(w)
			}
			checkLines(t, err, want)
		})
	}
}

// TestParse_ErrorsPointIntoTheFile checks that every diagnostic about the
// file has a Subject in it, and environment ones have none.
func TestParse_ErrorsPointIntoTheFile(t *testing.T) {
	src := "name = \"alpha\"\ntimeout = \"x\"\n" + tail3
	_, err := Parse([]byte(src), "a.hcl", envOf(map[string]string{"EPAXOS_SEED": "x"}))
	diags := diagsOf(t, err)
	if len(diags) != 2 {
		t.Fatalf("got %d diagnostics, want 2:\n%v", len(diags), err)
	}
	if s := diags[0].Subject; s == nil || s.Filename != "a.hcl" || s.Start.Line != 2 || s.Start.Column != 11 {
		t.Errorf("timeout diagnostic Subject = %v, want a.hcl:2,11", s)
	}
	if s := diags[1].Subject; s != nil {
		t.Errorf("EPAXOS_SEED diagnostic has Subject %v, want none", s)
	}
}
