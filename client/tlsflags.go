package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/epaxosd/epaxosd/tlsconfig"
)

// ResolveTLSFlags completes a command line's -ca, -cert and -key from the
// environment (EnvCAFile, EnvCertFile, EnvKeyFile) where a flag is empty,
// and checks that they come together: all three (mutual TLS) or none
// (plain text), and -server-name only with them. The error is a usage
// error for the command line.
func ResolveTLSFlags(caFile, certFile, keyFile *string, serverName string, getenv func(string) string) error {
	files := []struct {
		flag, env string
		v         *string
	}{{"-ca", EnvCAFile, caFile}, {"-cert", EnvCertFile, certFile}, {"-key", EnvKeyFile, keyFile}}
	var given, missing []string
	for _, f := range files {
		if *f.v == "" {
			*f.v = getenv(f.env)
		}
		if *f.v == "" {
			missing = append(missing, f.flag)
		} else {
			given = append(given, f.flag)
		}
	}
	if len(given) > 0 && len(missing) > 0 {
		return fmt.Errorf("%s given without %s: mutual TLS needs -ca, -cert and -key", strings.Join(given, ", "), strings.Join(missing, ", "))
	}
	if len(given) == 0 && serverName != "" {
		return fmt.Errorf("-server-name needs -ca, -cert and -key")
	}
	return nil
}

// LoadTLSFlags loads what ResolveTLSFlags resolved: nil (plain text) when
// no CA file is given, else the client side of mutual TLS from the three
// files, after checking that the certificate may authenticate a client.
func LoadTLSFlags(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	b, err := tlsconfig.Load(caFile, certFile, keyFile)
	if err == nil {
		if err = b.CheckUsage(x509.ExtKeyUsageClientAuth); err != nil {
			err = fmt.Errorf("certificate %s: %w", certFile, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return b.Client(serverName), nil
}
