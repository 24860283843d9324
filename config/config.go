package config

import (
	"slices"
	"time"
)

// Defaults for settings that a file may leave out.
const (
	DefaultTimeout   = 500 * time.Millisecond
	DefaultLogLevel  = "info"
	DefaultAggregate = true
	DefaultThrifty   = false

	// DefaultClientRateLimit is the requests per second that one client
	// connection may send before requests are refused with
	// ResourceExhausted. It is far above what one connection can get
	// ordered, so it only stops a runaway client from starving the others.
	DefaultClientRateLimit = 50000
)

// Bounds on the number of replicas in a cluster. A cluster of N = 2F+1
// replicas tolerates F failures, so N must be odd; fewer than three
// tolerates none. The upper bound keeps quorums, dependency sets and the
// all-to-all connections small; EPaxos is meant for a handful of replicas.
const (
	MinReplicas = 3
	MaxReplicas = 15
)

// BuiltinPlugins are the state-machine plugins compiled into epaxosd. A
// plugin block without a command must be labelled with one of these names.
var BuiltinPlugins = []string{"kv", "counter"}

// LogLevels are the accepted values of Config.LogLevel, most verbose first.
var LogLevels = []string{"trace", "debug", "info", "warn", "error"}

// Config is the configuration of one replica. A Config returned by Load or
// Parse is valid (see Validate): it always names one of its replicas, and
// Replicas[i].PID == i for every i.
type Config struct {
	File      string        // path the configuration was loaded from ("" when built in code)
	Name      string        // this replica; one of Replicas[i].Name
	DataDir   string        // where this replica keeps its state
	Timeout   time.Duration // how long to wait for a peer's response; > 0
	Thrifty   bool          // send protocol messages to quorum members only
	Aggregate bool          // batch concurrent proposals into one instance
	LogLevel  string        // one of LogLevels
	Seed      int64         // random seed; 0 means seed from the clock

	// ClientRateLimit is the requests per second that one client
	// connection may send; 0 turns the limit off; never negative.
	ClientRateLimit int64
	// Metrics names a file to which the replica appends one JSON line of
	// statistics per second (client throughput and latency, fast and slow
	// path commits, execution delay); "" writes none. A relative path is
	// relative to the file's directory.
	Metrics  string
	Plugin   Plugin    // the replicated state machine
	Replicas []Replica // the whole cluster, sorted by PID; PIDs are exactly 0..N-1
	TLS      *TLS      // mutual TLS for peers and clients; nil serves and dials in plain text

	// EmulatedPeerDelay is for benchmarks and tests only, and empty by
	// default. It emulates a wide-area network on one machine: every
	// message this replica sends to the replica named by a key waits that
	// long before it is sent (a one-way delay; give each replica its own,
	// through EPAXOS_EMULATED_PEER_DELAY in a shared file). Keys are
	// replica names; an entry for this replica itself is ignored, so that
	// a shared file can give every replica one uniform delay. Delays are
	// never negative; 0 is none.
	EmulatedPeerDelay map[string]time.Duration
}

// Plugin selects the state machine that the cluster replicates.
type Plugin struct {
	Name    string   // the plugin block's label
	Command string   // executable of an external plugin; "" for a built-in plugin
	Args    []string // arguments passed to Command
}

// Builtin reports whether p is one of BuiltinPlugins rather than an
// external program.
func (p Plugin) Builtin() bool { return p.Command == "" }

// Replica is one member of the cluster.
type Replica struct {
	Name    string // unique within the cluster
	PID     uint32 // unique within the cluster, 0..N-1
	Address string // host:port that serves both peers and clients
}

// TLS is the tls block: it turns on mutual TLS for every connection of the
// replica, to and from peers and clients. A valid TLS names files that
// exist and fit together (see tlsconfig.Load): the key is the certificate's,
// the certificate chains to the CA, may serve and dial (extended key usage
// serverAuth and clientAuth), and is valid for the host of this replica's
// address, or for ServerName if it is set.
type TLS struct {
	CAFile   string // PEM certificate of the CA that signs every replica's and client's certificate
	CertFile string // this replica's PEM certificate, which it serves and dials with
	KeyFile  string // the PEM private key of CertFile
	// ServerName, if set, is the name every replica's certificate is checked
	// against when a peer dials it, instead of the host of its address.
	ServerName string
}

// Self returns the replica that this configuration is for: the one whose
// Name is c.Name. It returns the zero Replica if there is none, which
// cannot happen for a valid Config.
func (c *Config) Self() Replica {
	i := slices.IndexFunc(c.Replicas, func(r Replica) bool { return r.Name == c.Name })
	if i < 0 {
		return Replica{}
	}
	return c.Replicas[i]
}
