package raftkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/client"
	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

func logOf(t *testing.T, index uint64, req *epaxospb.ProposeRequest) *raft.Log {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: b}
}

func TestFSMSemanticsAndDedupe(t *testing.T) {
	f := NewFSM()
	apply := func(id, seq uint64, access epaxospb.Access, key, value string) Result {
		return f.Apply(logOf(t, 1, &epaxospb.ProposeRequest{ClientId: id, Seq: seq, Access: access, Key: []byte(key), Value: []byte(value)})).(Result)
	}
	W, R, D := epaxospb.Access_WRITE, epaxospb.Access_READ, epaxospb.Access_DELETE
	if r := apply(1, 1, R, "k", ""); len(r.Value) != 0 || r.Err != "" || r.Stale {
		t.Fatalf("read of an absent key: %+v", r)
	}
	apply(1, 2, W, "k", "a")
	apply(2, 1, W, "k", "b")
	// A retry of client 1's applied request is answered, not applied again.
	if r := apply(1, 2, W, "k", "a"); r.Stale || r.Err != "" {
		t.Fatalf("retry: %+v", r)
	}
	if r := apply(3, 1, R, "k", ""); string(r.Value) != "b" {
		t.Fatalf("after a retried write: read %q, want %q (the retry was applied again)", r.Value, "b")
	}
	// An older request is stale.
	if r := apply(1, 1, W, "k", "z"); !r.Stale {
		t.Fatalf("older request: %+v, want stale", r)
	}
	// The retry of a read returns the first answer.
	apply(2, 2, W, "k", "c")
	if r := apply(3, 1, R, "k", ""); string(r.Value) != "b" {
		t.Fatalf("retried read: %q, want the first answer %q", r.Value, "b")
	}
	apply(3, 2, D, "k", "")
	if v, ok := f.Get("k"); ok {
		t.Fatalf("deleted key still holds %q", v)
	}
	// Client id 0: no session, applied every time.
	apply(0, 0, W, "n", "x")
	apply(0, 0, W, "n", "y")
	if v, _ := f.Get("n"); string(v) != "y" {
		t.Fatalf("client 0: %q", v)
	}

	// Snapshot and restore keep data and sessions.
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Get("n"); string(v) != "y" {
		t.Fatalf("restored n = %q", v)
	}
	r := g.Apply(logOf(t, 9, &epaxospb.ProposeRequest{ClientId: 2, Seq: 1, Access: W, Key: []byte("n"), Value: []byte("old")})).(Result)
	if !r.Stale {
		t.Fatalf("restored sessions lost: %+v", r)
	}
}

type memSink struct {
	buf bytes.Buffer
}

func (s *memSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *memSink) Close() error                { return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { return nil }

func TestParsePeers(t *testing.T) {
	ps, err := ParsePeers("a=h:1/h:2, b=h:3/h:4")
	if err != nil || len(ps) != 2 || ps[1] != (Peer{ID: "b", RaftAddr: "h:3", ClientAddr: "h:4"}) {
		t.Fatalf("ParsePeers: %+v, %v", ps, err)
	}
	for _, bad := range []string{"", "a=h:1", "a=h:1/", "=h:1/h:2", "a=h:1/h:2,a=h:3/h:4"} {
		if _, err := ParsePeers(bad); err == nil {
			t.Errorf("ParsePeers(%q) accepted", bad)
		}
	}
}

// cluster is three in-process nodes on loopback.
type cluster struct {
	t     *testing.T
	peers []Peer
	dirs  []string
	store string
	nodes []*Node
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func fastRaft(c *raft.Config) {
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
}

func newCluster(t *testing.T, store string) *cluster {
	c := &cluster{t: t, store: store}
	var rls, cls []net.Listener
	for i := range 3 {
		rl, cl := listen(t), listen(t)
		rls, cls = append(rls, rl), append(cls, cl)
		c.peers = append(c.peers, Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: rl.Addr().String(), ClientAddr: cl.Addr().String()})
		c.dirs = append(c.dirs, t.TempDir())
	}
	c.start(rls, cls)
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) start(rls, cls []net.Listener) {
	c.t.Helper()
	c.nodes = nil
	for i, p := range c.peers {
		n, err := Start(Config{
			ID: p.ID, Peers: c.peers, RaftListener: rls[i], ClientListener: cls[i],
			DataDir: c.dirs[i], Store: c.store, Bootstrap: i == 0, Tune: fastRaft,
		})
		if err != nil {
			c.t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
}

func (c *cluster) stop() {
	for _, n := range c.nodes {
		if err := n.Close(); err != nil {
			c.t.Errorf("close %s: %v", n.self.ID, err)
		}
	}
	c.nodes = nil
}

// restart stops every node and starts them again on the same addresses
// and data directories.
func (c *cluster) restart() {
	c.t.Helper()
	c.stop()
	var rls, cls []net.Listener
	for _, p := range c.peers {
		rl, err := net.Listen("tcp", p.RaftAddr)
		if err != nil {
			c.t.Fatal(err)
		}
		cl, err := net.Listen("tcp", p.ClientAddr)
		if err != nil {
			c.t.Fatal(err)
		}
		rls, cls = append(rls, rl), append(cls, cl)
	}
	c.start(rls, cls)
}

func (c *cluster) addrs() []string {
	var a []string
	for _, p := range c.peers {
		a = append(a, p.ClientAddr)
	}
	return a
}

func newClient(t *testing.T, addrs ...string) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{Addrs: addrs, AttemptTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestClusterThroughEveryNode(t *testing.T) {
	for _, store := range []string{"bolt", "mem"} {
		t.Run(store, func(t *testing.T) {
			c := newCluster(t, store)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			all := newClient(t, c.addrs()...)
			// The first write waits, through the client's failover and
			// backoff, until a leader is elected.
			if _, err := all.Propose(ctx, client.Write, "first", []byte("1")); err != nil {
				t.Fatal(err)
			}
			leaders := 0
			for _, n := range c.nodes {
				if n.IsLeader() {
					leaders++
				}
			}
			if leaders > 1 {
				t.Fatalf("%d leaders", leaders)
			}
			// Each node, leader or follower, takes writes and reads alone: a
			// follower forwards to the leader.
			for i, addr := range c.addrs() {
				ci := newClient(t, addr)
				key, val := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
				if _, err := ci.Propose(ctx, client.Write, key, []byte(val)); err != nil {
					t.Fatalf("write through %s: %v", c.peers[i].ID, err)
				}
				next := newClient(t, c.addrs()[(i+1)%3])
				got, err := next.Propose(ctx, client.Read, key, nil)
				if err != nil {
					t.Fatalf("read through %s: %v", c.peers[(i+1)%3].ID, err)
				}
				if string(got) != val {
					t.Fatalf("read %s through %s = %q, want %q", key, c.peers[(i+1)%3].ID, got, val)
				}
			}
			if _, err := newClient(t, c.addrs()[2]).Propose(ctx, client.Delete, "k0", nil); err != nil {
				t.Fatal(err)
			}
			if got, err := newClient(t, c.addrs()[0]).Propose(ctx, client.Read, "k0", nil); err != nil || len(got) != 0 {
				t.Fatalf("read of a deleted key: %q, %v", got, err)
			}
			if store == "bolt" {
				// The log is durable: a restarted cluster still has it.
				c.restart()
				got, err := newClient(t, c.addrs()...).Propose(ctx, client.Read, "k1", nil)
				if err != nil || string(got) != "v1" {
					t.Fatalf("after restart: read k1 = %q, %v; want v1", got, err)
				}
			}
		})
	}
}

// TestRetriesAreDeduplicated sends requests with fixed (client_id, seq)
// through every node, as the Go client's retries do.
func TestRetriesAreDeduplicated(t *testing.T) {
	c := newCluster(t, "mem")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stubs []epaxospb.ClientClient
	for _, a := range c.addrs() {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stubs = append(stubs, epaxospb.NewClientClient(conn))
	}
	// send tries every node in turn until one answers other than
	// Unavailable (no leader yet, or one being elected), backing off.
	send := func(req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
		for attempt := 0; ; attempt++ {
			resp, err := stubs[attempt%3].Propose(ctx, req)
			if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
				return resp, err
			}
			select {
			case <-time.After(min(time.Duration(attempt+1)*10*time.Millisecond, 200*time.Millisecond)):
			case <-ctx.Done():
			}
		}
	}
	W, R := epaxospb.Access_WRITE, epaxospb.Access_READ
	req := func(id, seq uint64, access epaxospb.Access, value string) *epaxospb.ProposeRequest {
		return &epaxospb.ProposeRequest{ClientId: id, Seq: seq, Access: access, Key: []byte("k"), Value: []byte(value)}
	}
	mustSend := func(r *epaxospb.ProposeRequest) *epaxospb.ProposeResponse {
		t.Helper()
		resp, err := send(r)
		if err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		return resp
	}
	mustSend(req(77, 1, W, "a"))
	mustSend(req(78, 1, W, "b"))
	// The retry of client 77's write is answered and not applied again.
	for i := range 3 {
		if _, err := stubs[i].Propose(ctx, req(77, 1, W, "a")); err != nil && status.Code(err) != codes.Unavailable {
			t.Fatalf("retry through node %d: %v", i, err)
		}
	}
	if got := mustSend(req(79, 1, R, "")).GetValue(); string(got) != "b" {
		t.Fatalf("read %q after retries of an older write, want %q", got, "b")
	}
	// A request older than the client's last one is refused.
	mustSend(req(77, 2, W, "c"))
	if _, err := send(req(77, 1, W, "a")); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stale request: %v, want FailedPrecondition", err)
	}
	// Invalid requests are refused like epaxosd refuses them.
	if _, err := send(&epaxospb.ProposeRequest{ClientId: 1, Seq: 1, Access: R, Key: []byte("k"), Value: []byte("x")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("read with a value: %v, want InvalidArgument", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
