package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/config"
	"github.com/epaxosd/epaxosd/tlsconfig"
)

func runTLSCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"tls"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// loadCert reads the one certificate of a PEM file.
func loadCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := tlsconfig.Load(filepath.Join(filepath.Dir(file), "ca.pem"), file, strings.TrimSuffix(file, ".pem")+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return b.Cert.Leaf
}

// `epaxosd tls init DIR` writes a CA and, for each replica and a client, a
// certificate the CA signed with its key (mode 0600); replica certificates
// serve and dial and are valid for the loopback names, the replica's name
// and -hosts, the client's only dials.
func TestTLSInit_WritesCertificatesThatVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, stdout, stderr := runTLSCmd("init", dir, "-hosts", "10.0.0.5, db.example", "-days", "30")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"alpha-key.pem", "alpha.pem", "bravo-key.pem", "bravo.pem", "ca-key.pem", "ca.pem",
		"charlie-key.pem", "charlie.pem", "client-key.pem", "client.pem"}
	if !slices.Equal(names, want) {
		t.Fatalf("wrote %v, want %v", names, want)
	}
	for _, n := range names {
		info, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		wantMode := os.FileMode(0o644)
		if strings.HasSuffix(n, "-key.pem") {
			wantMode = 0o600
		}
		if info.Mode().Perm() != wantMode {
			t.Errorf("%s has mode %v, want %v", n, info.Mode().Perm(), wantMode)
		}
	}

	ca, err := tlsconfig.LoadCA(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alpha", "bravo", "charlie"} {
		leaf := loadCert(t, filepath.Join(dir, n+".pem")) // signed by the CA, with its key
		for _, host := range []string{n, "localhost", "127.0.0.1", "::1", "10.0.0.5", "db.example"} {
			if err := leaf.VerifyHostname(host); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
		if leaf.VerifyHostname("10.0.0.6") == nil {
			t.Errorf("%s is valid for 10.0.0.6", n)
		}
		for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
				t.Errorf("%s for usage %v: %v", n, u, err)
			}
		}
		if days := time.Until(leaf.NotAfter).Hours() / 24; days < 29 || days > 30 {
			t.Errorf("%s expires in %.1f days, want 30", n, days)
		}
		if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s has a %v key, want ECDSA P-256", n, leaf.PublicKeyAlgorithm)
		}
	}
	client := loadCert(t, filepath.Join(dir, "client.pem"))
	if _, err := client.Verify(x509.VerifyOptions{Roots: ca, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: ca, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("the client certificate may serve")
	}

	// The printed tls block and client flags name the files.
	for _, s := range []string{
		"tls {\n  ca_file   = \"" + filepath.Join(dir, "ca.pem") + "\"\n  cert_file = \"" + filepath.Join(dir, "alpha.pem") + "\"\n  key_file  = \"" + filepath.Join(dir, "alpha-key.pem") + "\"\n}",
		"EPAXOS_TLS_CERT_FILE=" + filepath.Join(dir, "bravo.pem"),
		"-ca " + filepath.Join(dir, "ca.pem") + " -cert " + filepath.Join(dir, "client.pem") + " -key " + filepath.Join(dir, "client-key.pem"),
	} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output does not contain %q:\n%s", s, stdout)
		}
	}
}

// The tls block that tls init prints is a valid configuration, for each
// replica with its own certificate from the environment.
func TestTLSInit_PrintedBlockIsAValidConfiguration(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runTLSCmd("init", "-names", "a,b,c", filepath.Join(dir, "certs"))
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	i, j := strings.Index(stdout, "tls {"), strings.Index(stdout, "}\n")
	src := stdout[i:j+2] + `plugin "kv" {}
replica "a" {
  pid     = 0
  address = "127.0.0.1:7001"
}
replica "b" {
  pid     = 1
  address = "localhost:7002"
}
replica "c" {
  pid     = 2
  address = "[::1]:7003"
}
`
	for _, n := range []string{"a", "b", "c"} {
		env := map[string]string{
			config.EnvName:        n,
			config.EnvTLSCertFile: filepath.Join(dir, "certs", n+".pem"),
			config.EnvTLSKeyFile:  filepath.Join(dir, "certs", n+"-key.pem"),
		}
		c, err := config.Parse([]byte(src), filepath.Join(dir, "config.hcl"), func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("replica %s: %v\n%s", n, err, src)
		}
		if c.TLS == nil {
			t.Fatalf("replica %s: no TLS", n)
		}
	}
}

func TestTLSInit_RefusesToOverwriteUnlessForced(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bravo-key.pem"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runTLSCmd("init", dir)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "already holds bravo-key.pem; nothing was written (use -force to overwrite)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
		t.Error("wrote ca.pem though it refused")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bravo-key.pem")); string(b) != "mine" {
		t.Errorf("bravo-key.pem overwritten: %q", b)
	}

	// With -force, an existing key file gets the new key and mode 0600.
	os.Chmod(filepath.Join(dir, "bravo-key.pem"), 0o644)
	if code, _, stderr := runTLSCmd("init", "-force", dir); code != 0 {
		t.Fatalf("-force: exit %d, stderr %q", code, stderr)
	}
	loadCert(t, filepath.Join(dir, "bravo.pem"))
	if info, err := os.Stat(filepath.Join(dir, "bravo-key.pem")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("bravo-key.pem after -force: %v, %v", info.Mode(), err)
	}
}

func TestTLSInit_Usage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: epaxosd tls init DIR"},
		{[]string{"renew"}, `unknown command "renew"`},
		{[]string{"init"}, "DIR is required"},
		{[]string{"init", "a", "b"}, `unexpected argument "b"`},
		{[]string{"init", "d", "-days", "0"}, "-days must be positive"},
		{[]string{"init", "d", "-names", "alpha,alpha"}, `"alpha" is listed twice`},
		{[]string{"init", "d", "-names", "../x"}, `"../x" is not a valid replica name`},
		{[]string{"init", "d", "-names", "alpha,client"}, `"client" would overwrite the client certificate`},
		{[]string{"init", "d", "-names", " , "}, "-names lists no replica"},
		{[]string{"init", "-bogus", "d"}, "flag provided but not defined: -bogus"},
	} {
		code, stdout, stderr := runTLSCmd(tc.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	if code, stdout, _ := runTLSCmd("-h"); code != 0 || !strings.Contains(stdout, "tls init") {
		t.Errorf("-h: exit %d, stdout %q", code, stdout)
	}
}
