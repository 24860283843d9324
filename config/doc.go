// Package config loads and checks the configuration of one epaxosd replica.
//
// A configuration is an HCL file that names this replica, lists every
// replica of the cluster and chooses the state-machine plugin; see
// config.hcl at the top of the repository for a commented example. Settings
// are taken, in increasing order of precedence, from built-in defaults, the
// file, and EPAXOS_* environment variables.
//
// The package owns reading, decoding and validating; it never creates data
// directories, starts plugins or opens sockets. A *Config that Load or Parse
// returns has passed every check in Validate, so callers can rely on the
// invariants documented on Config without checking them again.
//
// Every problem is reported as an *Error whose diagnostics point at the
// offending part of the file (file:line:col) or name the environment
// variable that caused it. Where practical all problems are reported at
// once rather than one per run.
package config
