package plugin

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/pluginpb"
)

// server serves a StateMachine over the Apply stream. It admits one stream at
// a time, so sm.Apply is only ever called from one goroutine, in the order
// batches arrive.
type server struct {
	pluginpb.UnimplementedStateMachineServer
	sm  StateMachine
	log hclog.Logger

	mu     sync.Mutex
	open   bool  // a stream is being served
	broken error // why sm may no longer be used; set once
}

func newServer(sm StateMachine, log hclog.Logger) *server {
	return &server{sm: sm, log: log}
}

func (s *server) Apply(stream pluginpb.StateMachine_ApplyServer) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := s.applyBatch(req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *server) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	if s.open {
		return status.Error(codes.FailedPrecondition, "another Apply stream is already open; batches must arrive on one stream")
	}
	s.open = true
	return nil
}

func (s *server) release() {
	s.mu.Lock()
	s.open = false
	s.mu.Unlock()
}

// breakWith records that sm can no longer be trusted, logs why (with the
// extra key-value pairs), and returns the error that fails the current stream
// and refuses every later one.
func (s *server) breakWith(batch uint64, extra []any, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	s.log.Error("state machine failed; refusing all further batches",
		append([]any{"batch", batch, "error", msg}, extra...)...)
	err := status.Errorf(codes.Internal, "batch %d: %s; the plugin refuses further batches", batch, msg)
	s.mu.Lock()
	s.broken = err
	s.mu.Unlock()
	return err
}

func (s *server) applyBatch(req *pluginpb.ApplyRequest) (*pluginpb.ApplyResponse, error) {
	cmds, err := commandsFromProto(req.GetCommands())
	if err != nil {
		// A host bug, caught before sm saw anything: the state is intact.
		return nil, status.Errorf(codes.InvalidArgument, "batch %d: %v", req.GetBatch(), err)
	}
	resp := &pluginpb.ApplyResponse{Batch: req.GetBatch()}
	if len(cmds) == 0 {
		return resp, nil
	}
	results, panicked := s.callApply(cmds)
	if panicked != nil {
		return nil, s.breakWith(req.GetBatch(), []any{"stack", string(panicked.stack)},
			"state machine panicked in Apply: %v", panicked.value)
	}
	if len(results) != len(cmds) {
		return nil, s.breakWith(req.GetBatch(), nil,
			"state machine returned %d results for %d commands, so results cannot be matched to commands",
			len(results), len(cmds))
	}
	resp.Results = resultsToProto(results)
	return resp, nil
}

type recovered struct {
	value any
	stack []byte
}

func (s *server) callApply(cmds []Command) (results []Result, panicked *recovered) {
	defer func() {
		if r := recover(); r != nil {
			panicked = &recovered{value: r, stack: debug.Stack()}
		}
	}()
	return s.sm.Apply(cmds), nil
}
