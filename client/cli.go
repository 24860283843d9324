package client

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

const proposeUsage = "usage: epaxosd propose -addr HOST:PORT[,HOST:PORT...] -access read|write|delete [-timeout 10s] KEY [VALUE]"

// ProposeCommand runs the CLI command
//
//	epaxosd propose -addr HOST:PORT[,HOST:PORT...] -access read|write|delete [-timeout 10s] KEY [VALUE]
//
// with args (the arguments after "propose"). VALUE is required for write and
// not allowed for read and delete. It prints the state machine's reply on
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

	c, err := New(Config{Addrs: addrList})
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
		return fail(stderr, err)
	}
	if len(reply) > 0 {
		if _, err := stdout.Write(append(reply, '\n')); err != nil {
			return fail(stderr, fmt.Errorf("write reply: %w", err))
		}
	}
	return 0
}

// fail prints err as one line on stderr and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	msg := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(err.Error())
	fmt.Fprintf(stderr, "epaxosd propose: %s\n", msg)
	return 1
}
