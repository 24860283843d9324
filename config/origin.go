package config

import (
	"github.com/hashicorp/hcl/v2"
)

// origin says where one setting came from, so that a problem with it can be
// reported where the user can fix it. The zero origin is a setting that was
// defaulted or set in code.
type origin struct {
	subject  *hcl.Range // the value's range in the file, if it came from the file
	env      string     // the environment variable that set it, if any
	reported bool       // the value was unusable and has been reported already
}

// fileOrigin is the origin of a value at r in the file.
func fileOrigin(r hcl.Range) origin { return origin{subject: r.Ptr()} }

// errorf returns an error diagnostic about the setting: pointing at its value
// in the file, or naming the environment variable that set it.
func (o origin) errorf(summary, format string, args ...any) *hcl.Diagnostic {
	if o.env != "" {
		summary = o.env + ": " + summary
	}
	return errorf(o.subject, summary, format, args...)
}

// sources records the origin of every setting of a Config. Validate uses the
// zero sources, so its diagnostics carry no positions.
type sources struct {
	file     *hcl.Range // the whole file (its start), for problems of no one part of it
	baseDir  string     // directory that relative paths in the file are relative to
	fromHost bool       // Name was defaulted from the host name

	name, dataDir, timeout, logLevel, clientRateLimit, metrics origin

	pluginName    origin // the plugin block's label
	pluginCommand origin
	pluginArgs    origin
	noPlugin      bool // the file has no usable plugin block, which is reported

	replicas           []replicaOrigins // parallel to Config.Replicas
	replicasIncomplete bool             // a replica block was malformed and is not in Config.Replicas

	tls tlsOrigins

	peerDelay map[string]delayOrigins // by replica name, for Config.EmulatedPeerDelay
}

// tlsOrigins records where the tls block's settings came from.
type tlsOrigins struct {
	block                              *hcl.Range // the tls block's header
	caFile, certFile, keyFile, srvName origin
}

// replicaOrigins records where one replica's settings came from.
type replicaOrigins struct {
	block              *hcl.Range // the replica block's header
	name, pid, address origin
}

// replica returns the origins of c.Replicas[i].
func (s *sources) replica(i int) replicaOrigins {
	if i < len(s.replicas) {
		return s.replicas[i]
	}
	return replicaOrigins{}
}
