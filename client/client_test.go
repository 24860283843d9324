package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

type reqID struct{ clientID, seq uint64 }

// cluster is the state the fake replicas share: a key-value store with the
// daemon's exactly-once table, and checks of the client's session contract.
type cluster struct {
	mu       sync.Mutex
	kv       map[string][]byte
	last     map[uint64]reqID                    // last applied request per client id
	results  map[reqID]*epaxospb.ProposeResponse // its result
	inflight map[uint64]bool                     // client ids with a request being served
	applied  int
	errs     []string
}

func newCluster() *cluster {
	return &cluster{
		kv:       map[string][]byte{},
		last:     map[uint64]reqID{},
		results:  map[reqID]*epaxospb.ProposeResponse{},
		inflight: map[uint64]bool{},
	}
}

func (c *cluster) errorf(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Sprintf(format, a...))
}

func (c *cluster) appliedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

func (c *cluster) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
}

// begin records that req is being served and checks that its client id has
// no other request in flight and that its seq does not go backwards.
func (c *cluster) begin(req *epaxospb.ProposeRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[req.ClientId] {
		c.errs = append(c.errs, fmt.Sprintf("client %x has two requests in flight (seq %d)", req.ClientId, req.Seq))
	}
	c.inflight[req.ClientId] = true
	if last, ok := c.last[req.ClientId]; ok && req.Seq < last.seq {
		c.errs = append(c.errs, fmt.Sprintf("client %x: seq %d after %d", req.ClientId, req.Seq, last.seq))
	}
}

func (c *cluster) end(req *epaxospb.ProposeRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, req.ClientId)
}

// apply executes req exactly once, like the daemon's state machine.
func (c *cluster) apply(req *epaxospb.ProposeRequest) *epaxospb.ProposeResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := reqID{req.ClientId, req.Seq}
	if last, ok := c.last[req.ClientId]; ok && req.Seq <= last.seq {
		if req.Seq == last.seq {
			return c.results[id]
		}
		return &epaxospb.ProposeResponse{Error: "stale seq"}
	}
	c.applied++
	resp := &epaxospb.ProposeResponse{}
	key := string(req.Key)
	switch req.Access {
	case epaxospb.Access_WRITE:
		if string(req.Value) == "fail" {
			resp.Error = "value refused by state machine"
		} else {
			c.kv[key] = req.Value
		}
	case epaxospb.Access_READ:
		v, ok := c.kv[key]
		if !ok {
			resp.Error = fmt.Sprintf("key %q not found", key)
		}
		resp.Value = v
	case epaxospb.Access_DELETE:
		delete(c.kv, key)
	}
	delete(c.results, c.last[req.ClientId])
	c.last[req.ClientId] = id
	c.results[id] = resp
	return resp
}

// replica is one fake replica. behave, if set, replaces normal service.
type replica struct {
	epaxospb.UnimplementedClientServer
	cl     *cluster
	addr   string
	behave func(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error)

	mu   sync.Mutex
	seen []reqID
}

func (r *replica) Propose(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	r.mu.Lock()
	r.seen = append(r.seen, reqID{req.ClientId, req.Seq})
	r.mu.Unlock()
	r.cl.begin(req)
	defer r.cl.end(req)
	if r.behave != nil {
		return r.behave(ctx, req)
	}
	return r.cl.apply(req), nil
}

func (r *replica) requests() []reqID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]reqID(nil), r.seen...)
}

func startReplica(t *testing.T, cl *cluster, behave func(context.Context, *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error)) *replica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{cl: cl, addr: lis.Addr().String(), behave: behave}
	srv := grpc.NewServer()
	epaxospb.RegisterClientServer(srv, r)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func unavailable(context.Context, *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	return nil, status.Error(codes.Unavailable, "replica is not ready")
}

func TestFailoverKeepsClientIDAndSeq(t *testing.T) {
	cl := newCluster()
	down := startReplica(t, cl, unavailable)
	live := startReplica(t, cl, nil)
	c := newClient(t, Config{Addrs: []string{deadAddr(t), down.addr, live.addr}})
	ctx := testCtx(t)

	if _, err := c.Propose(ctx, Write, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	d, l := down.requests(), live.requests()
	if len(d) != 1 || len(l) != 1 || d[0] != l[0] || l[0].seq != 1 {
		t.Fatalf("unavailable replica saw %v, live one saw %v; want the same single (client id, seq 1)", d, l)
	}
	// The next request starts at the replica that answered, with the next seq
	// of the same session.
	v, err := c.Propose(ctx, Read, "k", nil)
	if err != nil || string(v) != "v1" {
		t.Fatalf("read: %q, %v", v, err)
	}
	if d2, l2 := down.requests(), live.requests(); len(d2) != 1 || len(l2) != 2 || l2[1] != (reqID{l[0].clientID, 2}) {
		t.Fatalf("second request: unavailable replica saw %v, live one %v", d2, l2)
	}
	cl.check(t)
}

func TestAttemptTimeoutFailsOverWithSameSeq(t *testing.T) {
	cl := newCluster()
	stuck := startReplica(t, cl, func(ctx context.Context, _ *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	})
	live := startReplica(t, cl, nil)
	c := newClient(t, Config{Addrs: []string{stuck.addr, live.addr}, AttemptTimeout: 100 * time.Millisecond})
	if _, err := c.Propose(testCtx(t), Write, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s, l := stuck.requests(), live.requests()
	if len(s) != 1 || len(l) != 1 || s[0] != l[0] {
		t.Fatalf("stuck replica saw %v, live one %v; want the same request", s, l)
	}
	if cl.appliedCount() != 1 {
		t.Fatalf("applied %d times", cl.appliedCount())
	}
}

func TestRetryOfAppliedRequestIsNotReapplied(t *testing.T) {
	cl := newCluster()
	// The first replica applies the command but its answer is lost.
	lossy := startReplica(t, cl, func(_ context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
		cl.apply(req)
		return nil, status.Error(codes.Unavailable, "connection lost after apply")
	})
	live := startReplica(t, cl, nil)
	c := newClient(t, Config{Addrs: []string{lossy.addr, live.addr}})
	if _, err := c.Propose(testCtx(t), Write, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if cl.appliedCount() != 1 {
		t.Fatalf("applied %d times, want once", cl.appliedCount())
	}
}

func TestConcurrentProposeUsesDistinctSessions(t *testing.T) {
	cl := newCluster()
	r := startReplica(t, cl, func(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
		// Hold the request a moment so that requests overlap.
		time.Sleep(time.Duration(req.Seq%3) * time.Millisecond)
		return cl.apply(req), nil
	})
	c := newClient(t, Config{Addrs: []string{r.addr}})
	ctx := testCtx(t)
	const goroutines, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("k%d-%d", g, i)
				if _, err := c.Propose(ctx, Write, key, []byte("v")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cl.check(t)
	// Seqs strictly increase per client id in the order the server saw them.
	last := map[uint64]uint64{}
	for _, id := range r.requests() {
		if id.seq <= last[id.clientID] {
			t.Fatalf("client %x: seq %d after %d", id.clientID, id.seq, last[id.clientID])
		}
		last[id.clientID] = id.seq
	}
	if len(last) > goroutines {
		t.Errorf("%d sessions for %d goroutines", len(last), goroutines)
	}
	if cl.appliedCount() != goroutines*each {
		t.Errorf("applied %d, want %d", cl.applied, goroutines*each)
	}
}

func TestReplyError(t *testing.T) {
	cl := newCluster()
	r := startReplica(t, cl, nil)
	c := newClient(t, Config{Addrs: []string{r.addr}})
	v, err := c.Propose(testCtx(t), Write, "k", []byte("fail"))
	var re *ReplyError
	if !errors.As(err, &re) || re.Message != "value refused by state machine" || v != nil {
		t.Fatalf("got %q, %v; want a *ReplyError", v, err)
	}
	if cl.appliedCount() != 1 {
		t.Fatalf("applied %d, want 1: an error reply is still applied", cl.appliedCount())
	}
}

func TestContextDeadlineRespected(t *testing.T) {
	cl := newCluster()
	down := startReplica(t, cl, unavailable)
	hang := startReplica(t, cl, func(ctx context.Context, _ *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	for name, addrs := range map[string][]string{
		"unavailable": {deadAddr(t), down.addr},
		"hanging":     {hang.addr},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, Config{Addrs: addrs})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Propose(ctx, Write, "k", []byte("v"))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want an error wrapping context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("returned %v after a 300ms deadline", d)
			}
		})
	}
}

func TestNonRetryableErrorReturnedAtOnce(t *testing.T) {
	cl := newCluster()
	bad := startReplica(t, cl, func(context.Context, *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
		return nil, status.Error(codes.InvalidArgument, "key too long")
	})
	live := startReplica(t, cl, nil)
	c := newClient(t, Config{Addrs: []string{bad.addr, live.addr}})
	_, err := c.Propose(testCtx(t), Write, "k", []byte("v"))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), bad.addr) {
		t.Fatalf("got %v, want InvalidArgument naming %s", err, bad.addr)
	}
	if n := len(live.requests()); n != 0 {
		t.Fatalf("failed over to the live replica (%d requests)", n)
	}
}

func TestNewAndClose(t *testing.T) {
	if _, err := New(Config{Addrs: []string{" ", ""}}); err == nil {
		t.Fatal("New accepted no address")
	}
	c, err := New(Config{Addrs: []string{deadAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Propose(context.Background(), Access(0), "k", nil); err == nil {
		t.Fatal("accepted an invalid access")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Propose(context.Background(), Read, "k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestParseAccess(t *testing.T) {
	for _, a := range []Access{Read, Write, Delete} {
		got, err := ParseAccess(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAccess(%q) = %v, %v", a.String(), got, err)
		}
	}
	if _, err := ParseAccess("READ"); err == nil {
		t.Error("ParseAccess accepted READ")
	}
}
