package client

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const proposeUsage = "usage: epaxosd propose -addr HOST:PORT[,HOST:PORT...] -access read|write|delete [-timeout 10s] [-ca FILE -cert FILE -key FILE [-server-name NAME]] KEY [VALUE]"

// Environment variables that stand in for the CLI's TLS flags.
const (
	EnvCAFile   = "EPAXOS_CA_FILE"
	EnvCertFile = "EPAXOS_CERT_FILE"
	EnvKeyFile  = "EPAXOS_KEY_FILE"
)

// getenv reads the environment; tests replace it.
var getenv = os.Getenv

// ProposeCommand runs the CLI command
//
//	epaxosd propose -addr HOST:PORT[,HOST:PORT...] -access read|write|delete [-timeout 10s]
//	        [-ca FILE -cert FILE -key FILE [-server-name NAME]] KEY [VALUE]
//
// with args (the arguments after "propose"). VALUE is required for write and
// not allowed for read and delete. With -ca, -cert and -key (all three, or
// none; each defaults to $EPAXOS_CA_FILE, $EPAXOS_CERT_FILE or
// $EPAXOS_KEY_FILE) it connects with mutual TLS, as replicas with a tls block
// require; without them, in plain text. It prints the state machine's reply on
// stdout, followed by a newline, if the reply is not empty, and returns 0. On
// a usage error it prints the reason and the usage on stderr and returns 2;
// on any other error (including the state machine's error reply) it prints
// one line "epaxosd propose: REASON" on stderr and returns 1.
func ProposeCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("epaxosd propose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addrs := fs.String("addr", "", "comma-separated client addresses of the replicas (host:port)")
	accessName := fs.String("access", "", "how the command touches KEY: read, write or delete")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long, failing over between replicas meanwhile (0: never)")
	caFile := fs.String("ca", "", "mutual TLS: PEM certificate of the CA that signed the replicas' certificates (default $"+EnvCAFile+")")
	certFile := fs.String("cert", "", "mutual TLS: this client's PEM certificate, signed by that CA (default $"+EnvCertFile+")")
	keyFile := fs.String("key", "", "mutual TLS: the PEM private key of -cert (default $"+EnvKeyFile+")")
	serverName := fs.String("server-name", "", "mutual TLS: check the replicas' certificates against this name instead of each address's host")
	fs.Usage = func() {
		fmt.Fprintln(stderr, proposeUsage)
		fs.PrintDefaults()
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "epaxosd propose: "+format+"\n", a...)
		fmt.Fprintln(stderr, proposeUsage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has printed the error and the usage
	}
	var addrList []string
	for _, a := range strings.Split(*addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrList = append(addrList, a)
		}
	}
	if len(addrList) == 0 {
		return usageErr("-addr is required")
	}
	if *accessName == "" {
		return usageErr("-access is required")
	}
	access, err := ParseAccess(*accessName)
	if err != nil {
		return usageErr("-access: %v", err)
	}
	if *timeout < 0 {
		return usageErr("-timeout must not be negative")
	}
	rest := fs.Args()
	var key string
	var value []byte
	switch {
	case len(rest) == 0:
		return usageErr("KEY is required")
	case len(rest) > 2:
		return usageErr("too many arguments: %q", rest[2:])
	case access == Write && len(rest) < 2:
		return usageErr("VALUE is required for write")
	case access != Write && len(rest) == 2:
		return usageErr("VALUE is not allowed for %s", access)
	}
	key = rest[0]
	if len(rest) == 2 {
		value = []byte(rest[1])
	}
	if err := ResolveTLSFlags(caFile, certFile, keyFile, *serverName, getenv); err != nil {
		return usageErr("%v", err)
	}

	cfg := Config{Addrs: addrList}
	if cfg.TLS, err = LoadTLSFlags(*caFile, *certFile, *keyFile, *serverName); err != nil {
		return fail(stderr, err)
	}
	c, err := New(cfg)
	if err != nil {
		return fail(stderr, err)
	}
	defer c.Close()
	ctx := context.Background()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	reply, err := c.Propose(ctx, access, key, value)
	if err != nil {
		if cfg.TLS == nil {
			err = plainTextHint(err)
		}
		return fail(stderr, err)
	}
	if len(reply) > 0 {
		if _, err := stdout.Write(append(reply, '\n')); err != nil {
			return fail(stderr, fmt.Errorf("write reply: %w", err))
		}
	}
	return 0
}

// plainTextHint adds a hint to the error of a plain-text request if the
// replica hung up before speaking HTTP/2, as one with a tls block does.
func plainTextHint(err error) error {
	if !strings.Contains(err.Error(), "server preface: EOF") {
		return err
	}
	return fmt.Errorf("%w; a replica with a tls block refuses plain-text clients: pass -ca, -cert and -key", err)
}

// fail prints err as one line on stderr and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	msg := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(err.Error())
	fmt.Fprintf(stderr, "epaxosd propose: %s\n", msg)
	return 1
}
