package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

func TestServesEveryAddressUntilStopped(t *testing.T) {
	stop := make(chan os.Signal, 1)
	ready := make(chan []string, 1)
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { done <- run([]string{"-client", "127.0.0.1:0,127.0.0.1:0"}, &stderr, stop, ready) }()
	var addrs []string
	select {
	case addrs = <-ready:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, stderr.String())
	}
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want 2 addresses", addrs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One store behind both addresses.
	a, err := client.New(client.Config{Addrs: addrs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := client.New(client.Config{Addrs: addrs[1:]})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Propose(ctx, client.Write, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Propose(ctx, client.Read, "k", nil); err != nil || string(got) != "v" {
		t.Fatalf("read through the other address: %q, %v", got, err)
	}
	stop <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-client", " , "}, {"extra"}, {"-nope"}} {
		var stderr bytes.Buffer
		if code := run(args, &stderr, nil, nil); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, strings.TrimSpace(stderr.String()))
		}
	}
}
