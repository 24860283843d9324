package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const day = 24 * time.Hour

var bothUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}

// issued is a CA and one certificate it issued, written to files.
type issued struct {
	ca                        *CA
	caFile, certFile, keyFile string
}

// writeIssued makes a CA and a certificate for name in dir, as
// name-ca.pem, name.pem and name-key.pem.
func writeIssued(t *testing.T, dir, name string, hosts []string, usages ...x509.ExtKeyUsage) issued {
	t.Helper()
	ca, err := NewCA(name+" CA", day)
	if err != nil {
		t.Fatal(err)
	}
	return issueInto(t, ca, dir, name, hosts, usages...)
}

func issueInto(t *testing.T, ca *CA, dir, name string, hosts []string, usages ...x509.ExtKeyUsage) issued {
	t.Helper()
	cert, key, err := ca.Issue(name, hosts, day, usages...)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := KeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	is := issued{
		ca:       ca,
		caFile:   filepath.Join(dir, name+"-ca.pem"),
		certFile: filepath.Join(dir, name+".pem"),
		keyFile:  filepath.Join(dir, name+"-key.pem"),
	}
	for file, data := range map[string][]byte{is.caFile: CertPEM(ca.Cert), is.certFile: CertPEM(cert), is.keyFile: keyPEM} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return is
}

func TestLoad_AcceptsMatchingFiles(t *testing.T) {
	is := writeIssued(t, t.TempDir(), "alpha", LocalHosts, bothUsages...)
	b, err := Load(is.caFile, is.certFile, is.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if b.Cert.Leaf == nil || b.Cert.Leaf.Subject.CommonName != "alpha" {
		t.Errorf("leaf = %v", b.Cert.Leaf)
	}
	if err := b.CheckUsage(bothUsages...); err != nil {
		t.Errorf("CheckUsage: %v", err)
	}
	if got := strings.Join(Names(b.Cert.Leaf), ","); got != "localhost,127.0.0.1,::1" {
		t.Errorf("names %s", got)
	}
}

// Each broken file is reported as a *FileError naming that file.
func TestLoad_RejectsWithTheFileAtFault(t *testing.T) {
	dir := t.TempDir()
	good := writeIssued(t, dir, "alpha", LocalHosts, bothUsages...)
	other := writeIssued(t, dir, "other", LocalHosts, bothUsages...)
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	fifo := filepath.Join(dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.pem")
	if err := os.WriteFile(huge, make([]byte, maxPEMFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                      string
		caFile, certFile, keyFile string
		part                      Part
		file                      string
		msg                       string
	}{
		{"MissingCA", missing, good.certFile, good.keyFile, PartCA, missing, "no such file"},
		{"JunkCA", junk, good.certFile, good.keyFile, PartCA, junk, "holds no PEM certificate"},
		{"LeafAsCA", good.certFile, good.certFile, good.keyFile, PartCA, good.certFile, `certificate "alpha" is not a CA certificate`},
		{"KeyAsCA", good.keyFile, good.certFile, good.keyFile, PartCA, good.keyFile, `PEM "PRIVATE KEY" block where a certificate was expected`},
		{"MissingCert", good.caFile, missing, good.keyFile, PartCert, missing, "no such file"},
		{"JunkCert", good.caFile, junk, good.keyFile, PartCert, junk, "holds no PEM certificate"},
		{"MissingKey", good.caFile, good.certFile, missing, PartKey, missing, "no such file"},
		{"JunkKey", good.caFile, good.certFile, junk, PartKey, junk, "failed to find any PEM data"},
		{"CertAsKey", good.caFile, good.certFile, good.certFile, PartKey, good.certFile, "found a certificate rather than a key"},
		{"OtherKey", good.caFile, good.certFile, other.keyFile, PartKey, other.keyFile, "it is not the key of the certificate in " + good.certFile},
		{"DirectoryAsCA", dir, good.certFile, good.keyFile, PartCA, dir, "is not a regular file"},
		{"FIFOAsCert", good.caFile, fifo, good.keyFile, PartCert, fifo, "is not a regular file"},
		{"DeviceAsKey", good.caFile, good.certFile, "/dev/zero", PartKey, "/dev/zero", "is not a regular file"},
		{"HugeKey", good.caFile, good.certFile, huge, PartKey, huge, "larger than 1024 KiB"},
		{"OtherCA", other.caFile, good.certFile, good.keyFile, PartCert, good.certFile, "not signed by the CA in " + other.caFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.caFile, tt.certFile, tt.keyFile)
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *FileError", err, err)
			}
			if fe.Part != tt.part || fe.File != tt.file || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q (part %v, file %s); want part %v, file %s, containing %q",
					err, fe.Part, fe.File, tt.part, tt.file, tt.msg)
			}
		})
	}
}

func TestCheckUsage_ReportsMissingUsage(t *testing.T) {
	is := writeIssued(t, t.TempDir(), "client", nil, x509.ExtKeyUsageClientAuth)
	b, err := Load(is.caFile, is.certFile, is.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckUsage(x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("clientAuth: %v", err)
	}
	if err := b.CheckUsage(bothUsages...); err == nil || !strings.Contains(err.Error(), "serverAuth") {
		t.Errorf("serverAuth on a client certificate: %v", err)
	}
}

func TestIssue_ClampsToCAExpiryAndDedupsHosts(t *testing.T) {
	ca, err := NewCA("ca", day)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := ca.Issue("alpha", []string{"127.0.0.1", "LOCALHOST", "localhost", " ", "10.0.0.1", "db.example"}, 10*day, bothUsages...)
	if err != nil {
		t.Fatal(err)
	}
	if cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("certificate expires %v, after its CA (%v)", cert.NotAfter, ca.Cert.NotAfter)
	}
	if got := strings.Join(Names(cert), ","); got != "LOCALHOST,db.example,127.0.0.1,10.0.0.1" {
		t.Errorf("names %s", got)
	}
}

// handshake runs a TLS handshake between a server and a client over a pipe
// and returns the server's error and the client's.
func handshake(server, client *tls.Config) (serverErr, clientErr error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// In TLS 1.3 the client finishes before the server has checked
			// its certificate; a read makes it wait for the verdict.
			_, err = s.Write([]byte{1})
		}
		if err != nil {
			a.Close()
		}
		done <- err
	}()
	c := tls.Client(b, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 1))
	}
	return <-done, clientErr
}

// Server requires a client certificate from the same CA; Client verifies
// the server's certificate and its host name.
func TestServerAndClient_MutualTLS(t *testing.T) {
	dir := t.TempDir()
	srv := writeIssued(t, dir, "alpha", LocalHosts, bothUsages...)
	cli := issueInto(t, srv.ca, dir, "client", nil, x509.ExtKeyUsageClientAuth)
	foreign := writeIssued(t, dir, "foreign", LocalHosts, bothUsages...)
	load := func(is issued) *Bundle {
		b, err := Load(is.caFile, is.certFile, is.keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	server := load(srv).Server()

	if se, ce := handshake(server, load(cli).Client("127.0.0.1")); se != nil || ce != nil {
		t.Fatalf("client of the CA: server %v, client %v", se, ce)
	}
	if se, _ := handshake(server, load(foreign).Client("127.0.0.1")); se == nil {
		t.Error("server accepted a client certificate of another CA")
	}
	noCert := load(cli).Client("127.0.0.1")
	noCert.Certificates = nil
	if se, _ := handshake(server, noCert); se == nil {
		t.Error("server accepted a client without a certificate")
	}
	if _, ce := handshake(server, load(cli).Client("10.9.9.9")); ce == nil || !strings.Contains(ce.Error(), "10.9.9.9") {
		t.Errorf("client accepted a server certificate not valid for the host it dialed: %v", ce)
	}
	if _, ce := handshake(load(foreign).Server(), load(cli).Client("127.0.0.1")); ce == nil {
		t.Error("client accepted a server certificate of another CA")
	}
}

func TestLoad_RejectsAnExpiredCertificate(t *testing.T) {
	dir := t.TempDir()
	good := writeIssued(t, dir, "alpha", LocalHosts, bothUsages...)
	cert, key, err := good.ca.Issue("old", LocalHosts, -time.Hour, bothUsages...)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := KeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "old.pem"), filepath.Join(dir, "old-key.pem")
	os.WriteFile(certFile, CertPEM(cert), 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	_, err = Load(good.caFile, certFile, keyFile)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Part != PartCert || !strings.Contains(err.Error(), "expired or not yet valid") {
		t.Fatalf("got %v, want the certificate reported as expired", err)
	}
}
