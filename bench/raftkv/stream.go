package raftkv

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// StreamInFlight bounds the requests of one ProposeBatches stream being
// applied at once, as epaxosd bounds its streams (daemon.MaxStreamInFlight).
const StreamInFlight = 1024

// MaxBatchBytes bounds the answers sent in one message, as epaxosd's
// daemon.MaxBatchBytes does.
const MaxBatchBytes = 4 << 20

// ProposeBatches serves the pipelined client protocol the way epaxosd does,
// so that `epaxosd bench` drives both systems identically: requests are
// read as they come, many per message; each goes through Propose (the Raft
// log on the leader, or one forwarding hop) concurrently with the others;
// the answers ready together go out in one message, each naming its
// request by (client_id, seq) and carrying a failure as its gRPC code and
// reason rather than ending the stream. Raft's own batching (BatchApplyCh)
// groups the concurrent Applies into log writes. After the client
// half-closes, every request read is answered before the call ends.
func (s *service) ProposeBatches(stream epaxospb.Client_ProposeBatchesServer) error {
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
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					received <- status.FromContextError(ctx.Err()).Err()
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
		}
	}()
	if err := sendBatches(stream, out); err != nil {
		return err
	}
	return <-received
}

// sendBatches sends the answers from out until it is closed: each message
// carries the answers waiting when it is made, up to MaxBatchBytes (a
// single larger answer goes alone). When a send fails it drains out in the
// background, so that whatever produces the answers can finish, and
// returns the error.
func sendBatches(stream epaxospb.Client_ProposeBatchesServer, out <-chan *epaxospb.ProposeResponse) error {
	var batch []*epaxospb.ProposeResponse
	for first := range out {
		batch = append(batch[:0], first)
		size := answerBytes(first)
	more:
		for size < MaxBatchBytes {
			select {
			case resp, ok := <-out:
				if !ok {
					break more
				}
				batch = append(batch, resp)
				size += answerBytes(resp)
			default:
				break more
			}
		}
		if err := stream.Send(&epaxospb.ProposeResponses{Responses: batch}); err != nil {
			go func() {
				for range out {
				}
			}()
			return err
		}
		clear(batch)
	}
	return nil
}

// answerBytes is about what resp takes in a message.
func answerBytes(resp *epaxospb.ProposeResponse) int {
	return len(resp.Value) + len(resp.Error) + len(resp.Message) + 48
}
