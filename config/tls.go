package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/epaxosd/epaxosd/tlsconfig"
)

// tlsFile is one of the file attributes of the tls block.
type tlsFile struct {
	attr string
	env  string
	what string // for "needs ..."
	path func(t *TLS) *string
	o    func(s *sources) *origin
}

var tlsFiles = []tlsFile{
	{"ca_file", EnvTLSCAFile, "the PEM certificate of the CA that signs every replica's and client's certificate",
		func(t *TLS) *string { return &t.CAFile }, func(s *sources) *origin { return &s.tls.caFile }},
	{"cert_file", EnvTLSCertFile, "this replica's PEM certificate, signed by that CA",
		func(t *TLS) *string { return &t.CertFile }, func(s *sources) *origin { return &s.tls.certFile }},
	{"key_file", EnvTLSKeyFile, "the PEM private key of cert_file",
		func(t *TLS) *string { return &t.KeyFile }, func(s *sources) *origin { return &s.tls.keyFile }},
}

// tls decodes the file's tls block, if any, making its paths relative to
// the file's directory.
func (d *decoder) tls(blocks []blockSchema, s *sources) *TLS {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		d.diags = append(d.diags, errorf(b.DefRange.Ptr(), "Duplicate tls block",
			"Only one tls block is allowed; the first is at %s.", pos(&blocks[0].DefRange)))
	}
	b := blocks[0]
	t := &TLS{}
	s.tls.block = b.DefRange.Ptr()
	for _, f := range tlsFiles {
		v, o, ok := d.string(b.Attrs[f.attr])
		if !ok {
			o = origin{subject: s.tls.block, reported: true}
			d.diags = append(d.diags, errorf(s.tls.block, "Missing "+f.attr,
				"The tls block needs %s, %s.", f.attr, f.what))
		}
		if v != "" && !filepath.IsAbs(v) {
			v = filepath.Join(s.baseDir, v)
		}
		*f.path(t), *f.o(s) = v, o
	}
	if v, o, ok := d.string(b.Attrs["server_name"]); ok {
		t.ServerName, s.tls.srvName = v, o
	}
	return t
}

// setTLSFile overrides one file of the tls block from the environment.
func setTLSFile(f tlsFile) func(c *Config, s *sources, o origin, v string) error {
	return func(c *Config, s *sources, o origin, v string) error {
		if c.TLS == nil {
			return errors.New("the file has no tls block for it to override; TLS is turned on by a tls block in the file")
		}
		*f.path(c.TLS), *f.o(s) = v, o
		return nil
	}
}

// checkTLS checks that the tls block's files exist and fit together, and
// that this replica's certificate is one its peers accept when they dial
// its address.
func (c *Config) checkTLS(src *sources) hcl.Diagnostics {
	t := c.TLS
	if t == nil {
		return nil
	}
	var diags hcl.Diagnostics
	complete := true
	for _, f := range tlsFiles {
		o := *f.o(src)
		switch {
		case o.reported:
			complete = false
		case *f.path(t) == "":
			complete = false
			diags = append(diags, o.errorf("Invalid "+f.attr, "The path must not be empty; %s names %s.", f.attr, f.what))
		}
	}
	if !complete {
		return diags
	}
	b, err := tlsconfig.Load(t.CAFile, t.CertFile, t.KeyFile)
	if err != nil {
		var fe *tlsconfig.FileError
		if !errors.As(err, &fe) {
			return append(diags, errorf(src.tls.block, "Invalid tls block", "%s.", err))
		}
		f := tlsFiles[0]
		switch fe.Part {
		case tlsconfig.PartCert:
			f = tlsFiles[1]
		case tlsconfig.PartKey:
			f = tlsFiles[2]
		}
		return append(diags, f.o(src).errorf("Invalid "+f.attr, "%s: %s.", fe.File, strings.TrimSuffix(fe.Err.Error(), ".")))
	}
	certOrigin := src.tls.certFile
	if err := b.CheckUsage(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		diags = append(diags, certOrigin.errorf("Invalid cert_file",
			"%s: %s; a replica serves peers and clients with its certificate and dials its peers with it.", t.CertFile, err))
	}
	return append(diags, c.checkCertHost(b.Cert.Leaf, src)...)
}

// checkCertHost checks that peers dialing this replica accept its
// certificate: it must be valid for ServerName, if set, or else for the host
// of the replica's address.
func (c *Config) checkCertHost(leaf *x509.Certificate, src *sources) hcl.Diagnostics {
	t := c.TLS
	name, why := t.ServerName, "the server_name peers check it against"
	o := src.tls.certFile
	if name == "" {
		self := c.Self()
		host, _, err := net.SplitHostPort(self.Address)
		if self.Name == "" || err != nil || host == "" {
			return nil // reported elsewhere
		}
		name, why = host, fmt.Sprintf("the host of replica %q's address, which its peers dial", self.Name)
	} else if src.tls.srvName.reported {
		return nil
	}
	if err := leaf.VerifyHostname(name); err == nil {
		return nil
	}
	valid := "no host"
	if names := tlsconfig.Names(leaf); len(names) > 0 {
		valid = list(names, "and")
	}
	fix := fmt.Sprintf("issue one valid for it, e.g. with epaxosd tls init -hosts %s", name)
	if t.ServerName != "" {
		fix = "set server_name to a name every replica's certificate is valid for"
	}
	return hcl.Diagnostics{o.errorf("Invalid cert_file",
		"%s is not valid for %s, %s; it is valid for %s. Peers would refuse it: %s.",
		t.CertFile, name, why, valid, fix)}
}
