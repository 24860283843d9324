package client

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// gatedStream is a ProposeBatches stream whose Send reports each message's
// size on sent and then waits for gate; Recv answers every request sent,
// echoing its key as the value.
type gatedStream struct {
	grpc.BidiStreamingClient[epaxospb.ProposeRequests, epaxospb.ProposeResponses]
	gate    chan struct{}
	sent    chan int
	answers chan *epaxospb.ProposeResponses
}

func (g *gatedStream) Send(m *epaxospb.ProposeRequests) error {
	g.sent <- len(m.Requests)
	<-g.gate
	out := &epaxospb.ProposeResponses{}
	for _, req := range m.Requests {
		out.Responses = append(out.Responses, &epaxospb.ProposeResponse{ClientId: req.ClientId, Seq: req.Seq, Value: req.Key})
	}
	g.answers <- out
	return nil
}

func (g *gatedStream) Recv() (*epaxospb.ProposeResponses, error) {
	m, ok := <-g.answers
	if !ok {
		return nil, io.EOF
	}
	return m, nil
}

// newGatedStream returns a replicaStream over a gatedStream, with its
// receiver and sender running until the test ends.
func newGatedStream(t *testing.T) (*gatedStream, *replicaStream) {
	g := &gatedStream{gate: make(chan struct{}), sent: make(chan int, 16), answers: make(chan *epaxospb.ProposeResponses, 16)}
	s := &replicaStream{stream: g, cancel: func() {}, wake: make(chan struct{}, 1),
		waiting: make(map[requestKey]*streamCall), broken: make(chan struct{})}
	c := &Client{unary: make([]bool, 1)}
	go c.receive(0, s)
	go s.sendLoop()
	t.Cleanup(func() { s.fail(nil); close(g.answers) })
	return g, s
}

// Requests queued while a message is being sent go out together in the
// next message, and each answer in a message reaches its own request.
func TestStream_RequestsQueuedDuringASendGoOutInOneMessage(t *testing.T) {
	g, s := newGatedStream(t)

	const queuedBehind = 99
	var wg sync.WaitGroup
	errs := make(chan error, queuedBehind+1)
	propose := func(seq uint64) {
		defer wg.Done()
		key := fmt.Sprint("k", seq)
		resp, err := s.propose(testCtx(t), &epaxospb.ProposeRequest{ClientId: 7, Seq: seq, Key: []byte(key)})
		if err != nil || string(resp.GetValue()) != key {
			errs <- fmt.Errorf("request %d: answer %q, %v; want %q", seq, resp.GetValue(), err, key)
		}
	}
	wg.Add(1)
	go propose(0)
	if n := <-g.sent; n != 1 {
		t.Fatalf("first message carried %d requests, want 1", n)
	}
	for seq := uint64(1); seq <= queuedBehind; seq++ {
		wg.Add(1)
		go propose(seq)
	}
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.queue) == queuedBehind
	})
	close(g.gate)
	if n := <-g.sent; n != queuedBehind {
		t.Fatalf("second message carried %d requests, want the %d queued during the first send", n, queuedBehind)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.sentMessages(); got != 2 {
		t.Errorf("%d messages sent, want 2", got)
	}
}

// A request queued behind a message being sent, whose caller gives up, is
// never sent and leaves the stream working.
func TestStream_AnAbandonedQueuedRequestIsNeverSent(t *testing.T) {
	g, s := newGatedStream(t)

	first := make(chan error, 1)
	go func() {
		_, err := s.propose(testCtx(t), &epaxospb.ProposeRequest{ClientId: 7, Seq: 1, Key: []byte("a")})
		first <- err
	}()
	<-g.sent // the first request's message is being sent
	ctx, cancel := context.WithCancel(testCtx(t))
	abandoned := make(chan error, 1)
	go func() {
		_, err := s.propose(ctx, &epaxospb.ProposeRequest{ClientId: 7, Seq: 2, Key: []byte("b")})
		abandoned <- err
	}()
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.queue) == 1
	})
	cancel()
	if err := <-abandoned; err == nil {
		t.Fatal("an abandoned request was answered")
	}
	close(g.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The next request goes out alone: the abandoned one was dropped.
	if _, err := s.propose(testCtx(t), &epaxospb.ProposeRequest{ClientId: 7, Seq: 3, Key: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	if n := <-g.sent; n != 1 {
		t.Fatalf("the message after an abandoned request carried %d requests, want 1", n)
	}
	if s.isBroken() {
		t.Fatal("abandoning a queued request broke the stream")
	}
}

// waitFor waits until cond holds, failing the test after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}
