// Package tlsconfig loads the mutual-TLS material of an epaxosd replica or
// client (a CA certificate, a certificate and its key, all PEM files) and
// builds the *tls.Config each side of a connection uses; it also makes a
// development CA and certificates (see NewCA), for `epaxosd tls init`.
//
// Every connection to a replica is mutual TLS when TLS is on: a replica
// serves only parties whose certificate chains to the CA, and dials peers
// checking that their certificate chains to the CA and is valid for the host
// it dialed (standard hostname verification; never skipped). The package
// uses the standard library only, so applications can use it with the Go
// client without importing anything else of epaxosd. It never reloads
// files: a changed certificate takes effect on restart.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// MinVersion is the oldest TLS version epaxosd accepts or offers. Every
// party is epaxosd or its Go client, so there is nothing older to admit.
const MinVersion = tls.VersionTLS13

// Part says which of the files a *FileError is about.
type Part int

const (
	PartCA   Part = iota + 1 // the CA certificate file
	PartCert                 // the certificate file
	PartKey                  // the private key file
)

func (p Part) String() string {
	switch p {
	case PartCA:
		return "CA certificate"
	case PartCert:
		return "certificate"
	case PartKey:
		return "private key"
	}
	return fmt.Sprintf("part(%d)", int(p))
}

// FileError is a problem with one of the files given to Load: it cannot be
// read, does not parse, or does not fit the others (a key that is not the
// certificate's, a certificate the CA did not sign).
type FileError struct {
	Part Part
	File string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s %s: %v", e.Part, e.File, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// Bundle is one party's TLS material: the CAs it trusts and its own
// certificate.
type Bundle struct {
	// CAs are the authorities whose certificates this party accepts from
	// the other side.
	CAs *x509.CertPool
	// Cert is this party's certificate chain, leaf first, and its key;
	// Cert.Leaf is set.
	Cert tls.Certificate
}

// Load reads a CA certificate file, a certificate file and the certificate's
// private key file (all PEM) and checks that they fit: the key is the
// certificate's, and the certificate chains to a CA of caFile and is valid
// now. Every error is a *FileError naming the file at fault.
func Load(caFile, certFile, keyFile string) (*Bundle, error) {
	cas, err := LoadCA(caFile)
	if err != nil {
		return nil, err
	}
	certPEM, chain, err := readCerts(certFile)
	if err != nil {
		return nil, &FileError{PartCert, certFile, err}
	}
	keyPEM, err := readPEMFile(keyFile)
	if err != nil {
		return nil, &FileError{PartKey, keyFile, readError(err)}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		if strings.Contains(msg, "does not match") {
			msg = fmt.Sprintf("it is not the key of the certificate in %s (%s)", certFile, msg)
		}
		return nil, &FileError{PartKey, keyFile, errors.New(msg)}
	}
	cert.Leaf = chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = chain[0].Verify(x509.VerifyOptions{
		Roots:         cas,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			err = fmt.Errorf("not signed by the CA in %s", caFile)
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			err = fmt.Errorf("expired or not yet valid (%v)", err)
		default:
			err = fmt.Errorf("does not chain to the CA in %s: %v", caFile, err)
		}
		return nil, &FileError{PartCert, certFile, err}
	}
	return &Bundle{CAs: cas, Cert: cert}, nil
}

// LoadCA reads a file of PEM CA certificates. It must hold at least one
// certificate and nothing else, and each must be a CA's. Errors are
// *FileError.
func LoadCA(file string) (*x509.CertPool, error) {
	_, certs, err := readCerts(file)
	if err == nil {
		for _, c := range certs {
			if !c.IsCA {
				err = fmt.Errorf("certificate %q is not a CA certificate; name the CA's certificate (ca.pem from epaxosd tls init)", c.Subject.CommonName)
				break
			}
		}
	}
	if err != nil {
		return nil, &FileError{PartCA, file, err}
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// readCerts reads a file that holds PEM certificates and nothing else.
func readCerts(file string) ([]byte, []*x509.Certificate, error) {
	data, err := readPEMFile(file)
	if err != nil {
		return nil, nil, readError(err)
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("holds a PEM %q block where a certificate was expected", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("holds no PEM certificate")
	}
	return data, certs, nil
}

// maxPEMFile bounds what readPEMFile reads: certificates and keys are a few
// KiB; a configuration that names /dev/zero must not exhaust memory.
const maxPEMFile = 1 << 20

// readPEMFile reads a certificate or key file: a regular file of at most
// maxPEMFile bytes (a FIFO or device would block or never end).
func readPEMFile(file string) ([]byte, error) {
	// Stat before opening: opening a FIFO blocks until a writer comes.
	info, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (%v)", info.Mode().Type())
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("is larger than %d KiB, too large for a PEM certificate or key", maxPEMFile>>10)
	}
	return data, nil
}

// readError shortens an error of os.ReadFile, whose path the caller names.
func readError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Server returns the configuration of a replica's server: it presents the
// bundle's certificate and requires every client and peer to present one
// that chains to the bundle's CAs.
func (b *Bundle) Server() *tls.Config {
	return &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{b.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    b.CAs,
	}
}

// Client returns the configuration of a replica dialing a peer, or of a
// client dialing a replica: it presents the bundle's certificate and
// accepts only a server certificate that chains to the bundle's CAs and is
// valid for serverName, or, if serverName is "", for the host of the
// address dialed (gRPC fills it in).
func (b *Bundle) Client(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{b.Cert},
		RootCAs:      b.CAs,
		ServerName:   serverName,
	}
}

// CheckUsage returns an error unless the bundle's certificate may be used
// for every one of usages: its extended key usage lists them, or any usage,
// or is absent (which allows all).
func (b *Bundle) CheckUsage(usages ...x509.ExtKeyUsage) error {
	var missing []string
	for _, u := range usages {
		if !AllowsUsage(b.Cert.Leaf, u) {
			missing = append(missing, usageName(u))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("its extended key usage does not allow %s", strings.Join(missing, " or "))
	}
	return nil
}

// AllowsUsage reports whether c's extended key usage allows u.
func AllowsUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	return (len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0) ||
		slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) || slices.Contains(c.ExtKeyUsage, u)
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth (a replica serves with it)"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth (a replica dials its peers with it)"
	}
	return fmt.Sprintf("usage %d", int(u))
}

// Names returns the names a certificate is valid for (its DNS names and IP
// addresses), for messages.
func Names(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
