package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// checkAddress returns an error unless addr is host:port with a non-empty
// host and a numeric port from 1 to 65535: an address that a replica can
// listen on and its peers and clients can dial.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return errors.New(ae.Err)
		}
		return err
	}
	if host == "" {
		return errors.New("the host is missing; peers need one to dial, as in 127.0.0.1:7001")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// addressKey returns a form of a valid address in which two spellings of the
// same host and port (differing in letter case or leading zeros) are equal.
func addressKey(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10)
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}
