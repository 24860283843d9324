package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// streamReplica is a fake replica that also serves ProposeBatches,
// answering each request (through the unary handler's logic) as it
// completes. If breakOnFirst is set, its first stream fails as soon as it
// has read a request, without answering: a replica dying mid-request.
type streamReplica struct {
	*replica
	breakOnFirst bool
	streams      atomic.Int32
}

func (r *streamReplica) ProposeBatches(st epaxospb.Client_ProposeBatchesServer) error {
	n := r.streams.Add(1)
	var sendMu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		for _, req := range m.Requests {
			if r.breakOnFirst && n == 1 {
				r.mu.Lock()
				r.seen = append(r.seen, reqID{req.ClientId, req.Seq})
				r.mu.Unlock()
				return status.Error(codes.Unavailable, "replica crashed")
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := r.Propose(st.Context(), req)
				if err != nil {
					s := status.Convert(err)
					resp = &epaxospb.ProposeResponse{Code: uint32(s.Code()), Message: s.Message()}
				}
				out := &epaxospb.ProposeResponse{ClientId: req.ClientId, Seq: req.Seq, Value: resp.Value, Error: resp.Error, Code: resp.Code, Message: resp.Message}
				sendMu.Lock()
				defer sendMu.Unlock()
				st.Send(&epaxospb.ProposeResponses{Responses: []*epaxospb.ProposeResponse{out}})
			}()
		}
	}
}

func startStreamReplica(t *testing.T, cl *cluster, breakOnFirst bool) *streamReplica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &streamReplica{replica: &replica{cl: cl, addr: lis.Addr().String()}, breakOnFirst: breakOnFirst}
	srv := grpc.NewServer()
	epaxospb.RegisterClientServer(srv, r)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r
}

// waitReady connects the client to replica i and waits until it is ready,
// so that the next request goes on a stream.
func waitReady(t *testing.T, c *Client, i int) {
	t.Helper()
	ctx := testCtx(t)
	c.conns[i].Connect()
	for s := c.conns[i].GetState(); s != connectivity.Ready; s = c.conns[i].GetState() {
		if !c.conns[i].WaitForStateChange(ctx, s) {
			t.Fatalf("replica %d never became ready", i)
		}
	}
}

// Concurrent Proposes to a replica share one ProposeBatches stream, and every
// answer reaches the request it belongs to.
func TestStream_ConcurrentProposalsShareOneStream(t *testing.T) {
	cl := newCluster()
	r := startStreamReplica(t, cl, false)
	c := newClient(t, Config{Addrs: []string{r.addr}})
	waitReady(t, c, 0)
	const workers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key, val := fmt.Sprintf("k%d-%d", w, i), fmt.Sprintf("v%d-%d", w, i)
				if _, err := c.Propose(testCtx(t), Write, key, []byte(val)); err != nil {
					errs <- err
					return
				}
				got, err := c.Propose(testCtx(t), Read, key, nil)
				if err != nil || string(got) != val {
					errs <- fmt.Errorf("read %s = %q, %v; want %q", key, got, err, val)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := r.streams.Load(); got != 1 {
		t.Errorf("%d streams opened, want 1 shared", got)
	}
	if s := c.Stats(); s.StreamAttempts != workers*each*2 || s.UnaryAttempts != 0 || s.StreamMessages == 0 || s.StreamMessages > s.StreamAttempts {
		t.Errorf("stats %+v, want every attempt on the stream, in at most as many messages", s)
	}
	cl.check(t)
}

// A stream that breaks with a request on it (its replica died) fails the
// request over to the next replica with the same (client id, seq), and it
// is applied once.
func TestStream_BrokenStreamFailsOverWithSameSeq(t *testing.T) {
	cl := newCluster()
	dying := startStreamReplica(t, cl, true)
	live := startStreamReplica(t, cl, false)
	c := newClient(t, Config{Addrs: []string{dying.addr, live.addr}})
	waitReady(t, c, 0)
	if _, err := c.Propose(testCtx(t), Write, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	d, l := dying.requests(), live.requests()
	if len(d) != 1 || len(l) != 1 || d[0] != l[0] {
		t.Fatalf("dying replica saw %v, live one %v; want the same request", d, l)
	}
	if cl.appliedCount() != 1 {
		t.Fatalf("applied %d times", cl.appliedCount())
	}
	// The dying replica's next stream works again.
	waitReady(t, c, 0)
	c.mu.Lock()
	c.preferred = 0
	c.mu.Unlock()
	if _, err := c.Propose(testCtx(t), Write, "k", []byte("w")); err != nil {
		t.Fatal(err)
	}
	if got := dying.streams.Load(); got != 2 {
		t.Errorf("dying replica saw %d streams, want a second one after the first broke", got)
	}
	cl.check(t)
}

// A replica without ProposeBatches (Unimplemented) is sent unary calls.
func TestStream_ReplicaWithoutStreamsGetsUnaryCalls(t *testing.T) {
	cl := newCluster()
	r := startReplica(t, cl, nil) // unary only
	c := newClient(t, Config{Addrs: []string{r.addr}})
	waitReady(t, c, 0)
	for i := range 3 {
		if _, err := c.Propose(testCtx(t), Write, "k", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(r.requests()); got != 3 {
		t.Fatalf("replica served %d unary calls, want 3", got)
	}
	if s := c.Stats(); s.UnaryAttempts != 3 {
		t.Fatalf("stats %+v, want 3 unary attempts", s)
	}
	cl.check(t)
}

// deafReplica serves ProposeBatches but never reads from it (a replica that
// holds its limit of a stream's requests, or hangs): Send blocks on flow
// control once the window is full.
type deafReplica struct {
	epaxospb.UnimplementedClientServer
}

func (deafReplica) ProposeBatches(st epaxospb.Client_ProposeBatchesServer) error {
	<-st.Context().Done()
	return nil
}

// A request never outlives its deadline in a Send that a replica does not
// read: the stream is failed and the request fails over to the next
// replica, where it is applied.
func TestStream_ASendTheReplicaDoesNotReadHeedsTheDeadline(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	epaxospb.RegisterClientServer(srv, deafReplica{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cl := newCluster()
	live := startStreamReplica(t, cl, false)
	c := newClient(t, Config{Addrs: []string{lis.Addr().String(), live.addr}, AttemptTimeout: 300 * time.Millisecond})
	waitReady(t, c, 0)
	big := make([]byte, 512<<10) // twice the fill of gRPC's initial window
	start := time.Now()
	for i := range 3 {
		c.mu.Lock()
		c.preferred = 0
		c.mu.Unlock()
		if _, err := c.Propose(testCtx(t), Write, fmt.Sprint("k", i), big); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("three writes took %v: a send to the deaf replica outlived its 300ms attempt", took)
	}
	if got := len(live.requests()); got != 3 {
		t.Fatalf("the live replica served %d writes, want 3", got)
	}
	cl.check(t)
}

// A request whose deadline has already passed is not sent at all: it must
// not reach the replica, and above all must not fail the stream that the
// client's other requests share (the send heeds the deadline by failing the
// stream when a replica stops reading).
func TestStream_ARequestPastItsDeadlineIsNotSentAndBreaksNothing(t *testing.T) {
	cl := newCluster()
	r := startStreamReplica(t, cl, false)
	c := newClient(t, Config{Addrs: []string{r.addr}})
	waitReady(t, c, 0)
	if _, err := c.Propose(testCtx(t), Write, "before", []byte("1")); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		if _, err := c.Propose(ctx, Write, fmt.Sprintf("late-%d", i), []byte("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Propose with a done context: %v, want context.Canceled", err)
		}
	}
	if _, err := c.Propose(testCtx(t), Write, "after", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if got := r.streams.Load(); got != 1 {
		t.Fatalf("%d streams opened: a request past its deadline broke the shared stream", got)
	}
	// The test replica answers a read of a missing key with an error.
	if got, err := c.Propose(testCtx(t), Read, "late-0", nil); err == nil || len(got) != 0 {
		t.Fatalf("read late-0 = %q, %v: a request past its deadline was applied", got, err)
	}
}
