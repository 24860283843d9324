package raftkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// echoServer echoes every byte of every connection it accepts, at once.
func echoServer(t *testing.T) string {
	t.Helper()
	l := listen(t)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

func dialDelayed(t *testing.T, addr string, d time.Duration) *delayConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	dc := newDelayConn(c, d)
	t.Cleanup(func() { dc.Close() })
	return dc
}

func TestDelayConnDelaysBothWaysInOrder(t *testing.T) {
	const d = 40 * time.Millisecond
	c := dialDelayed(t, echoServer(t), d)

	// A round trip takes at least twice the delay.
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip took %v, less than twice the delay %v", rtt, d)
	}

	// Many writes come back whole and in order.
	var want bytes.Buffer
	go func() {
		for i := range 500 {
			line := fmt.Sprintf("line %d\n", i)
			if _, err := c.Write([]byte(line)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 500 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("echoed bytes differ from those written")
	}
}

func TestDelayConnDeadlinesAndClose(t *testing.T) {
	c := dialDelayed(t, echoServer(t), 10*time.Millisecond)
	buf := make([]byte, 8)

	// Nothing to read: the read deadline ends the wait with a timeout.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline: %v, want a timeout", err)
	}
	// A deadline in the past fails at once; clearing it lets Read wait.
	c.SetDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write([]byte("x")); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write past the deadline: %v, want a timeout", err)
	}
	c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(c, buf[:5]); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("after clearing the deadline: %q, %v", buf[:n], err)
	}
	// An extended deadline does not fire at its earlier time.
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	c.SetReadDeadline(time.Now().Add(time.Hour))
	if _, err := c.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(c, buf[:4]); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("after extending the deadline: %q, %v", buf[:n], err)
	}

	// Close ends a blocked Read.
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(buf)
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a blocked Read")
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

func TestDelayConnEOFIsDelayed(t *testing.T) {
	const d = 30 * time.Millisecond
	l := listen(t)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("bye"))
			c.Close()
		}
	}()
	c := dialDelayed(t, l.Addr().String(), d)
	start := time.Now()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("the peer's bytes and end arrived after %v, before the delay %v", el, d)
	}
}

func TestParseDelays(t *testing.T) {
	got, err := ParseDelays(" n2=30ms, n3 = 35.5ms,")
	want := map[string]time.Duration{"n2": 30 * time.Millisecond, "n3": 35500 * time.Microsecond}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseDelays = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"n2", "=1ms", "n2=fast", "n2=-1ms", "n2=1ms,n2=2ms"} {
		if _, err := ParseDelays(bad); err == nil {
			t.Errorf("ParseDelays(%q) accepted", bad)
		}
	}
}

// TestDelayedClusterLatency runs three nodes a one-way delay d apart, with
// n1 bootstrapped and waited for as the leader. A write through the leader
// needs a round trip to a follower; one through a follower is forwarded to
// the leader and back as well.
func TestDelayedClusterLatency(t *testing.T) {
	const d = 25 * time.Millisecond
	var peers []Peer
	var rls, cls []net.Listener
	for i := range 3 {
		rl, cl := listen(t), listen(t)
		rls, cls = append(rls, rl), append(cls, cl)
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: rl.Addr().String(), ClientAddr: cl.Addr().String()})
	}
	var nodes []*Node
	for i, p := range peers {
		delay := map[string]time.Duration{}
		for _, q := range peers {
			delay[q.ID] = d // its own entry is ignored
		}
		n, err := Start(Config{ID: p.ID, Peers: peers, RaftListener: rls[i], ClientListener: cls[i],
			DataDir: t.TempDir(), Store: "mem", Bootstrap: i == 0, Delay: delay, Tune: fastRaft})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		t.Cleanup(func() { n.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := nodes[0].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i, least := range []time.Duration{2 * d, 4 * d, 4 * d} {
		cl := newClient(t, peers[i].ClientAddr)
		for k := range 3 {
			start := time.Now()
			if _, err := cl.Propose(ctx, client.Write, fmt.Sprintf("k%d", k), []byte("v")); err != nil {
				t.Fatalf("write through %s: %v", peers[i].ID, err)
			}
			if el := time.Since(start); el < least {
				t.Errorf("a write through %s took %v, less than the %v its round trips need", peers[i].ID, el, least)
			}
		}
	}
	if !nodes[0].IsLeader() {
		t.Error("n1 lost the leadership")
	}
}

func TestStartRejectsDelayToUnknownPeer(t *testing.T) {
	rl, cl := listen(t), listen(t)
	peers := []Peer{{ID: "n1", RaftAddr: rl.Addr().String(), ClientAddr: cl.Addr().String()}}
	_, err := Start(Config{ID: "n1", Peers: peers, RaftListener: rl, ClientListener: cl, DataDir: t.TempDir(),
		Store: "mem", Delay: map[string]time.Duration{"n9": time.Millisecond}})
	if err == nil || !strings.Contains(err.Error(), `"n9"`) {
		t.Fatalf("Start with a delay to an unknown peer: %v", err)
	}
}
