package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Environment variables. EnvConfig names the configuration file (see Find);
// each of the others overrides the file's attribute of the same name, in
// upper case after the EPAXOS_ prefix (EPAXOS_TLS_ for the tls block's, which
// override a tls block and cannot stand in for one). An empty variable
// counts as unset.
const (
	EnvConfig    = "EPAXOS_CONFIG"
	EnvName      = "EPAXOS_NAME"
	EnvDataDir   = "EPAXOS_DATA_DIR"
	EnvTimeout   = "EPAXOS_TIMEOUT"
	EnvThrifty   = "EPAXOS_THRIFTY"
	EnvAggregate = "EPAXOS_AGGREGATE"
	EnvLogLevel  = "EPAXOS_LOG_LEVEL"
	EnvSeed      = "EPAXOS_SEED"

	EnvClientRateLimit = "EPAXOS_CLIENT_RATE_LIMIT"
	EnvMetrics         = "EPAXOS_METRICS"

	// EnvEmulatedPeerDelay replaces emulated_peer_delay with a list such
	// as "bravo=35ms,charlie=70ms".
	EnvEmulatedPeerDelay = "EPAXOS_EMULATED_PEER_DELAY"

	EnvTLSCAFile   = "EPAXOS_TLS_CA_FILE"
	EnvTLSCertFile = "EPAXOS_TLS_CERT_FILE"
	EnvTLSKeyFile  = "EPAXOS_TLS_KEY_FILE"
)

// envOverrides lists the overridable settings. Each set function parses
// the variable's value into c, recording the origin in s, or returns an
// error that names neither the variable nor the summary (the caller adds
// them).
var envOverrides = []struct {
	name    string
	summary string // of the error for a value that set rejects
	set     func(c *Config, s *sources, o origin, v string) error
}{
	{EnvName, "", func(c *Config, s *sources, o origin, v string) error {
		c.Name, s.name = v, o
		return nil
	}},
	{EnvDataDir, "", func(c *Config, s *sources, o origin, v string) error {
		c.DataDir, s.dataDir = v, o
		return nil
	}},
	{EnvMetrics, "", func(c *Config, s *sources, o origin, v string) error {
		c.Metrics, s.metrics = v, o
		return nil
	}},
	{EnvTimeout, "Invalid duration", func(c *Config, s *sources, o origin, v string) error {
		t, err := parseDuration(v)
		if err != nil {
			s.timeout = origin{env: o.env, reported: true}
			return err
		}
		c.Timeout, s.timeout = t, o
		return nil
	}},
	{EnvThrifty, "Invalid boolean", func(c *Config, s *sources, o origin, v string) (err error) {
		c.Thrifty, err = parseBool(v)
		return err
	}},
	{EnvAggregate, "Invalid boolean", func(c *Config, s *sources, o origin, v string) (err error) {
		c.Aggregate, err = parseBool(v)
		return err
	}},
	{EnvLogLevel, "", func(c *Config, s *sources, o origin, v string) error {
		c.LogLevel, s.logLevel = normalizeLogLevel(v), o
		return nil
	}},
	{EnvSeed, "Invalid seed", func(c *Config, s *sources, o origin, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number that fits in 64 bits", v)
		}
		c.Seed = n
		return nil
	}},
	{EnvClientRateLimit, "Invalid client_rate_limit", func(c *Config, s *sources, o origin, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			s.clientRateLimit = origin{env: o.env, reported: true}
			return fmt.Errorf("%q is not a whole number of requests per second", v)
		}
		c.ClientRateLimit, s.clientRateLimit = n, o
		return nil
	}},
	{EnvEmulatedPeerDelay, "Invalid emulated_peer_delay", setPeerDelayEnv},
	// Each replica has its own certificate, so a file shared by the
	// replicas names it through these.
	{EnvTLSCAFile, "No tls block", setTLSFile(tlsFiles[0])},
	{EnvTLSCertFile, "No tls block", setTLSFile(tlsFiles[1])},
	{EnvTLSKeyFile, "No tls block", setTLSFile(tlsFiles[2])},
}

// applyEnv overrides settings of c with the environment variables that
// getenv (which may be nil) reports as set, and reports whether the name
// was overridden. An unusable value is reported naming its variable, and
// leaves the setting as it was.
func applyEnv(c *Config, s *sources, getenv func(string) string) (nameSet bool, diags hcl.Diagnostics) {
	if getenv == nil {
		return false, nil
	}
	for _, e := range envOverrides {
		v := getenv(e.name)
		if v == "" {
			continue
		}
		o := origin{env: e.name}
		if err := e.set(c, s, o, v); err != nil {
			diags = append(diags, o.errorf(e.summary, "%s.", err))
			continue
		}
		nameSet = nameSet || e.name == EnvName
	}
	return nameSet, diags
}

// parseBool parses a boolean environment value such as "true" or "0".
func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("%q is not a boolean; use true or false", v)
	}
	return b, nil
}

// normalizeLogLevel returns a log level as Config holds it: trimmed and in
// lower case.
func normalizeLogLevel(v string) string {
	return strings.ToLower(strings.TrimSpace(v))
}
