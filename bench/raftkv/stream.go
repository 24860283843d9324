package raftkv

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// StreamInFlight bounds the requests of one ProposeStream being applied at
// once, as epaxosd bounds its streams (daemon.MaxStreamInFlight).
const StreamInFlight = 1024

// ProposeStream serves the pipelined client protocol the way epaxosd does,
// so that `epaxosd bench` drives both systems identically: requests are
// read as they come, each goes through Propose (the Raft log on the
// leader, or one forwarding hop) concurrently with the others, and each
// answer names its request by (client_id, seq) and carries a failure as
// its gRPC code and reason rather than ending the stream. Raft's own
// batching (BatchApplyCh) then groups the concurrent Applies into log
// writes. After the client half-closes, every request read is answered
// before the call ends.
func (s *service) ProposeStream(stream epaxospb.Client_ProposeStreamServer) error {
	ctx := stream.Context()
	out := make(chan *epaxospb.ProposeResponse, StreamInFlight)
	slots := make(chan struct{}, StreamInFlight)
	var wg sync.WaitGroup
	received := make(chan error, 1)
	go func() {
		defer func() {
			wg.Wait()
			close(out)
		}()
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				received <- status.FromContextError(ctx.Err()).Err()
				return
			}
			req, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				received <- nil
				return
			}
			if err != nil {
				received <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := s.Propose(ctx, req)
				if err != nil {
					st := status.Convert(err)
					resp = &epaxospb.ProposeResponse{Code: uint32(st.Code()), Message: st.Message()}
				}
				resp.ClientId, resp.Seq = req.GetClientId(), req.GetSeq()
				out <- resp // out holds StreamInFlight answers: never blocks
				<-slots
			}()
		}
	}()
	for resp := range out {
		if err := stream.Send(resp); err != nil {
			// Drain so the appliers finish; the call ends with err.
			go func() {
				for range out {
				}
			}()
			return err
		}
	}
	return <-received
}
