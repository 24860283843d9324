package client

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/tlsconfig"
)

// tlsFiles are the PEM files of one party: dir/NAME.pem, dir/NAME-key.pem,
// and its CA's certificate.
type tlsFiles struct{ ca, cert, key string }

func (f tlsFiles) load(t *testing.T) *tlsconfig.Bundle {
	t.Helper()
	b, err := tlsconfig.Load(f.ca, f.cert, f.key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeTLS writes a CA (ca.pem) and certificates under dir: "replica"
// (serves, valid for the loopback names), "client" (client authentication
// only), and "foreign", a client certificate of another CA.
func writeTLS(t *testing.T) (replica, client, foreign tlsFiles) {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	issue := func(ca *tlsconfig.CA, caFile, name string, hosts []string, usages ...x509.ExtKeyUsage) tlsFiles {
		cert, key, err := ca.Issue(name, hosts, time.Hour, usages...)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := tlsconfig.KeyPEM(key)
		if err != nil {
			t.Fatal(err)
		}
		return tlsFiles{caFile, write(name+".pem", tlsconfig.CertPEM(cert)), write(name+"-key.pem", keyPEM)}
	}
	ca, err := tlsconfig.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsconfig.NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile, otherFile := write("ca.pem", tlsconfig.CertPEM(ca.Cert)), write("other-ca.pem", tlsconfig.CertPEM(other.Cert))
	replica = issue(ca, caFile, "replica", tlsconfig.LocalHosts, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	client = issue(ca, caFile, "client", nil, x509.ExtKeyUsageClientAuth)
	foreign = issue(other, otherFile, "foreign", nil, x509.ExtKeyUsageClientAuth)
	return replica, client, foreign
}

// startTLSReplica is startReplica serving with mutual TLS.
func startTLSReplica(t *testing.T, cl *cluster, files tlsFiles) *replica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{cl: cl, addr: lis.Addr().String()}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(files.load(t).Server())))
	epaxospb.RegisterClientServer(srv, r)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r
}

// A client with a certificate of the replica's CA is served; one without a
// certificate, with another CA's, or in plain text fails before its
// deadline, and no request reaches the replica.
func TestTLS_OnlyAClientWithACertificateOfTheCAIsServed(t *testing.T) {
	replicaFiles, clientFiles, foreignFiles := writeTLS(t)
	r := startTLSReplica(t, newCluster(), replicaFiles)

	good := newClient(t, Config{Addrs: []string{r.addr}, TLS: clientFiles.load(t).Client("")})
	if _, err := good.Propose(testCtx(t), Write, "k", []byte("v")); err != nil {
		t.Fatalf("client with a certificate of the CA: %v", err)
	}

	noCert := clientFiles.load(t).Client("")
	noCert.Certificates = nil
	foreign := foreignFiles.load(t).Client("")
	foreign.RootCAs = noCert.RootCAs // trusts the replica; only the replica refuses
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"NoCertificate", Config{Addrs: []string{r.addr}, TLS: noCert}},
		{"ForeignCA", Config{Addrs: []string{r.addr}, TLS: foreign}},
		{"PlainText", Config{Addrs: []string{r.addr}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Propose(ctx, Read, "k", nil)
			// The last error is the TLS alert ("certificate required"),
			// a broken pipe (the client wrote as the replica hung up), or
			// the deadline itself, as the client retries until then.
			if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
				t.Fatalf("got %v, want an error at the deadline", err)
			}
			t.Logf("refused: %v", err)
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v to fail", time.Since(start))
			}
		})
	}
	if n := len(r.requests()); n != 1 {
		t.Errorf("the replica saw %d requests, want only the good client's", n)
	}
}

func TestTLS_ProposeCommand(t *testing.T) {
	replicaFiles, clientFiles, foreignFiles := writeTLS(t)
	r := startTLSReplica(t, newCluster(), replicaFiles)
	tlsArgs := []string{"-ca", clientFiles.ca, "-cert", clientFiles.cert, "-key", clientFiles.key}

	args := append([]string{"-addr", r.addr, "-access", "write"}, tlsArgs...)
	if code, stdout, stderr := runCLI(append(args, "color", "blue")...); code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("with -ca -cert -key: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	t.Run("FromEnv", func(t *testing.T) {
		env := map[string]string{EnvCAFile: clientFiles.ca, EnvCertFile: clientFiles.cert, EnvKeyFile: clientFiles.key}
		old := getenv
		getenv = func(k string) string { return env[k] }
		t.Cleanup(func() { getenv = old })
		if code, stdout, stderr := runCLI("-addr", r.addr, "-access", "read", "color"); code != 0 || stdout != "blue\n" {
			t.Fatalf("with $EPAXOS_*_FILE: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"PlainText", nil, 1, "deadline exceeded"},
		{"ForeignCA", []string{"-ca", foreignFiles.ca, "-cert", foreignFiles.cert, "-key", foreignFiles.key}, 1, "deadline exceeded"},
		{"MissingKey", []string{"-ca", clientFiles.ca, "-cert", clientFiles.cert}, 2, "-ca, -cert given without -key: mutual TLS needs -ca, -cert and -key"},
		{"ServerNameWithoutTLS", []string{"-server-name", "localhost"}, 2, "-server-name needs -ca, -cert and -key"},
		{"KeyOfAnotherCertificate", []string{"-ca", clientFiles.ca, "-cert", clientFiles.cert, "-key", replicaFiles.key}, 1,
			"epaxosd propose: tls: private key " + replicaFiles.key + ": it is not the key of the certificate in " + clientFiles.cert},
		{"WrongServerName", append([]string{"-server-name", "db.example"}, tlsArgs...), 1, "db.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-addr", r.addr, "-timeout", "500ms", "-access", "read"}, tc.args...)
			code, stdout, stderr := runCLI(append(args, "color")...)
			if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and stderr containing %q", code, stdout, stderr, tc.code, tc.want)
			}
		})
	}
}

func TestTLS_PlainTextHint(t *testing.T) {
	refused := errors.New(`propose read "k": context deadline exceeded (last error: 127.0.0.1:1: rpc error: code = Unavailable desc = connection error: desc = "error reading server preface: EOF")`)
	if got := plainTextHint(refused).Error(); !strings.HasSuffix(got, "; a replica with a tls block refuses plain-text clients: pass -ca, -cert and -key") {
		t.Errorf("no hint: %s", got)
	}
	other := errors.New("connection refused")
	if got := plainTextHint(other); got != other {
		t.Errorf("hint on an unrelated error: %v", got)
	}
}
