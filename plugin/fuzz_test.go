package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/pluginpb"
)

// FuzzPluginReply makes a plugin answer a batch of 1+ncmds%16 commands with
// arbitrary bytes as its ApplyResponse message, and checks what Host.Apply
// makes of them. The bytes go through protobuf decoding as gRPC would; the
// seed corpus (testdata/fuzz/FuzzPluginReply) has well-formed replies, too
// few and too many results, the wrong batch, huge values, unknown fields and
// malformed messages.
//
// Apply must never panic, and must return the plugin's results exactly when
// the bytes decode to the reply to this batch with exactly one result per
// command, each result as sent. Anything else is an error that names the
// plugin and the batch, says what was wrong, wraps ErrBroken, comes with no
// results, and is returned again by every later call without contacting the
// plugin.
func FuzzPluginReply(f *testing.F) {
	good, err := proto.Marshal(&pluginpb.ApplyResponse{Batch: 1, Results: []*pluginpb.Result{{Value: []byte("v")}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, uint8(0))
	f.Fuzz(func(t *testing.T, reply []byte, ncmds uint8) {
		n := 1 + int(ncmds)%16
		cmds := make([]Command, n)
		for i := range cmds {
			cmds[i] = Command{Access: Write, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}
		}
		stream := &replyStream{reply: reply}
		h := newHost("fuzz", hclog.NewNullLogger(), stream, func() {},
			func() error { return nil }, func() {})
		defer h.Close()

		results, err := h.Apply(context.Background(), cmds)

		var want pluginpb.ApplyResponse
		decodeErr := proto.Unmarshal(reply, &want)
		if len(stream.sent) != 1 || stream.sent[0].GetBatch() != 1 || len(stream.sent[0].GetCommands()) != n {
			t.Fatalf("sent %d requests, want one of batch 1 with %d commands: %v", len(stream.sent), n, stream.sent)
		}
		var reason string // what the error must say; "" if the reply is good
		switch {
		case decodeErr != nil:
			reason = "unmarshal"
		case want.GetBatch() != 1:
			reason = fmt.Sprintf("answered batch %d instead", want.GetBatch())
		case len(want.GetResults()) != n:
			reason = fmt.Sprintf("returned %d results for %d commands", len(want.GetResults()), n)
		}

		if reason == "" {
			if err != nil {
				t.Fatalf("good reply with %d results refused: %v", n, err)
			}
			if len(results) != n {
				t.Fatalf("got %d results for %d commands", len(results), n)
			}
			for i, r := range results {
				w := want.GetResults()[i]
				if !bytes.Equal(r.Value, w.GetValue()) || r.Error != w.GetError() {
					t.Fatalf("result %d = %q/%q, plugin sent %q/%q", i, r.Value, r.Error, w.GetValue(), w.GetError())
				}
			}
			return
		}

		if err == nil || results != nil {
			t.Fatalf("bad reply (%s): Apply returned %d results and error %v", reason, len(results), err)
		}
		msg := err.Error()
		if !errors.Is(err, ErrBroken) || !strings.Contains(msg, "plugin fuzz: batch 1 failed") || !strings.Contains(msg, reason) {
			t.Fatalf("bad reply: error %q, want ErrBroken naming plugin fuzz and batch 1 and saying %q", msg, reason)
		}
		again, err2 := h.Apply(context.Background(), cmds)
		if again != nil || err2 != err || len(stream.sent) != 1 {
			t.Fatalf("Apply after a bad reply: %d results, error %v, %d requests sent; want the same error and nothing sent",
				len(again), err2, len(stream.sent))
		}
	})
}

// replyStream is the host's end of an Apply stream whose plugin answers
// every request with the same bytes, decoded as gRPC decodes a message.
type replyStream struct {
	grpc.ClientStream // nil: Host uses only Send and Recv
	reply             []byte
	sent              []*pluginpb.ApplyRequest
}

func (s *replyStream) Send(req *pluginpb.ApplyRequest) error {
	s.sent = append(s.sent, req)
	return nil
}

func (s *replyStream) Recv() (*pluginpb.ApplyResponse, error) {
	resp := new(pluginpb.ApplyResponse)
	if err := proto.Unmarshal(s.reply, resp); err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return resp, nil
}
