package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// A Client sends its requests to a replica over one ProposeStream shared by
// every concurrent Propose (the replica answers them in completion order),
// rather than one unary call each: a gRPC unary call costs tens of
// microseconds of CPU at both ends, a message on an open stream well under
// one. A replica that does not serve ProposeStream (an older server, or
// another implementation of the Client service) is sent unary calls.

// requestKey names a request on a stream.
type requestKey struct{ clientID, seq uint64 }

// replicaStream is the open ProposeStream to one replica.
type replicaStream struct {
	stream epaxospb.Client_ProposeStreamClient
	cancel context.CancelFunc
	// sending admits one sender at a time (gRPC allows no more); a
	// channel rather than a mutex, so that waiting for it heeds a
	// request's deadline.
	sending chan struct{}

	mu      sync.Mutex
	waiting map[requestKey]chan *epaxospb.ProposeResponse
	err     error         // why the stream broke; set once
	broken  chan struct{} // closed when it broke
}

// errUnary says a replica does not serve ProposeStream.
var errUnary = errors.New("replica does not serve ProposeStream")

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
	st, err := c.stubs[i].ProposeStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &replicaStream{stream: st, cancel: cancel, sending: make(chan struct{}, 1),
		waiting: make(map[requestKey]chan *epaxospb.ProposeResponse), broken: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	c.streams[i] = s
	c.mu.Unlock()
	go c.receive(i, s)
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
		resp, err := s.stream.Recv()
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
		k := requestKey{resp.GetClientId(), resp.GetSeq()}
		s.mu.Lock()
		ch, ok := s.waiting[k]
		delete(s.waiting, k)
		s.mu.Unlock()
		if ok {
			ch <- resp // buffered: never blocks
		}
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

// send sends req, waiting at most until ctx is done. A replica that stops
// reading the stream (it holds too many of its requests, or hangs) makes
// Send block on flow control; if ctx ends meanwhile, the stream is failed
// (which unblocks Send), so that a request never outlives its deadline
// here and its retries go elsewhere.
func (s *replicaStream) send(ctx context.Context, req *epaxospb.ProposeRequest) error {
	// A select between a done ctx and a free sending slot picks either;
	// a request past its deadline must not go out (and fail the stream
	// the other requests share when the timer below fires at once).
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	select {
	case s.sending <- struct{}{}:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-s.broken:
		return s.brokenErr()
	}
	defer func() { <-s.sending }()
	stop := context.AfterFunc(ctx, func() {
		s.fail(status.Error(codes.Unavailable, "the replica did not take a request before its deadline"))
	})
	err := s.stream.Send(req)
	if !stop() && err == nil {
		// The deadline passed just as the send finished; the stream is
		// being failed, so the answer will not come on it.
		return status.FromContextError(ctx.Err()).Err()
	}
	return err
}

// proposeOnStream sends req on s and waits for its answer.
func (s *replicaStream) propose(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	k := requestKey{req.ClientId, req.Seq}
	ch := make(chan *epaxospb.ProposeResponse, 1)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, s.brokenErr()
	}
	s.waiting[k] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		if s.waiting != nil && s.waiting[k] == ch {
			delete(s.waiting, k)
		}
		s.mu.Unlock()
	}
	if err := s.send(ctx, req); err != nil {
		forget()
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		// Send reports io.EOF when the stream has ended; Recv, in receive,
		// gets the reason (Unimplemented, say), so wait for it.
		select {
		case <-s.broken:
		case <-ctx.Done():
			s.fail(fmt.Errorf("send: %w", err))
		}
		return nil, s.brokenErr()
	}
	select {
	case resp := <-ch:
		if code := codes.Code(resp.GetCode()); code != codes.OK {
			return nil, status.Error(code, resp.GetMessage())
		}
		return resp, nil
	case <-s.broken:
		return nil, s.brokenErr()
	case <-ctx.Done():
		forget()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}
