package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Validate checks c as Load would: every setting is in range, the replica
// set is a well-formed cluster that includes c.Name, Replicas is sorted by
// PID, the plugin exists (a relative Command is taken relative to the
// working directory), and the TLS files, if any, exist and fit together
// (relative paths, again, relative to the working directory). It returns nil
// or an *Error listing every problem.
func (c *Config) Validate() error {
	return errorOf(c.check(&sources{}))
}

// check returns every problem with c, reported at the origins in src.
func (c *Config) check(src *sources) hcl.Diagnostics {
	var diags hcl.Diagnostics
	diags = append(diags, c.checkSettings(src)...)
	diags = append(diags, c.checkReplicas(src)...)
	diags = append(diags, c.checkName(src)...)
	diags = append(diags, c.checkPlugin(src)...)
	diags = append(diags, c.checkTLS(src)...)
	diags = append(diags, c.checkPeerDelay(src)...)
	return diags
}

// checkSettings checks the settings that stand alone.
func (c *Config) checkSettings(src *sources) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if c.DataDir == "" && !src.dataDir.reported {
		diags = append(diags, src.dataDir.errorf("Invalid data_dir", "The data directory must not be empty."))
	}
	if c.Timeout <= 0 && !src.timeout.reported {
		diags = append(diags, src.timeout.errorf("Invalid timeout",
			"The timeout must be positive; got %s.", c.Timeout))
	}
	if c.ClientRateLimit < 0 && !src.clientRateLimit.reported {
		diags = append(diags, src.clientRateLimit.errorf("Invalid client_rate_limit",
			"The limit is requests per second per client connection, 0 for none; got %d.", c.ClientRateLimit))
	}
	if !slices.Contains(LogLevels, c.LogLevel) && !src.logLevel.reported {
		diags = append(diags, src.logLevel.errorf("Invalid log_level",
			"%q is not a log level; use one of %s.", c.LogLevel, list(LogLevels, "or")))
	}
	return diags
}

// checkName checks that c.Name is one of the replicas.
func (c *Config) checkName(src *sources) hcl.Diagnostics {
	if src.name.reported || src.replicasIncomplete || c.Self().Name != "" {
		return nil
	}
	known := replicaNames(c.Replicas)
	switch {
	case src.fromHost:
		return hcl.Diagnostics{errorf(src.file, "Unknown replica name",
			"name is not set, so it defaults to the host name %q, which is not a replica (%s); set name in the file or EPAXOS_NAME.",
			c.Name, known)}
	case c.Name == "":
		return hcl.Diagnostics{src.name.errorf("Invalid name", "The name must not be empty; %s.", known)}
	default:
		return hcl.Diagnostics{src.name.errorf("Unknown replica name",
			"%q is not a replica; %s.", c.Name, known)}
	}
}

// checkPlugin checks that c.Plugin names a built-in plugin or an
// executable.
func (c *Config) checkPlugin(src *sources) hcl.Diagnostics {
	if src.noPlugin {
		return nil
	}
	p := c.Plugin
	var diags hcl.Diagnostics
	if p.Name == "" {
		diags = append(diags, src.pluginName.errorf("Invalid plugin name", "The plugin name must not be empty."))
	}
	if src.pluginCommand.reported {
		return diags // an unusable command was given, so this is not a built-in plugin
	}
	if p.Command != "" {
		if _, err := resolveCommand(p.Command, src.baseDir); err != nil {
			diags = append(diags, commandError(src.pluginCommand, err))
		}
		return diags
	}
	if p.Name != "" && !slices.Contains(BuiltinPlugins, p.Name) {
		diags = append(diags, src.pluginName.errorf("Unknown built-in plugin",
			"There is no built-in plugin %q; the built-in plugins are %s. For an external plugin, set command.",
			p.Name, list(BuiltinPlugins, "and")))
	}
	if len(p.Args) > 0 && !src.pluginArgs.reported {
		diags = append(diags, src.pluginArgs.errorf("Arguments without a command",
			"args are passed to an external plugin's command; a built-in plugin takes none."))
	}
	return diags
}

// commandError reports that a plugin command at o does not name an
// executable.
func commandError(o origin, err error) *hcl.Diagnostic {
	return o.errorf("Invalid plugin command", "%s.", err)
}

// list joins words as in "a, b and c".
func list(words []string, conj string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// validName reports whether s can name a replica: it becomes part of a path
// (the default data directory) and of log lines, so it is limited to
// letters, digits, '.', '_' and '-', and starts with a letter or digit.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		alnum := r < 128 && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		if !alnum && (i == 0 || !strings.ContainsRune("._-", r)) {
			return false
		}
	}
	return true
}

// plural returns "1 replica" or "n replicas".
func plural(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}
