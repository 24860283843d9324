package config

import (
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/tlsconfig"
)

// writeCerts writes, under dir/certs: ca.pem; alpha.pem, bravo.pem and
// their keys (replica certificates valid for the loopback names); client.pem
// and its key (client authentication only); ip10.pem and its key (valid for
// 10.0.0.1 only); other.pem and its key, from another CA; junk.pem.
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	ca, err := tlsconfig.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsconfig.NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "certs/ca.pem", string(tlsconfig.CertPEM(ca.Cert)), 0o644)
	writeFile(t, dir, "certs/junk.pem", "junk\n", 0o644)
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, c := range []struct {
		name   string
		ca     *tlsconfig.CA
		hosts  []string
		usages []x509.ExtKeyUsage
	}{
		{"alpha", ca, tlsconfig.LocalHosts, both},
		{"bravo", ca, tlsconfig.LocalHosts, both},
		{"client", ca, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"ip10", ca, []string{"10.0.0.1"}, both},
		{"other", other, tlsconfig.LocalHosts, both},
	} {
		cert, key, err := c.ca.Issue(c.name, c.hosts, time.Hour, c.usages...)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := tlsconfig.KeyPEM(key)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "certs/"+c.name+".pem", string(tlsconfig.CertPEM(cert)), 0o644)
		writeFile(t, dir, "certs/"+c.name+"-key.pem", string(keyPEM), 0o600)
	}
}

// tlsBlock is a tls block of five lines; after top, its ca_file, cert_file
// and key_file values are at 3:15, 4:15 and 5:15.
func tlsBlock(ca, cert, key string) string {
	return "tls {\n  ca_file   = " + ca + "\n  cert_file = " + cert + "\n  key_file  = " + key + "\n}\n"
}

var goodTLS = tlsBlock(`"certs/ca.pem"`, `"certs/alpha.pem"`, `"certs/alpha-key.pem"`)

func TestParse_TLSBlock(t *testing.T) {
	dir := t.TempDir()
	writeCerts(t, dir)
	file := filepath.Join(dir, "epaxos.hcl")
	c, err := Parse([]byte(top+goodTLS+tail3), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{
		CAFile:   filepath.Join(dir, "certs/ca.pem"),
		CertFile: filepath.Join(dir, "certs/alpha.pem"),
		KeyFile:  filepath.Join(dir, "certs/alpha-key.pem"),
	}
	if c.TLS == nil || *c.TLS != want {
		t.Errorf("TLS = %+v, want %+v", c.TLS, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() on the parsed Config = %v", err)
	}

	c, err = Parse([]byte(top+tail3), file, nil)
	if err != nil || c.TLS != nil {
		t.Errorf("without a tls block: TLS = %+v, err %v", c.TLS, err)
	}
}

// A file shared by the replicas names each one's certificate through the
// environment, taken as given rather than relative to the file.
func TestParse_TLSFilesFromEnv(t *testing.T) {
	dir := t.TempDir()
	writeCerts(t, dir)
	env := map[string]string{
		EnvName:        "bravo",
		EnvTLSCertFile: filepath.Join(dir, "certs/bravo.pem"),
		EnvTLSKeyFile:  filepath.Join(dir, "certs/bravo-key.pem"),
	}
	c, err := Parse([]byte(top+goodTLS+tail3), filepath.Join(dir, "epaxos.hcl"), envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != env[EnvTLSCertFile] || c.TLS.KeyFile != env[EnvTLSKeyFile] ||
		c.TLS.CAFile != filepath.Join(dir, "certs/ca.pem") {
		t.Errorf("TLS = %+v", c.TLS)
	}
}

func TestParse_TLSServerName(t *testing.T) {
	dir := t.TempDir()
	writeCerts(t, dir)
	// ip10.pem is not valid for 127.0.0.1 but is for 10.0.0.1.
	src := top + "tls {\n  ca_file     = \"certs/ca.pem\"\n  cert_file   = \"certs/ip10.pem\"\n  key_file    = \"certs/ip10-key.pem\"\n  server_name = \"10.0.0.1\"\n}\n" + tail3
	c, err := Parse([]byte(src), filepath.Join(dir, "epaxos.hcl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.ServerName != "10.0.0.1" {
		t.Errorf("ServerName = %q", c.TLS.ServerName)
	}
}

// TestParse_RejectsTLS has one case per problem with the tls block, in the
// style of TestParse_Rejects.
func TestParse_RejectsTLS(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{name: "MissingCAFile", src: top + "tls {\n  cert_file = \"certs/alpha.pem\"\n  key_file  = \"certs/alpha-key.pem\"\n}\n" + tail3,
			want: []string{"{file}:2:1: Missing ca_file: The tls block needs ca_file, the PEM certificate of the CA"}},
		{name: "MissingEverything", src: top + "tls {}\n" + tail3,
			want: []string{
				"{file}:2:1: Missing ca_file",
				"{file}:2:1: Missing cert_file: The tls block needs cert_file, this replica's PEM certificate",
				"{file}:2:1: Missing key_file: The tls block needs key_file, the PEM private key of cert_file.",
			}},
		{name: "EmptyCertFile", src: top + tlsBlock(`"certs/ca.pem"`, `""`, `"certs/alpha-key.pem"`) + tail3,
			want: []string{"{file}:4:15: Invalid cert_file: The path must not be empty"}},
		{name: "CAFileOfWrongType", src: top + tlsBlock(`["certs/ca.pem"]`, `"certs/alpha.pem"`, `"certs/alpha-key.pem"`) + tail3,
			want: []string{`{file}:3:15: Incorrect attribute value type: Inappropriate value for attribute "ca_file"`}},
		{name: "CAFileDoesNotExist", src: top + tlsBlock(`"certs/nope.pem"`, `"certs/alpha.pem"`, `"certs/alpha-key.pem"`) + tail3,
			want: []string{"{file}:3:15: Invalid ca_file: {dir}/certs/nope.pem: no such file or directory."}},
		{name: "CAFileIsALeaf", src: top + tlsBlock(`"certs/alpha.pem"`, `"certs/alpha.pem"`, `"certs/alpha-key.pem"`) + tail3,
			want: []string{`{file}:3:15: Invalid ca_file: {dir}/certs/alpha.pem: certificate "alpha" is not a CA certificate`}},
		{name: "CertFileIsJunk", src: top + tlsBlock(`"certs/ca.pem"`, `"certs/junk.pem"`, `"certs/alpha-key.pem"`) + tail3,
			want: []string{"{file}:4:15: Invalid cert_file: {dir}/certs/junk.pem: holds no PEM certificate."}},
		{name: "KeyFileDoesNotExist", src: top + tlsBlock(`"certs/ca.pem"`, `"certs/alpha.pem"`, `"alpha-key.pem"`) + tail3,
			want: []string{"{file}:5:15: Invalid key_file: {dir}/alpha-key.pem: no such file or directory."}},
		{name: "KeyOfAnotherCert", src: top + tlsBlock(`"certs/ca.pem"`, `"certs/alpha.pem"`, `"certs/bravo-key.pem"`) + tail3,
			want: []string{"{file}:5:15: Invalid key_file: {dir}/certs/bravo-key.pem: it is not the key of the certificate in {dir}/certs/alpha.pem"}},
		{name: "KeyFileIsACert", src: top + tlsBlock(`"certs/ca.pem"`, `"certs/alpha.pem"`, `"certs/alpha.pem"`) + tail3,
			want: []string{"{file}:5:15: Invalid key_file: {dir}/certs/alpha.pem: found a certificate rather than a key"}},
		{name: "CertOfAnotherCA", src: top + tlsBlock(`"certs/ca.pem"`, `"certs/other.pem"`, `"certs/other-key.pem"`) + tail3,
			want: []string{"{file}:4:15: Invalid cert_file: {dir}/certs/other.pem: not signed by the CA in {dir}/certs/ca.pem."}},
		{name: "ClientCertAsReplicaCert", src: top + tlsBlock(`"certs/ca.pem"`, `"certs/client.pem"`, `"certs/client-key.pem"`) + tail3,
			want: []string{
				"{file}:4:15: Invalid cert_file: {dir}/certs/client.pem: its extended key usage does not allow serverAuth",
				`{file}:4:15: Invalid cert_file: {dir}/certs/client.pem is not valid for 127.0.0.1, the host of replica "alpha"'s address`,
			}},
		{name: "CertNotValidForAddress", src: top + tlsBlock(`"certs/ca.pem"`, `"certs/ip10.pem"`, `"certs/ip10-key.pem"`) + tail3,
			want: []string{`{file}:4:15: Invalid cert_file: {dir}/certs/ip10.pem is not valid for 127.0.0.1, the host of replica "alpha"'s address, which its peers dial; it is valid for 10.0.0.1. Peers would refuse it: issue one valid for it, e.g. with epaxosd tls init -hosts 127.0.0.1.`}},
		{name: "CertNotValidForServerName", src: top + "tls {\n  ca_file     = \"certs/ca.pem\"\n  cert_file   = \"certs/alpha.pem\"\n  key_file    = \"certs/alpha-key.pem\"\n  server_name = \"db.example\"\n}\n" + tail3,
			want: []string{`{file}:4:17: Invalid cert_file: {dir}/certs/alpha.pem is not valid for db.example, the server_name peers check it against; it is valid for localhost, 127.0.0.1 and ::1. Peers would refuse it: set server_name to a name every replica's certificate is valid for.`}},
		{name: "UnknownTLSAttribute", src: top + "tls {\n  ca = \"certs/ca.pem\"\n}\n" + tail3,
			want: []string{
				"{file}:2:1: Missing ca_file",
				"{file}:2:1: Missing cert_file",
				"{file}:2:1: Missing key_file",
				`{file}:3:3: Unsupported argument: An argument named "ca" is not expected here.`,
			}},
		{name: "TLSWithLabel", src: top + "tls \"peers\" {}\n" + tail3,
			want: []string{"{file}:2:5: Extraneous label for tls"}},
		{name: "TwoTLSBlocks", src: top + goodTLS + "tls {}\n" + tail3,
			want: []string{"{file}:7:1: Duplicate tls block: Only one tls block is allowed; the first is at {file}:2:1."}},

		// The environment.
		{name: "EnvWithoutTLSBlock", src: top + tail3, env: map[string]string{EnvTLSCertFile: "alpha.pem"},
			want: []string{"EPAXOS_TLS_CERT_FILE: No tls block: the file has no tls block for it to override"}},
		{name: "EnvKeyDoesNotExist", src: top + goodTLS + tail3, env: map[string]string{EnvTLSKeyFile: "/nonexistent/alpha-key.pem"},
			want: []string{"EPAXOS_TLS_KEY_FILE: Invalid key_file: /nonexistent/alpha-key.pem: no such file or directory."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCerts(t, dir)
			file := filepath.Join(dir, "epaxos.hcl")
			c, err := Parse([]byte(tt.src), file, envOf(tt.env))
			if c != nil {
				t.Errorf("Parse returned a Config along with its error")
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.NewReplacer("{file}", file, "{dir}", dir).Replace(w)
			}
			checkLines(t, err, want)
		})
	}
}

func TestValidate_RejectsTLS(t *testing.T) {
	dir := t.TempDir()
	writeCerts(t, dir)
	c := valid()
	c.Replicas[1].Address = "127.0.0.1:7002"
	c.TLS = &TLS{
		CAFile:   filepath.Join(dir, "certs/ca.pem"),
		CertFile: filepath.Join(dir, "certs/bravo.pem"),
		KeyFile:  filepath.Join(dir, "certs/bravo-key.pem"),
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	c.TLS.KeyFile = filepath.Join(dir, "certs/alpha-key.pem")
	checkLines(t, c.Validate(), []string{"Invalid key_file: " + c.TLS.KeyFile + ": it is not the key of the certificate"})
}
