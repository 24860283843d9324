package daemon

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
)

// Limits on a client request, enforced with InvalidArgument.
const (
	MaxKeyBytes   = 4 << 10
	MaxValueBytes = 1 << 20
)

// clientService serves the Client gRPC API.
type clientService struct {
	epaxospb.UnimplementedClientServer
	d *Daemon
}

// Propose orders one command through this replica and answers with the
// state machine's result once this replica has executed it.
func (s *clientService) Propose(ctx context.Context, req *epaxospb.ProposeRequest) (resp *epaxospb.ProposeResponse, err error) {
	cmd, err := commandFromRequest(req)
	if err != nil {
		// Answered before anything touches the replica (nor its metrics).
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if m := s.d.metrics; m != nil {
		start := time.Now()
		defer func() { m.request(start, err != nil) }()
	}
	r, done, ch, cancel := s.d.sessions.Wait(cmd.ClientID, cmd.Seq)
	if !done {
		defer cancel()
		select {
		case s.d.proposals <- cmd:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.d.stopping:
			return nil, status.Error(codes.Unavailable, "replica is shutting down")
		}
		select {
		case r = <-ch:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.d.stopping:
			return nil, status.Error(codes.Unavailable, "replica is shutting down")
		}
	}
	if r.Stale {
		return nil, staleStatus(cmd.ClientID, cmd.Seq).Err()
	}
	return &epaxospb.ProposeResponse{Value: r.Value, Error: r.Err}, nil
}

// staleStatus is the answer to a request whose seq a newer request of the
// same client superseded before it was applied.
func staleStatus(clientID, seq uint64) *status.Status {
	return status.Newf(codes.FailedPrecondition,
		"request %d of client %x was superseded by a newer request of that client; its result is no longer known", seq, clientID)
}

// commandFromRequest validates a client request and turns it into a command.
func commandFromRequest(req *epaxospb.ProposeRequest) (replica.Command, error) {
	var access replica.Access
	switch req.GetAccess() {
	case epaxospb.Access_READ:
		access = replica.Read
	case epaxospb.Access_WRITE:
		access = replica.Write
	case epaxospb.Access_DELETE:
		access = replica.Delete
	default:
		return replica.Command{}, fmt.Errorf("access must be READ, WRITE or DELETE, got %v", req.GetAccess())
	}
	switch {
	case req.GetClientId() == 0:
		return replica.Command{}, fmt.Errorf("client_id must be non-zero")
	case req.GetSeq() == 0:
		return replica.Command{}, fmt.Errorf("seq must be non-zero")
	case len(req.GetKey()) == 0:
		return replica.Command{}, fmt.Errorf("key must not be empty")
	case len(req.GetKey()) > MaxKeyBytes:
		return replica.Command{}, fmt.Errorf("key of %d bytes exceeds the limit of %d", len(req.GetKey()), MaxKeyBytes)
	case len(req.GetValue()) > MaxValueBytes:
		return replica.Command{}, fmt.Errorf("value of %d bytes exceeds the limit of %d", len(req.GetValue()), MaxValueBytes)
	case access != replica.Write && len(req.GetValue()) > 0:
		return replica.Command{}, fmt.Errorf("%s takes no value", access)
	}
	return replica.Command{
		ClientID: req.GetClientId(), Seq: req.GetSeq(), Access: access,
		Key: string(req.GetKey()), Value: req.GetValue(),
	}, nil
}
