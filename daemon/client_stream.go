package daemon

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/session"
)

// errStreamClosed ends a receive loop that outlived its call.
var errStreamClosed = status.Error(codes.Canceled, "stream closed")

// MaxStreamInFlight is how many requests of one ProposeStream a replica
// holds at once; it reads no further request from the stream until one of
// them is answered, so a fast sender is held back by HTTP/2 flow control.
const MaxStreamInFlight = 1024

// ProposeStream serves many requests over one stream: it reads requests,
// proposes them to the core without waiting, and sends each answer when
// its command has executed, in completion order. One goroutine reads and
// the handler's goroutine writes; a request costs no goroutine while it
// waits (the session table calls back). Per-request failures (a bad
// request, a limit, a superseded seq) are answered on the stream with their
// code and reason; the stream itself fails only when the client goes away,
// the replica shuts down or the stream breaks. After the client
// half-closes, every request read is still answered before the call ends.
func (s *clientService) ProposeStream(stream epaxospb.Client_ProposeStreamServer) error {
	return s.serveStream(oneByOne{stream})
}

// ProposeBatches is ProposeStream with many requests and answers per
// message: the answers ready when the writer wakes go out together.
func (s *clientService) ProposeBatches(stream epaxospb.Client_ProposeBatchesServer) error {
	return s.serveStream(batched{stream})
}

// serveStream runs one call of ProposeStream or ProposeBatches.
func (s *clientService) serveStream(stream requestStream) error {
	ps := &proposeStream{
		svc:      s,
		stream:   stream,
		ready:    make(chan struct{}, 1),
		space:    make(chan struct{}, 1),
		received: make(chan error, 1),
		pending:  make(map[uint64]*streamRequest),
	}
	defer ps.close()
	go func() { ps.received <- ps.receiveLoop() }()
	return ps.sendLoop()
}

// proposeStream is the state of one ProposeStream or ProposeBatches call.
type proposeStream struct {
	svc    *clientService
	stream requestStream

	mu       sync.Mutex
	out      []*epaxospb.ProposeResponse // answers not yet sent
	pending  map[uint64]*streamRequest   // requests waiting for results, by number
	next     uint64                      // number of the next request
	closed   bool                        // the call is over; drop late results
	inFlight int                         // requests read and not yet answered
	ready    chan struct{}               // signalled when out grows
	space    chan struct{}               // signalled when a request is answered
	received chan error                  // receiveLoop's end: nil once the client half-closed
}

// streamRequest is one request waiting for its result.
type streamRequest struct {
	clientID, seq uint64
	start         time.Time // arrival, for the metrics file
	size          int64     // charged to the admission budget
	cancel        func()
}

// receiveLoop reads and proposes requests until the client half-closes
// (nil) or the call fails.
func (ps *proposeStream) receiveLoop() error {
	ctx := ps.stream.Context()
	for {
		if err := ps.waitForSpace(); err != nil {
			return err
		}
		reqs, err := ps.stream.recv()
		start := time.Now()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ps.mu.Lock()
		ps.inFlight += len(reqs)
		ps.mu.Unlock()
		for _, req := range reqs {
			if err := ps.propose(ctx, req, start); err != nil {
				return err
			}
		}
	}
}

// propose admits, registers and proposes one request read at start; an
// error ends the call.
func (ps *proposeStream) propose(ctx context.Context, req *epaxospb.ProposeRequest, start time.Time) error {
	size, err := ps.svc.d.admission.admit(ctx, req)
	if err != nil {
		ps.answer(nil, failed(req, err))
		return nil
	}
	cmd, err := commandFromRequest(req)
	if err != nil {
		ps.answer(nil, failed(req, status.Error(codes.InvalidArgument, err.Error())))
		ps.svc.d.admission.release(size)
		return nil
	}
	r := &streamRequest{clientID: cmd.ClientID, seq: cmd.Seq, size: size, start: start}
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		ps.svc.d.admission.release(size)
		return errStreamClosed
	}
	n := ps.next
	ps.next++
	ps.pending[n] = r
	ps.mu.Unlock()
	res, done, cancel := ps.svc.d.sessions.Subscribe(cmd.ClientID, cmd.Seq, func(res session.Result) {
		ps.answer(&n, response(r.clientID, r.seq, res))
	})
	if done {
		ps.answer(&n, response(r.clientID, r.seq, res))
		return nil
	}
	ps.mu.Lock()
	if ps.closed {
		// close ran before the subscription was recorded: withdraw it here.
		ps.mu.Unlock()
		cancel()
		return errStreamClosed
	}
	r.cancel = cancel
	ps.mu.Unlock()
	select {
	case ps.svc.d.proposals <- cmd:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-ps.svc.d.stopping:
		return status.Error(codes.Unavailable, "replica is shutting down")
	}
	return nil
}

// waitForSpace waits while MaxStreamInFlight or more requests are held.
func (ps *proposeStream) waitForSpace() error {
	ctx := ps.stream.Context()
	for {
		ps.mu.Lock()
		full := ps.inFlight >= MaxStreamInFlight
		ps.mu.Unlock()
		if !full {
			return nil
		}
		select {
		case <-ps.space:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-ps.svc.d.stopping:
			return status.Error(codes.Unavailable, "replica is shutting down")
		}
	}
}

// answer queues resp for sending and frees the request's slot; n names a
// pending request (nil for one refused before it was registered). A
// request already answered or withdrawn is not answered again. It never
// blocks: the session table calls it with its lock held.
func (ps *proposeStream) answer(n *uint64, resp *epaxospb.ProposeResponse) {
	ps.mu.Lock()
	if n != nil {
		r, ok := ps.pending[*n]
		if !ok {
			ps.mu.Unlock()
			return
		}
		delete(ps.pending, *n)
		ps.svc.d.admission.release(r.size)
		ps.svc.d.metrics.request(r.start, resp.Code != 0)
	} else {
		ps.svc.d.metrics.request(time.Now(), true) // refused on arrival
	}
	if ps.closed {
		ps.mu.Unlock()
		return
	}
	ps.out = append(ps.out, resp)
	ps.inFlight--
	ps.mu.Unlock()
	signal(ps.ready)
	signal(ps.space)
}

// sendLoop sends queued answers until the call ends: with nil once the
// client half-closed and every request read is answered, or with the
// error that ended receiving or sending.
func (ps *proposeStream) sendLoop() error {
	ctx := ps.stream.Context()
	var batch []*epaxospb.ProposeResponse
	halfClosed := false
	for {
		ps.mu.Lock()
		batch, ps.out = ps.out, batch[:0]
		idle := ps.inFlight == 0
		ps.mu.Unlock()
		if len(batch) > 0 {
			if err := ps.stream.send(batch); err != nil {
				return err
			}
			clear(batch)
			continue
		}
		if halfClosed && idle {
			return nil
		}
		select {
		case <-ps.ready:
		case err := <-ps.received:
			if err != nil {
				return err
			}
			halfClosed = true
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// close ends the call's interest in results: requests still pending are
// withdrawn from the session table and their budget returned (their
// outcome is unknown to the client, which retries them).
func (ps *proposeStream) close() {
	ps.mu.Lock()
	pending := ps.pending
	ps.pending = nil
	ps.closed = true
	ps.mu.Unlock()
	for _, r := range pending {
		if r.cancel != nil {
			r.cancel()
		}
		ps.svc.d.admission.release(r.size)
	}
}

// response turns a session result into the answer to (clientID, seq).
func response(clientID, seq uint64, r session.Result) *epaxospb.ProposeResponse {
	resp := &epaxospb.ProposeResponse{ClientId: clientID, Seq: seq}
	if r.Stale {
		st := staleStatus(clientID, seq)
		resp.Code, resp.Message = uint32(st.Code()), st.Message()
		return resp
	}
	resp.Value, resp.Error = r.Value, r.Err
	return resp
}

// failed is the answer to req refused with err (a gRPC status).
func failed(req *epaxospb.ProposeRequest, err error) *epaxospb.ProposeResponse {
	st := status.Convert(err)
	return &epaxospb.ProposeResponse{ClientId: req.GetClientId(), Seq: req.GetSeq(), Code: uint32(st.Code()), Message: st.Message()}
}

// requestStream is the call ProposeStream or ProposeBatches serves, seen
// as batches of requests and answers.
type requestStream interface {
	Context() context.Context
	// recv returns the requests of the next message.
	recv() ([]*epaxospb.ProposeRequest, error)
	// send sends answers, in as few messages as the stream allows.
	send([]*epaxospb.ProposeResponse) error
}

// oneByOne is ProposeStream: one request or answer per message.
type oneByOne struct {
	epaxospb.Client_ProposeStreamServer
}

func (s oneByOne) recv() ([]*epaxospb.ProposeRequest, error) {
	req, err := s.Recv()
	if err != nil {
		return nil, err
	}
	return []*epaxospb.ProposeRequest{req}, nil
}

func (s oneByOne) send(resps []*epaxospb.ProposeResponse) error {
	for _, resp := range resps {
		if err := s.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

// batched is ProposeBatches: as many answers per message as fit in
// MaxBatchBytes.
type batched struct {
	epaxospb.Client_ProposeBatchesServer
}

// MaxBatchBytes bounds the answers ProposeBatches puts in one message (a
// single larger answer goes alone), well below the clients' 64 MiB limit on
// a message.
const MaxBatchBytes = 4 << 20

func (s batched) recv() ([]*epaxospb.ProposeRequest, error) {
	m, err := s.Recv()
	if err != nil {
		return nil, err
	}
	return m.GetRequests(), nil
}

func (s batched) send(resps []*epaxospb.ProposeResponse) error {
	for len(resps) > 0 {
		n, size := 0, 0
		for ; n < len(resps); n++ {
			b := responseBytes(resps[n])
			if n > 0 && size+b > MaxBatchBytes {
				break
			}
			size += b
		}
		if err := s.Send(&epaxospb.ProposeResponses{Responses: resps[:n]}); err != nil {
			return err
		}
		resps = resps[n:]
	}
	return nil
}

// responseBytes is about what resp takes in a message (its variable-length
// fields and a bound on the rest), cheaper to compute than proto.Size.
func responseBytes(resp *epaxospb.ProposeResponse) int {
	return len(resp.Value) + len(resp.Error) + len(resp.Message) + 48
}
