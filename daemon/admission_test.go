package daemon

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// gatedClientService answers a Propose once gate lets it; entered reports
// each request that reached it.
type gatedClientService struct {
	epaxospb.UnimplementedClientServer
	gate    chan struct{}
	entered chan struct{}
}

func (s *gatedClientService) Propose(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	return &epaxospb.ProposeResponse{Value: req.GetValue()}, nil
}

// serveAdmitted serves svc behind a's limits and returns a dial function
// that opens a new connection each call.
func serveAdmitted(t *testing.T, a *admission, svc epaxospb.ClientServer) func() epaxospb.ClientClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(a.serverOptions()...)
	epaxospb.RegisterClientServer(s, svc)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return func() epaxospb.ClientClient {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return epaxospb.NewClientClient(conn)
	}
}

func propose(c epaxospb.ClientClient, value []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Propose(ctx, &epaxospb.ProposeRequest{Access: epaxospb.Access_WRITE, Key: []byte("k"), Value: value, ClientId: 1, Seq: 1})
	return err
}

// A connection that sends faster than its rate limit gets ResourceExhausted
// with the reason beyond its burst; another connection has its own bucket.
func TestAdmission_RateLimitIsPerConnection(t *testing.T) {
	a := newAdmission(1, MaxInFlightRequestBytes) // 1/s, burst 100
	dial := serveAdmitted(t, a, &gatedClientService{})
	c := dial()
	const sent = 150
	start := time.Now()
	var refused int
	for range sent {
		err := propose(c, nil)
		switch {
		case err == nil:
		case status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "client_rate_limit"):
			refused++
		default:
			t.Fatalf("got %v, want success or ResourceExhausted naming client_rate_limit", err)
		}
	}
	// The bucket admits its burst plus one request per elapsed second.
	admittedAtMost := a.burst + int(time.Since(start)/time.Second) + 1
	if refused < sent-admittedAtMost || refused == 0 {
		t.Fatalf("%d of %d requests refused, want at least %d", refused, sent, sent-admittedAtMost)
	}
	if err := propose(dial(), nil); err != nil {
		t.Fatalf("first request on a new connection: %v", err)
	}
}

// Requests in flight on all connections together cannot hold more than the
// byte budget; one that would exceed it is refused at once, and the budget
// is returned when a request is answered.
func TestAdmission_InFlightBytesAreBounded(t *testing.T) {
	svc := &gatedClientService{gate: make(chan struct{}), entered: make(chan struct{}, 3)}
	a := newAdmission(0, 1000)
	dial := serveAdmitted(t, a, svc)
	value := make([]byte, 600)
	first := make(chan error, 1)
	go func() { first <- propose(dial(), value) }()
	<-svc.entered // the first request holds 600+ bytes of the budget
	err := propose(dial(), value)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "in flight") {
		t.Fatalf("second request: %v, want ResourceExhausted for the in-flight budget", err)
	}
	svc.gate <- struct{}{}
	if err := <-first; err != nil {
		t.Fatalf("first request: %v", err)
	}
	go func() { svc.gate <- struct{}{} }()
	if err := propose(dial(), value); err != nil {
		t.Fatalf("request after the budget was returned: %v", err)
	}
	if got := a.inFlight.Load(); got != 0 {
		t.Fatalf("%d bytes still charged after every request was answered", got)
	}
}

// Only the Client service is subject to admission: the Peer service's
// traffic is bounded by the transport's own queues.
func TestAdmission_OnlyClientMethodsAreCharged(t *testing.T) {
	a := newAdmission(0, 0) // a budget that admits nothing
	called := false
	_, err := a.intercept(context.Background(), &epaxospb.ProposeRequest{}, &grpc.UnaryServerInfo{FullMethod: "/epaxos.v1.Other/Call"},
		func(context.Context, any) (any, error) { called = true; return nil, nil })
	if err != nil || !called {
		t.Fatalf("non-client method: called=%v err=%v, want it passed through", called, err)
	}
	_, err = a.intercept(context.Background(), &epaxospb.ProposeRequest{}, &grpc.UnaryServerInfo{FullMethod: clientServicePrefix + "Propose"},
		func(context.Context, any) (any, error) { t.Fatal("handler called over budget"); return nil, nil })
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("client method over budget: %v, want ResourceExhausted", err)
	}
}
