package raftkv

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// Echo is the benchmarks' unreplicated baseline: it serves epaxosd's Client
// service (unary Propose and the bidirectional ProposeBatches) by applying
// each request at once to one in-memory store, with no replication, no log
// and no disk. It measures what the client protocol costs alone, so that a
// benchmark can report a replicated system as a fraction of it.
//
// Its store has exactly the FSM's semantics (those of epaxosd's kv plugin,
// with the same exactly-once session table): read returns the value, empty
// if absent; write stores; delete removes; a retry of a client's last
// request is answered with the remembered result; an older request is
// refused with FailedPrecondition. Requests are checked as raftkv checks
// them (validate).
type Echo struct {
	epaxospb.UnimplementedClientServer

	mu       sync.Mutex
	data     map[string][]byte
	sessions map[uint64]session
}

// EchoStreamQueue is how many answers of one stream wait to be sent
// before Echo stops reading that stream's requests (HTTP/2 flow control
// then holds the client back).
const EchoStreamQueue = 1024

// NewEcho returns an Echo with an empty store.
func NewEcho() *Echo {
	return &Echo{data: make(map[string][]byte), sessions: make(map[uint64]session)}
}

// Apply applies one request to the store and returns its Result, as
// FSM.Apply does for a log entry holding req.
func (e *Echo) Apply(req *epaxospb.ProposeRequest) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	return applyRequest(e.data, e.sessions, req)
}

// answer checks and applies req; the error is a gRPC status.
func (e *Echo) answer(req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	if err := validate(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	r := e.Apply(req)
	if r.Stale {
		return nil, staleError(req)
	}
	return &epaxospb.ProposeResponse{Value: r.Value, Error: r.Err}, nil
}

// Propose applies one request and answers it.
func (e *Echo) Propose(_ context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	return e.answer(req)
}

// ProposeBatches answers every request of the stream, in order, as epaxosd
// does: each answer names its request by (client_id, seq), and a request
// that fails is answered with its gRPC code and reason rather than ending
// the stream. One goroutine reads and applies, the handler's sends the
// answers waiting, many per message, so that both ends of the stream work
// at once. After the client half-closes, every request read is answered
// before the call ends.
func (e *Echo) ProposeBatches(stream epaxospb.Client_ProposeBatchesServer) error {
	ctx := stream.Context()
	out := make(chan *epaxospb.ProposeResponse, EchoStreamQueue)
	received := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				received <- nil
				return
			}
			if err != nil {
				received <- err
				return
			}
			for _, req := range m.GetRequests() {
				resp, err := e.answer(req)
				if err != nil {
					st := status.Convert(err)
					resp = &epaxospb.ProposeResponse{Code: uint32(st.Code()), Message: st.Message()}
				}
				resp.ClientId, resp.Seq = req.GetClientId(), req.GetSeq()
				select {
				case out <- resp:
				case <-ctx.Done():
					received <- status.FromContextError(ctx.Err()).Err()
					return
				}
			}
		}
	}()
	if err := sendBatches(stream, out); err != nil {
		return err
	}
	return <-received
}
