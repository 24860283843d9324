package daemon

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/epaxosd/epaxosd/config"
	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/tlsconfig"
)

// TickInterval is the period of the core's clock.
const TickInterval = 10 * time.Millisecond

// Config is everything a Daemon needs; build it with FromConfig.
type Config struct {
	Name    string            // this replica's name, for logs
	ID      replica.ReplicaID // this replica's pid
	N       int               // cluster size
	Cluster string            // cluster id; peers of another cluster are refused
	Address string            // listen address for peers and clients
	DataDir string            // durable state; "" keeps nothing (dev clusters)
	Seed    uint64            // the core's random seed (recovery jitter)
	Peers   map[replica.ReplicaID]string

	Timeout   time.Duration // peer response timeout
	Thrifty   bool
	Aggregate bool

	// ClientRateLimit is the requests per second each client connection
	// may send (see admission); 0 means no limit.
	ClientRateLimit int64

	// MetricsFile, if set, gets a MetricsLine (metrics.go) appended every
	// second.
	MetricsFile string

	// PeerDelay is for benchmarks and tests only: the emulated one-way
	// delay of the messages to each peer (transport.Config.PeerDelay).
	PeerDelay map[replica.ReplicaID]time.Duration

	Plugin plugin.HostConfig
	Logger hclog.Logger

	// TLS, if set, makes every connection mutual TLS on the one port: the
	// server presents TLS.Cert and requires peers and clients to present a
	// certificate that chains to TLS.CAs, and peers are dialed likewise,
	// their certificates checked against PeerServerName or, if it is empty,
	// the host of their address. Nil serves and dials in plain text.
	TLS            *tlsconfig.Bundle
	PeerServerName string
	tlsErr         error // loading the configured TLS files failed; check reports it

	// Listener, if set, is used instead of listening on Address (tests).
	Listener net.Listener
}

// FromConfig derives a daemon configuration from a loaded replica
// configuration. self is the path of the running epaxosd binary, which runs
// the built-in plugins as `self plugin NAME`.
func FromConfig(c *config.Config, self string, logger hclog.Logger) Config {
	me := c.Self()
	peers := make(map[replica.ReplicaID]string, len(c.Replicas)-1)
	for _, r := range c.Replicas {
		if r.PID != me.PID {
			peers[replica.ReplicaID(r.PID)] = r.Address
		}
	}
	hc := plugin.HostConfig{Name: c.Plugin.Name, Command: c.Plugin.Command, Args: c.Plugin.Args, Logger: logger}
	if c.Plugin.Builtin() {
		hc.Command, hc.Args = self, []string{"plugin", c.Plugin.Name}
	}
	dc := Config{
		Name: me.Name, ID: replica.ReplicaID(me.PID), N: len(c.Replicas), Cluster: c.ClusterID(),
		Address: me.Address, DataDir: c.DataDir, Seed: seed(c.Seed), Peers: peers, Timeout: c.Timeout, Thrifty: c.Thrifty,
		Aggregate: c.Aggregate, ClientRateLimit: c.ClientRateLimit, Plugin: hc, Logger: logger,
		MetricsFile: c.Metrics,
	}
	for _, r := range c.Replicas {
		if d := c.EmulatedPeerDelay[r.Name]; d > 0 && r.PID != me.PID {
			if dc.PeerDelay == nil {
				dc.PeerDelay = make(map[replica.ReplicaID]time.Duration)
			}
			dc.PeerDelay[replica.ReplicaID(r.PID)] = d
		}
	}
	if c.TLS != nil {
		// The files were checked when c was loaded; New reports a failure
		// to read them again.
		dc.TLS, dc.tlsErr = tlsconfig.Load(c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile)
		dc.PeerServerName = c.TLS.ServerName
	}
	return dc
}

// seed turns the configured seed into the core's: 0 means time based.
func seed(s int64) uint64 {
	if s == 0 {
		return uint64(time.Now().UnixNano())
	}
	return uint64(s)
}

func (c *Config) check() error {
	switch {
	case c.tlsErr != nil:
		return fmt.Errorf("tls: %w", c.tlsErr)
	case c.N < 3:
		return fmt.Errorf("cluster of %d replicas: need at least 3", c.N)
	case len(c.Peers) != c.N-1:
		return fmt.Errorf("%d peers for a cluster of %d", len(c.Peers), c.N)
	case c.Address == "" && c.Listener == nil:
		return errors.New("no listen address")
	case c.Timeout <= 0:
		return errors.New("timeout must be positive")
	case c.Plugin.Command == "":
		return errors.New("no plugin command")
	}
	return nil
}

// timeoutTicks converts the peer timeout to core ticks (at least one).
func (c *Config) timeoutTicks() int {
	return max(1, int(c.Timeout/TickInterval))
}

// maxBatch is the core's bound on commands per instance: maxProposal when
// aggregating, else one command per instance.
func (c *Config) maxBatch() int {
	if c.Aggregate {
		return maxProposal
	}
	return 1
}
