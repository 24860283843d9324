package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/client"
	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/tlsconfig"
)

// tlsInit runs `epaxosd tls init dir` and fails the test on error.
func tlsInit(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command(epaxosd, "tls", "init", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("epaxosd tls init %s: %v\n%s", dir, err, out)
	}
}

// loadBundle loads NAME.pem and NAME-key.pem of a `tls init` directory.
func loadBundle(t *testing.T, dir, name string) *tlsconfig.Bundle {
	t.Helper()
	b, err := tlsconfig.Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startTLSCluster is startCluster with mutual TLS: it makes certificates
// with `epaxosd tls init` in the cluster's directory, gives each replica's
// file a tls block naming its own, and connects its clients with the client
// certificate. It returns the cluster and the certificates' directory.
func startTLSCluster(t *testing.T, n int, pluginBlock string) (*cluster, string) {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), addrs: freePorts(t, n)}
	certs := filepath.Join(c.dir, "certs")
	tlsInit(t, certs)
	c.tls = loadBundle(t, certs, "client").Client("")
	var replicas strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&replicas, "replica %q {\n  pid     = %d\n  address = %q\n}\n", names[i], i, c.addrs[i])
	}
	for i := 0; i < n; i++ {
		file := filepath.Join(c.dir, names[i]+".hcl")
		block := fmt.Sprintf("tls {\n  ca_file   = \"certs/ca.pem\"\n  cert_file = \"certs/%s.pem\"\n  key_file  = \"certs/%[1]s-key.pem\"\n}\n", names[i])
		src := fmt.Sprintf("name      = %q\ndata_dir  = %q\ntimeout   = \"200ms\"\nlog_level = \"debug\"\n%s\n%s\n%s",
			names[i], filepath.Join(c.dir, "data", names[i]), block, pluginBlock, replicas.String())
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		c.files = append(c.files, file)
		c.procs = append(c.procs, nil)
		c.logs = append(c.logs, &lockedBuffer{})
		c.start(i)
	}
	t.Cleanup(c.stop)
	c.waitReady()
	return c, certs
}

// A cluster whose files have a tls block serves clients with a certificate
// of its CA, through every replica (so its peers reach each other over
// mutual TLS), and refuses clients without one, with another CA's, or in
// plain text, and a peer with another CA's certificate or a client's.
func TestE2E_TLSClusterServesOnlyCertificatesOfItsCA(t *testing.T) {
	c, certs := startTLSCluster(t, 3, "plugin \"counter\" {}\n")
	for i, addr := range c.addrs {
		if got := propose(t, c.client(addr), client.Write, "n", "1"); got != fmt.Sprint(i+1) {
			t.Fatalf("increment through %s returned %s, want %d", addr, got, i+1)
		}
	}
	for i, l := range c.logs {
		if s := l.String(); !strings.Contains(s, "mutual TLS for peers and clients") || strings.Contains(s, "no tls block") {
			t.Errorf("replica %s does not log that TLS is on:\n%s", names[i], s)
		}
	}

	// The CLI with the client certificate, from the environment.
	run := func(env []string, args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		cmd := exec.Command(epaxosd, append([]string{"propose", "-timeout", "2s"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	clientEnv := []string{
		client.EnvCAFile + "=" + filepath.Join(certs, "ca.pem"),
		client.EnvCertFile + "=" + filepath.Join(certs, "client.pem"),
		client.EnvKeyFile + "=" + filepath.Join(certs, "client-key.pem"),
	}
	if out, stderr, err := run(clientEnv, "-addr", c.addrs[1], "-access", "read", "n"); err != nil || out != "3\n" {
		t.Fatalf("CLI with the client certificate: out %q, stderr %q, err %v", out, stderr, err)
	}
	start := time.Now()
	out, stderr, err := run(nil, "-addr", strings.Join(c.addrs, ","), "-access", "read", "n")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || out != "" || !strings.Contains(stderr, "deadline exceeded") {
		t.Fatalf("CLI in plain text: out %q, stderr %q, err %v", out, stderr, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("CLI in plain text took %v to fail", d)
	}

	// Clients: another CA's certificate, none, plain text.
	other := filepath.Join(t.TempDir(), "other")
	tlsInit(t, other)
	foreign := loadBundle(t, other, "client").Client("")
	foreign.RootCAs = c.tls.RootCAs // it trusts the replicas; they must refuse it
	noCert := c.tls.Clone()
	noCert.Certificates = nil
	for _, tc := range []struct {
		name string
		tls  *tls.Config
	}{{"ForeignCA", foreign}, {"NoCertificate", noCert}, {"PlainText", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := client.New(client.Config{Addrs: c.addrs, TLS: tc.tls})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			// The refusal surfaces as the TLS alert ("certificate
			// required", "unknown certificate authority") or, if the
			// client was writing when the replica closed the connection,
			// as a broken pipe; the client retries until its deadline.
			v, err := cl.Propose(ctx, client.Write, "n", []byte("100"))
			if err == nil || !strings.Contains(err.Error(), "Unavailable") {
				t.Fatalf("got %q, %v; want Unavailable", v, err)
			}
			t.Logf("refused: %v", err)
		})
	}

	// Peers: a replica of another CA, and the client certificate of this
	// one, cannot open a Peer stream.
	otherReplica := loadBundle(t, other, "alpha").Client("")
	otherReplica.RootCAs = c.tls.RootCAs
	ourClient := c.tls
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		code codes.Code
		want string
	}{
		// Refused in the handshake: the TLS alert, or a reset if the
		// stream was being written as the replica hung up.
		{"ForeignCA", otherReplica, codes.Unavailable, ""},
		{"ClientCertificate", ourClient, codes.PermissionDenied, `certificate "client"`},
	} {
		t.Run("Peer"+tc.name, func(t *testing.T) {
			conn, err := grpc.NewClient(c.addrs[0], grpc.WithTransportCredentials(credentials.NewTLS(tc.tls)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := epaxospb.NewPeerClient(conn).Stream(ctx)
			if err == nil {
				_, err = s.Recv()
			}
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want %v containing %q", err, tc.code, tc.want)
			}
		})
	}

	// Nothing a refused party sent was applied.
	if got := propose(t, c.client(c.addrs[2]), client.Read, "n", ""); got != "3" {
		t.Errorf("counter is %s after the refusals, want 3", got)
	}
}

// An agent whose file has no tls block warns that its traffic is
// unauthenticated.
func TestE2E_AgentWithoutTLSWarns(t *testing.T) {
	dir := t.TempDir()
	addrs := freePorts(t, 3)
	var src strings.Builder
	fmt.Fprintf(&src, "name = \"alpha\"\ndata_dir = %q\nplugin \"kv\" {}\n", filepath.Join(dir, "data"))
	for i, a := range addrs {
		fmt.Fprintf(&src, "replica %q {\n  pid     = %d\n  address = %q\n}\n", names[i], i, a)
	}
	file := filepath.Join(dir, "alpha.hcl")
	if err := os.WriteFile(file, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(epaxosd, "agent", "-config", file)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	const warning = "[WARN]  alpha: no tls block: peer and client traffic is unauthenticated and unencrypted"
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), warning) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning %q in:\n%s", warning, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
