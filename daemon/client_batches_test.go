package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// Every request of a ProposeBatches message is proposed without waiting
// for any answer, each answer names its request (a bad one with its own
// code), and after the client half-closes every request read is answered
// before the stream ends.
func TestProposeBatches_AnswersEveryRequestOfAMessageByItsID(t *testing.T) {
	h := newStreamHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.client.ProposeBatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	m := &epaxospb.ProposeRequests{}
	for i := range n {
		m.Requests = append(m.Requests, write(uint64(i+1), 1, fmt.Sprint("k", i), fmt.Sprint("v", i)))
	}
	m.Requests = append(m.Requests, write(999, 0, "k", "v")) // seq 0 is invalid
	if err := st.Send(m); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	h.release <- n // all 50 were proposed without any answer: none waited
	got := map[uint64]*epaxospb.ProposeResponse{}
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d answers: %v", len(got), err)
		}
		for _, resp := range m.GetResponses() {
			if got[resp.GetClientId()] != nil {
				t.Fatalf("client %d answered twice", resp.GetClientId())
			}
			got[resp.GetClientId()] = resp
		}
	}
	for i := range n {
		if r := got[uint64(i+1)]; r.GetCode() != 0 || r.GetSeq() != 1 || string(r.GetValue()) != fmt.Sprint("v", i) {
			t.Errorf("client %d answered %v, want %q", i+1, r, fmt.Sprint("v", i))
		}
	}
	if r := got[999]; codes.Code(r.GetCode()) != codes.InvalidArgument || !strings.Contains(r.GetMessage(), "seq") {
		t.Errorf("bad request answered %v, want InvalidArgument naming seq", r)
	}
}

// A replica reads no further message while it holds its bound of a
// stream's requests: one message may take it past the bound, and the next
// is read only once answers free room.
func TestProposeBatches_NoMessageIsReadWhileTheBoundIsHeld(t *testing.T) {
	h := newStreamHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := h.client.ProposeBatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	over := &epaxospb.ProposeRequests{}
	for i := range MaxStreamInFlight + 10 {
		over.Requests = append(over.Requests, write(uint64(i+1), 1, "k", "v"))
	}
	if err := st.Send(over); err != nil {
		t.Fatal(err)
	}
	next := &epaxospb.ProposeRequests{Requests: []*epaxospb.ProposeRequest{write(5000, 1, "late", "v")}}
	if err := st.Send(next); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first message proposed", func() bool { return len(h.d.proposals) == MaxStreamInFlight+10 })
	// The second message is unread until answers bring the stream under
	// its bound; as the harness applies in order, it is proposed only after
	// at least 11 answers.
	h.release <- 10
	answered := 0
	for answered < 10 {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		answered += len(m.GetResponses())
	}
	if got := len(h.d.proposals); got != MaxStreamInFlight {
		t.Fatalf("%d proposals queued with the stream at its bound, want %d: a message was read past it", got, MaxStreamInFlight)
	}
	h.release <- 1
	for answered < 11 {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		answered += len(m.GetResponses())
	}
	// 1023 of the first message wait; the 1024th is the second message's.
	waitUntil(t, "the second message proposed once there is room", func() bool { return len(h.d.proposals) == MaxStreamInFlight })
	h.release <- MaxStreamInFlight
	for answered < MaxStreamInFlight+11 {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d answers: %v", answered, err)
		}
		answered += len(m.GetResponses())
	}
}

// sentBatches records what batched.send sends.
type sentBatches struct {
	grpc.BidiStreamingServer[epaxospb.ProposeRequests, epaxospb.ProposeResponses]
	messages [][]*epaxospb.ProposeResponse
}

func (s *sentBatches) Send(m *epaxospb.ProposeResponses) error {
	s.messages = append(s.messages, m.Responses)
	return nil
}

// Answers go out in messages of at most MaxBatchBytes, in order, every
// answer exactly once; an answer larger than the bound goes alone.
func TestProposeBatches_AnswersAreSplitAtTheMessageBound(t *testing.T) {
	var resps []*epaxospb.ProposeResponse
	for i := range 10 {
		resps = append(resps, &epaxospb.ProposeResponse{ClientId: uint64(i), Value: make([]byte, 1<<20)})
	}
	resps = append(resps, &epaxospb.ProposeResponse{ClientId: 10, Value: make([]byte, MaxBatchBytes+1)})
	resps = append(resps, &epaxospb.ProposeResponse{ClientId: 11})
	rec := &sentBatches{}
	if err := (batched{rec}).send(resps); err != nil {
		t.Fatal(err)
	}
	next := uint64(0)
	for i, m := range rec.messages {
		size := 0
		for _, r := range m {
			if r.ClientId != next {
				t.Fatalf("message %d holds answer %d, want %d next", i, r.ClientId, next)
			}
			next++
			size += responseBytes(r)
		}
		if size > MaxBatchBytes && len(m) > 1 {
			t.Errorf("message %d holds %d answers of %d bytes, over the bound", i, len(m), size)
		}
	}
	if next != uint64(len(resps)) {
		t.Fatalf("%d answers sent, want %d", next, len(resps))
	}
	// Three 1 MiB answers fit in a message, so: 3, 3, 3, 1, the oversized
	// one alone, and the last, which does not fit beside it.
	if got := len(rec.messages); got != 6 {
		t.Errorf("%d messages, want 6", got)
	}
}
