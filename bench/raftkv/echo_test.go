package raftkv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/client"
	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// Echo's store answers every request exactly as the FSM does, retries and
// stale requests included.
func TestEchoMatchesFSM(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e, f := NewEcho(), NewFSM()
	next := map[uint64]uint64{}
	accesses := []epaxospb.Access{epaxospb.Access_READ, epaxospb.Access_WRITE, epaxospb.Access_DELETE, epaxospb.Access(9)}
	for i := range 5000 {
		id := rng.Uint64N(4) // 0: no session
		seq := next[id]
		switch rng.IntN(6) {
		case 0: // a retry of the last request
		case 1: // an older request
			seq = rng.Uint64N(seq + 1)
		default:
			seq++
		}
		next[id] = max(next[id], seq)
		req := &epaxospb.ProposeRequest{
			ClientId: id, Seq: seq, Access: accesses[rng.IntN(len(accesses))],
			Key: fmt.Appendf(nil, "k%d", rng.IntN(5)),
		}
		if req.Access == epaxospb.Access_WRITE {
			req.Value = fmt.Appendf(nil, "v%d", i)
		}
		got, want := e.Apply(req), f.Apply(logOf(t, uint64(i+1), req)).(Result)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d %v: echo %+v, fsm %+v", i, req, got, want)
		}
	}
	if !reflect.DeepEqual(e.data, f.data) {
		t.Fatalf("stores differ:\necho %q\nfsm  %q", e.data, f.data)
	}
}

// serveEcho serves a new Echo on a loopback port and returns its address.
func serveEcho(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	epaxospb.RegisterClientServer(srv, NewEcho())
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

// The Go client works against Echo over the shared stream and over unary
// calls, concurrently, with the kv semantics.
func TestEchoServesTheGoClient(t *testing.T) {
	addr := serveEcho(t)
	for _, unary := range []bool{false, true} {
		t.Run(fmt.Sprintf("unary=%v", unary), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := client.New(client.Config{Addrs: []string{addr}, Unary: unary})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			prefix := fmt.Sprintf("u%v-", unary)
			if got, err := c.Propose(ctx, client.Read, prefix+"absent", nil); err != nil || len(got) != 0 {
				t.Fatalf("read of an absent key: %q, %v", got, err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for i := range 64 {
				wg.Go(func() {
					key, val := fmt.Sprintf("%sk%d", prefix, i), fmt.Sprintf("v%d", i)
					if got, err := c.Propose(ctx, client.Write, key, []byte(val)); err != nil || len(got) != 0 {
						errs <- fmt.Errorf("write %s: %q, %v", key, got, err)
						return
					}
					got, err := c.Propose(ctx, client.Read, key, nil)
					if err != nil || string(got) != val {
						errs <- fmt.Errorf("read %s: %q, %v; want %q", key, got, err, val)
						return
					}
					if _, err := c.Propose(ctx, client.Delete, key, nil); err != nil {
						errs <- fmt.Errorf("delete %s: %v", key, err)
						return
					}
					if got, err := c.Propose(ctx, client.Read, key, nil); err != nil || len(got) != 0 {
						errs <- fmt.Errorf("read of deleted %s: %q, %v", key, got, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// A request the server refuses is the caller's error, not a
			// broken stream.
			if _, err := c.Propose(ctx, client.Write, "", []byte("x")); status.Code(err) != codes.InvalidArgument {
				t.Errorf("empty key: %v, want InvalidArgument", err)
			}
			st := c.Stats()
			if unary && (st.UnaryAttempts == 0 || st.StreamAttempts != 0) {
				t.Errorf("unary client: %+v", st)
			}
			// The first request goes as a unary call while the connection
			// is not ready yet; the rest share the stream.
			if !unary && (st.StreamAttempts < 256 || st.UnaryAttempts > 1) {
				t.Errorf("stream client: %+v", st)
			}
		})
	}
}

// On a raw ProposeBatches stream every request of a message is answered by
// its (client_id, seq), failures included, and the call ends after the
// half-close once all are.
func TestEchoStreamAnswersEveryRequest(t *testing.T) {
	addr := serveEcho(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := epaxospb.NewClientClient(conn).ProposeBatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	W, R := epaxospb.Access_WRITE, epaxospb.Access_READ
	reqs := []*epaxospb.ProposeRequest{
		{ClientId: 7, Seq: 1, Access: W, Key: []byte("k"), Value: []byte("a")},
		{ClientId: 7, Seq: 2, Access: R, Key: []byte("k")},
		{ClientId: 7, Seq: 1, Access: W, Key: []byte("k"), Value: []byte("z")}, // superseded
		{ClientId: 8, Seq: 1, Access: R},                                       // no key
	}
	if err := st.Send(&epaxospb.ProposeRequests{Requests: reqs}); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var got []*epaxospb.ProposeResponse
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.GetResponses()...)
	}
	if len(got) != len(reqs) {
		t.Fatalf("%d answers to %d requests", len(got), len(reqs))
	}
	for i, r := range got {
		if r.GetClientId() != reqs[i].GetClientId() || r.GetSeq() != reqs[i].GetSeq() {
			t.Errorf("answer %d names (%d, %d), want (%d, %d)", i, r.GetClientId(), r.GetSeq(), reqs[i].GetClientId(), reqs[i].GetSeq())
		}
	}
	if string(got[1].GetValue()) != "a" || got[1].GetCode() != 0 {
		t.Errorf("read: %v", got[1])
	}
	if codes.Code(got[2].GetCode()) != codes.FailedPrecondition {
		t.Errorf("superseded request: %v, want FailedPrecondition", got[2])
	}
	if codes.Code(got[3].GetCode()) != codes.InvalidArgument {
		t.Errorf("request without a key: %v, want InvalidArgument", got[3])
	}
}
