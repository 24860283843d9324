package main

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/epaxosd/epaxosd/tlsconfig"
)

const tlsUsage = `Usage: epaxosd tls init DIR [-names alpha,bravo,charlie] [-hosts HOST,...] [-days 365] [-force]

Makes a CA and certificates for a cluster in DIR, enough to turn on mutual TLS:
  ca.pem, ca-key.pem       the CA (keep ca-key.pem secret: it signs certificates)
  NAME.pem, NAME-key.pem   one per replica name
  client.pem, client-key.pem  a certificate for clients (epaxosd propose -ca -cert -key)
Replica certificates are valid for their name, localhost, 127.0.0.1, ::1 and
every -hosts entry: list the hosts of the replicas' addresses. Keys are
ECDSA P-256, written with mode 0600. Existing files are not overwritten
unless -force is given.
`

// clientCertName names the client certificate that tls init makes.
const clientCertName = "client"

// runTLS runs `epaxosd tls ...`; args are the arguments after "tls".
func runTLS(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "init" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, tlsUsage)
			return 0
		}
		if len(args) > 0 {
			fmt.Fprintf(stderr, "epaxosd tls: unknown command %q\n\n", args[0])
		}
		fmt.Fprint(stderr, tlsUsage)
		return 2
	}
	return runTLSInit(args[1:], stdout, stderr)
}

// tlsInit is what `epaxosd tls init` was asked to make.
type tlsInit struct {
	dir   string
	names []string
	hosts []string
	days  int
	force bool
}

func runTLSInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tls init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	names := fs.String("names", "alpha,bravo,charlie", "comma-separated replica names: one certificate each")
	hosts := fs.String("hosts", "", "comma-separated host names or IP addresses the replica certificates are also valid for")
	days := fs.Int("days", 365, "validity of the CA and the certificates, in days")
	force := fs.Bool("force", false, "overwrite existing files")
	fs.Usage = func() {
		fmt.Fprint(stderr, tlsUsage)
		fs.PrintDefaults()
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "epaxosd tls init: "+format+"\n", a...)
		fmt.Fprint(stderr, tlsUsage)
		return 2
	}
	// Flags may come before or after DIR.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(pos) == 0:
		return usageErr("DIR is required")
	case len(pos) > 1:
		return usageErr("unexpected argument %q", pos[1])
	case *days <= 0:
		return usageErr("-days must be positive, got %d", *days)
	}
	req := tlsInit{dir: pos[0], names: splitList(*names), hosts: splitList(*hosts), days: *days, force: *force}
	if len(req.names) == 0 {
		return usageErr("-names lists no replica")
	}
	for i, n := range req.names {
		switch {
		case !validFileName(n):
			return usageErr("-names: %q is not a valid replica name; use letters, digits, '.', '_' and '-', starting with a letter or digit", n)
		case n == clientCertName || n == "ca":
			return usageErr("-names: %q would overwrite the %s certificate; name the replica otherwise", n, n)
		case slices.Contains(req.names[:i], n):
			return usageErr("-names: %q is listed twice", n)
		}
	}
	if err := req.run(stdout); err != nil {
		fmt.Fprintf(stderr, "epaxosd tls init: %v\n", err)
		return 1
	}
	return 0
}

// pemFile is one file to write.
type pemFile struct {
	name string
	data []byte
	mode os.FileMode
}

// run makes the CA and the certificates and writes them, or nothing if any
// file exists and overwriting was not asked for.
func (r tlsInit) run(stdout io.Writer) error {
	validFor := time.Duration(r.days) * 24 * time.Hour
	// A name of its own tells this CA from others in errors.
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	ca, err := tlsconfig.NewCA(fmt.Sprintf("epaxosd CA %x", id), validFor)
	if err != nil {
		return err
	}
	caKey, err := tlsconfig.KeyPEM(ca.Key)
	if err != nil {
		return err
	}
	files := []pemFile{{"ca.pem", tlsconfig.CertPEM(ca.Cert), 0o644}, {"ca-key.pem", caKey, 0o600}}
	issue := func(name string, hosts []string, usages ...x509.ExtKeyUsage) error {
		cert, key, err := ca.Issue(name, hosts, validFor, usages...)
		if err != nil {
			return err
		}
		keyPEM, err := tlsconfig.KeyPEM(key)
		if err != nil {
			return err
		}
		files = append(files, pemFile{name + ".pem", tlsconfig.CertPEM(cert), 0o644}, pemFile{name + "-key.pem", keyPEM, 0o600})
		return nil
	}
	replicaHosts := append(slices.Clone(tlsconfig.LocalHosts), r.hosts...)
	for _, n := range r.names {
		if err := issue(n, append([]string{n}, replicaHosts...), x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
			return err
		}
	}
	if err := issue(clientCertName, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}

	if !r.force {
		var existing []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(r.dir, f.name)); err == nil {
				existing = append(existing, f.name)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if len(existing) > 0 {
			return fmt.Errorf("%s already holds %s; nothing was written (use -force to overwrite)", r.dir, strings.Join(existing, ", "))
		}
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeNew(filepath.Join(r.dir, f.name), f.data, f.mode, r.force); err != nil {
			return err
		}
	}
	r.explain(stdout, replicaHosts)
	return nil
}

// writeNew writes data to path with exactly mode; it fails if path exists
// unless overwrite.
func writeNew(path string, data []byte, mode os.FileMode, overwrite bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	// The mode of an existing file, or one the umask narrowed, is set too.
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// explain prints what was written and how to use it.
func (r tlsInit) explain(w io.Writer, hosts []string) {
	p := func(name string) string { return filepath.Join(r.dir, name) }
	first, other := r.names[0], r.names[min(1, len(r.names)-1)]
	type row struct{ files, what string }
	rows := []row{{"ca.pem, ca-key.pem", "the CA; keep ca-key.pem secret, it signs certificates"}}
	for _, n := range r.names {
		rows = append(rows, row{n + ".pem, " + n + "-key.pem", "replica " + n})
	}
	rows = append(rows, row{clientCertName + ".pem, " + clientCertName + "-key.pem", "clients (epaxosd propose, the Go client)"})
	width := 0
	for _, r := range rows {
		width = max(width, len(r.files))
	}
	fmt.Fprintf(w, "==> Wrote a CA and certificates to %s, valid for %d days:\n", r.dir, r.days)
	for _, r := range rows {
		fmt.Fprintf(w, "    %-*s  %s\n", width, r.files, r.what)
	}
	fmt.Fprintf(w, "    Replica certificates are valid for their name and %s.\n", strings.Join(hosts, ", "))
	relative := ""
	if !filepath.IsAbs(r.dir) {
		relative = " (paths\nin it are relative to the configuration file's directory, and these assume\nthat it is the current one)"
	}
	fmt.Fprintf(w, `
To turn on mutual TLS, add this block to replica %s's configuration%s:

tls {
  ca_file   = %q
  cert_file = %q
  key_file  = %q
}

Every replica uses its own certificate. In a configuration file that the
replicas share, give each of the others its own through the environment:

  EPAXOS_NAME=%s EPAXOS_TLS_CERT_FILE=%s EPAXOS_TLS_KEY_FILE=%s epaxosd agent ...

Clients:

  epaxosd propose -ca %s -cert %s -key %s -addr HOST:PORT ...
`, first, relative, p("ca.pem"), p(first+".pem"), p(first+"-key.pem"),
		other, p(other+".pem"), p(other+"-key.pem"),
		p("ca.pem"), p(clientCertName+".pem"), p(clientCertName+"-key.pem"))
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// validFileName reports whether a replica name is safe as part of a file
// name: letters, digits, '.', '_' and '-', starting with a letter or digit
// (the names a configuration accepts).
func validFileName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		alnum := r < 128 && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		if !alnum && (i == 0 || !strings.ContainsRune("._-", r)) {
			return false
		}
	}
	return true
}
