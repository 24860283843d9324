package daemon

import (
	"crypto/tls"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// serverCredentials returns the server option that makes the one port,
// peers' and clients', mutual TLS; none without TLS.
func (c *Config) serverCredentials() []grpc.ServerOption {
	if c.TLS == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(c.TLS.Server()))}
}

// peerTLS returns the configuration the transport dials peers with; nil,
// plain text, without TLS.
func (c *Config) peerTLS() *tls.Config {
	if c.TLS == nil {
		return nil
	}
	return c.TLS.Client(c.PeerServerName)
}
