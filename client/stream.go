package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// A Client sends its requests to a replica over one ProposeBatches stream
// shared by every concurrent Propose, rather than one unary call each: a
// gRPC unary call costs tens of microseconds of CPU at both ends, a message
// on an open stream a few, and a request inside a message well under one.
// One goroutine per stream sends: whatever requests are queued when it
// wakes go out in one message (at most MaxBatchBytes), so that the busier
// the client, the more each message carries, with no added wait. The
// replica answers in completion order, many answers per message. A replica
// that does not serve ProposeBatches (an older server, or another
// implementation of the Client service) is sent unary calls.

// MaxBatchBytes bounds the requests the client puts in one message of a
// stream (a single larger request goes alone).
const MaxBatchBytes = 4 << 20

// requestKey names a request on a stream.
type requestKey struct{ clientID, seq uint64 }

// replicaStream is the open ProposeBatches stream to one replica.
type replicaStream struct {
	stream epaxospb.Client_ProposeBatchesClient
	cancel context.CancelFunc
	wake   chan struct{} // signalled when queue grows

	mu       sync.Mutex
	waiting  map[requestKey]*streamCall
	queue    []*streamCall // waiting for the sender, oldest first
	err      error         // why the stream broke; set once
	broken   chan struct{} // closed when it broke
	messages uint64        // messages sent, for Stats
}

// streamCall is one request on a stream.
type streamCall struct {
	req    *epaxospb.ProposeRequest
	ctx    context.Context
	answer chan *epaxospb.ProposeResponse // buffered: the receiver never blocks
	state  callState                      // guarded by the stream's mu
}

// callState is where a streamCall is on its way out.
type callState int

const (
	queued    callState = iota // in the queue
	sending                    // in the message being sent
	sent                       // sent; waiting for its answer
	abandoned                  // its caller gave up while it was queued: never sent
)

// errUnary says a replica does not serve ProposeBatches.
var errUnary = errors.New("replica does not serve ProposeBatches")

// streamTo returns the open stream to replica i, opening one if there is
// none or the last one broke. It returns errUnary when requests to i must
// go as unary calls: i does not serve streams, or its connection is not
// ready (opening a stream would wait for the connection without heeding
// the request's deadline; a unary call fails over as it should).
func (c *Client) streamTo(i int) (*replicaStream, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.unary[i] {
		c.mu.Unlock()
		return nil, errUnary
	}
	if s := c.streams[i]; s != nil && !s.isBroken() {
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	if c.conns[i].GetState() != connectivity.Ready {
		c.conns[i].Connect()
		return nil, errUnary
	}
	c.opening[i].Lock()
	defer c.opening[i].Unlock()
	c.mu.Lock()
	if s := c.streams[i]; s != nil && !s.isBroken() {
		c.mu.Unlock()
		return s, nil // another request opened it meanwhile
	}
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := c.stubs[i].ProposeBatches(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &replicaStream{stream: st, cancel: cancel, wake: make(chan struct{}, 1),
		waiting: make(map[requestKey]*streamCall), broken: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	if old := c.streams[i]; old != nil {
		c.retiredMessages += old.sentMessages()
	}
	c.streams[i] = s
	c.mu.Unlock()
	go c.receive(i, s)
	go s.sendLoop()
	return s, nil
}

// isBroken reports whether s has broken.
func (s *replicaStream) isBroken() bool {
	select {
	case <-s.broken:
		return true
	default:
		return false
	}
}

// receive hands each response on s to its waiting request until s breaks.
func (c *Client) receive(i int, s *replicaStream) {
	for {
		m, err := s.stream.Recv()
		if err != nil {
			if status.Code(err) == codes.Unimplemented {
				c.mu.Lock()
				c.unary[i] = true
				c.mu.Unlock()
				err = errUnary
			}
			s.fail(err)
			return
		}
		s.mu.Lock()
		for _, resp := range m.GetResponses() {
			k := requestKey{resp.GetClientId(), resp.GetSeq()}
			if call, ok := s.waiting[k]; ok {
				delete(s.waiting, k)
				call.answer <- resp // buffered, and answered once: never blocks
			}
		}
		s.mu.Unlock()
	}
}

// fail marks s broken with err (the first error wins) and ends the call.
func (s *replicaStream) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if err == nil {
		err = status.Error(codes.Unavailable, "stream ended")
	}
	s.err = err
	s.waiting = nil
	s.queue = nil
	close(s.broken)
	s.mu.Unlock()
	s.cancel()
}

// brokenErr returns why s broke as an error that retryable understands: a
// stream that breaks leaves its requests' outcomes unknown, like an
// unreachable replica.
func (s *replicaStream) brokenErr() error {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if errors.Is(err, errUnary) {
		return errUnary
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		if st.Code() == codes.Canceled {
			return status.Error(codes.Unavailable, "stream to the replica was closed")
		}
		return err
	}
	return status.Errorf(codes.Unavailable, "stream to the replica broke: %v", err)
}

// sendLoop sends the queued requests, as many per message as are queued,
// until s breaks.
func (s *replicaStream) sendLoop() {
	var reqs []*epaxospb.ProposeRequest
	var batch []*streamCall
	for {
		select {
		case <-s.wake:
		case <-s.broken:
			return
		}
		for {
			batch, reqs = s.take(batch[:0], reqs[:0])
			if len(batch) == 0 {
				break
			}
			err := s.stream.Send(&epaxospb.ProposeRequests{Requests: reqs})
			s.mu.Lock()
			for _, call := range batch {
				call.state = sent
			}
			s.messages++
			s.mu.Unlock()
			clear(batch)
			clear(reqs)
			if errors.Is(err, io.EOF) {
				// The stream has ended; receive gets the reason from Recv
				// (Unimplemented, say) and fails s with it.
				<-s.broken
				return
			}
			if err != nil {
				s.fail(fmt.Errorf("send: %w", err))
				return
			}
		}
	}
}

// take moves the queued requests that fit in one message into batch and
// reqs, marking them sending. Requests whose callers have given up, or
// whose deadline has passed, are dropped: they never go out.
func (s *replicaStream) take(batch []*streamCall, reqs []*epaxospb.ProposeRequest) ([]*streamCall, []*epaxospb.ProposeRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, 0
	for ; n < len(s.queue); n++ {
		call := s.queue[n]
		if call.state == abandoned {
			continue
		}
		if call.ctx.Err() != nil {
			call.state = abandoned // its caller returns the context's error
			continue
		}
		b := requestBytes(call.req)
		if len(batch) > 0 && size+b > MaxBatchBytes {
			break
		}
		size += b
		call.state = sending
		batch = append(batch, call)
		reqs = append(reqs, call.req)
	}
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = s.queue[:0:0] // let the emptied array go
	}
	return batch, reqs
}

// requestBytes is about what req takes in a message.
func requestBytes(req *epaxospb.ProposeRequest) int {
	return len(req.Key) + len(req.Value) + 32
}

// sentMessages returns how many messages s has sent.
func (s *replicaStream) sentMessages() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages
}

// propose queues req on s and waits for its answer. A request whose
// deadline passes while it is queued is never sent. One whose deadline
// passes while its message is being sent fails the stream: the replica
// has stopped reading it (it holds too many of its requests, or hangs), so
// that a request never outlives its deadline here and its retries, and
// those of the requests behind it, go elsewhere.
func (s *replicaStream) propose(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	k := requestKey{req.ClientId, req.Seq}
	call := &streamCall{req: req, ctx: ctx, answer: make(chan *epaxospb.ProposeResponse, 1)}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, s.brokenErr()
	}
	s.waiting[k] = call
	s.queue = append(s.queue, call)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case resp := <-call.answer:
		if code := codes.Code(resp.GetCode()); code != codes.OK {
			return nil, status.Error(code, resp.GetMessage())
		}
		return resp, nil
	case <-s.broken:
		return nil, s.brokenErr()
	case <-ctx.Done():
		s.mu.Lock()
		state := call.state
		if state == queued {
			call.state = abandoned
		}
		if s.waiting != nil && s.waiting[k] == call {
			delete(s.waiting, k)
		}
		s.mu.Unlock()
		if state == sending {
			s.fail(status.Error(codes.Unavailable, "the replica did not take a request before its deadline"))
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}
