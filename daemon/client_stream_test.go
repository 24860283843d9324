package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/session"
)

// streamHarness is a Daemon reduced to what the Client service touches: the
// session table, the proposal queue and the admission limits. Its "core"
// applies proposals when release lets it, answering each with its value
// (reads answer "r:KEY"), as the applier does.
type streamHarness struct {
	d       *Daemon
	client  epaxospb.ClientClient
	release chan int // how many queued proposals to apply
}

func newStreamHarness(t *testing.T) *streamHarness {
	t.Helper()
	d := &Daemon{
		sessions:  session.New(),
		proposals: make(chan replica.Command, proposalQueue),
		stopping:  make(chan struct{}),
		admission: newAdmission(0, MaxInFlightRequestBytes),
	}
	h := &streamHarness{d: d, release: make(chan int)}
	go func() {
		for n := range h.release {
			for range n {
				c := <-d.proposals
				cmds := []session.Command{{Client: c.ClientID, Seq: c.Seq, Cmd: plugin.Command{Access: plugin.Access(c.Access), Key: []byte(c.Key), Value: c.Value}}}
				slots, batch := d.sessions.Filter(cmds)
				results := make([]plugin.Result, len(batch))
				for i, pc := range batch {
					results[i].Value = pc.Value
					if pc.Access == plugin.Read {
						results[i].Value = []byte("r:" + string(pc.Key))
					}
				}
				d.sessions.Record(cmds, slots, results)
			}
		}
	}()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(d.admission.serverOptions()...)
	epaxospb.RegisterClientServer(srv, &clientService{d: d})
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		close(h.release)
	})
	h.client = epaxospb.NewClientClient(conn)
	return h
}

func write(client, seq uint64, key, value string) *epaxospb.ProposeRequest {
	return &epaxospb.ProposeRequest{ClientId: client, Seq: seq, Access: epaxospb.Access_WRITE, Key: []byte(key), Value: []byte(value)}
}

// Requests on one stream are all in flight at once and each answer names
// its request; after the client half-closes, every request read is still
// answered before the stream ends.
func TestProposeStream_AnswersEveryRequestByItsIDAfterHalfClose(t *testing.T) {
	h := newStreamHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.client.ProposeStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if err := st.Send(write(uint64(i+1), 1, fmt.Sprint("k", i), fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	h.release <- n // all 50 were proposed without any answer: none waited
	got := map[uint64]string{}
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d answers: %v", len(got), err)
		}
		if resp.GetCode() != 0 || resp.GetSeq() != 1 {
			t.Fatalf("answer %v", resp)
		}
		got[resp.GetClientId()] = string(resp.GetValue())
	}
	for i := range n {
		if v := got[uint64(i+1)]; v != fmt.Sprint("v", i) {
			t.Errorf("client %d got %q, want %q", i+1, v, fmt.Sprint("v", i))
		}
	}
}

// A bad request, a retry of an applied request and a superseded one are
// answered on the stream, each with its own code or result; the stream
// goes on serving.
func TestProposeStream_AnswersFailuresPerRequest(t *testing.T) {
	h := newStreamHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.client.ProposeStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(req *epaxospb.ProposeRequest) {
		t.Helper()
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() *epaxospb.ProposeResponse {
		t.Helper()
		resp, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	send(write(7, 0, "k", "v")) // seq 0 is invalid
	if r := recv(); codes.Code(r.GetCode()) != codes.InvalidArgument || !strings.Contains(r.GetMessage(), "seq") || r.GetClientId() != 7 {
		t.Fatalf("bad request answered %v, want InvalidArgument naming seq", r)
	}
	send(write(7, 2, "k", "second"))
	h.release <- 1
	if r := recv(); r.GetCode() != 0 || string(r.GetValue()) != "second" {
		t.Fatalf("write answered %v", r)
	}
	send(write(7, 2, "k", "second")) // a retry of an applied request
	if r := recv(); r.GetCode() != 0 || string(r.GetValue()) != "second" || r.GetSeq() != 2 {
		t.Fatalf("retry answered %v, want the first result", r)
	}
	send(write(7, 1, "k", "first")) // superseded by seq 2
	if r := recv(); codes.Code(r.GetCode()) != codes.FailedPrecondition || !strings.Contains(r.GetMessage(), "superseded") {
		t.Fatalf("superseded request answered %v, want FailedPrecondition", r)
	}
}

// A client that goes away withdraws its waiting requests: nothing stays
// registered in the session table, and the admission budget is returned.
func TestProposeStream_CancelWithdrawsPendingRequests(t *testing.T) {
	h := newStreamHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := h.client.ProposeStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := st.Send(write(uint64(100+i), 1, "k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "10 proposals queued", func() bool { return len(h.d.proposals) == 10 })
	if got := h.d.admission.inFlight.Load(); got == 0 {
		t.Fatal("no budget charged for 10 waiting requests")
	}
	cancel()
	waitUntil(t, "the budget returned", func() bool { return h.d.admission.inFlight.Load() == 0 })
	waitUntil(t, "the waiters withdrawn", func() bool { return h.d.sessions.Waiting() == 0 })
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
