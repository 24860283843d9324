package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/pluginpb"
)

// These tests run the plugin side in-process through TestHost, so the race
// detector sees both ends.

// funcSM adapts a function to StateMachine.
type funcSM func([]Command) []Result

func (f funcSM) Apply(cmds []Command) []Result { return f(cmds) }

func TestAccess_String(t *testing.T) {
	for a, want := range map[Access]string{Read: "read", Write: "write", Delete: "delete", 0: "access(0)", 9: "access(9)"} {
		if got := a.String(); got != want {
			t.Errorf("Access(%d).String() = %q, want %q", uint8(a), got, want)
		}
	}
}

func TestApply_ResultsComeBackInCommandOrder(t *testing.T) {
	h := TestHost(t, echoSM{})
	var cmds []Command
	var want []string
	for i := range 100 {
		k := fmt.Sprint("k", i)
		cmds = append(cmds, cmd(Write, k, "v"))
		want = append(want, k)
	}
	rs, err := h.Apply(context.Background(), cmds)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, rs, want...)
}

func TestApply_ErrorRepliesAndEmptyValuesCrossTheWire(t *testing.T) {
	h := TestHost(t, funcSM(func(cmds []Command) []Result {
		return []Result{{Error: "bad value"}, {Value: nil}, {Value: []byte{}}, {Value: []byte{0, 1}}}
	}))
	rs, err := h.Apply(context.Background(), []Command{cmd(Write, "a", ""), cmd(Read, "", ""), cmd(Read, "c", ""), cmd(Delete, "d", "")})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Error != "bad value" || len(rs[1].Value) != 0 || len(rs[2].Value) != 0 || string(rs[3].Value) != "\x00\x01" {
		t.Fatalf("results = %+v", rs)
	}
}

func TestApply_EmptyBatchIsNotSent(t *testing.T) {
	h := TestHost(t, funcSM(func([]Command) []Result {
		t.Error("Apply called for an empty batch")
		return nil
	}))
	rs, err := h.Apply(context.Background(), nil)
	if err != nil || len(rs) != 0 {
		t.Fatalf("Apply(nil) = %v, %v; want no results, no error", rs, err)
	}
}

func TestApply_InvalidAccessIsRejectedBeforeSending(t *testing.T) {
	calls := 0
	h := TestHost(t, funcSM(func(cmds []Command) []Result {
		calls++
		return make([]Result, len(cmds))
	}))
	_, err := h.Apply(context.Background(), []Command{cmd(Read, "a", ""), {Access: 7, Key: []byte("b")}})
	if err == nil || errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "access(7)") {
		t.Fatalf("Apply with an invalid access: error = %v, want a non-broken error naming access(7)", err)
	}
	if _, err := h.Apply(context.Background(), []Command{cmd(Read, "a", "")}); err != nil {
		t.Fatalf("Apply after a rejected batch: %v", err)
	}
	if calls != 1 {
		t.Fatalf("state machine called %d times, want 1", calls)
	}
}

func TestApply_WrongResultCountBreaksThePlugin(t *testing.T) {
	calls := 0
	h := TestHost(t, funcSM(func(cmds []Command) []Result {
		calls++
		return make([]Result, len(cmds)-1)
	}))
	ctx := context.Background()
	_, err := h.Apply(ctx, []Command{cmd(Write, "a", ""), cmd(Write, "b", "")})
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "returned 1 results for 2 commands") {
		t.Fatalf("Apply with a short result list: error = %v, want ErrBroken explaining the count", err)
	}
	if _, again := h.Apply(ctx, []Command{cmd(Write, "c", "")}); again != err {
		t.Fatalf("Apply after the failure: error = %v, want the same error %v", again, err)
	}
	if calls != 1 {
		t.Fatalf("state machine called %d times, want 1", calls)
	}
}

func TestApply_PanicBreaksThePlugin(t *testing.T) {
	h := TestHost(t, funcSM(func([]Command) []Result { panic("invariant broken") }))
	_, err := h.Apply(context.Background(), []Command{cmd(Write, "a", "")})
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "panicked in Apply: invariant broken") {
		t.Fatalf("Apply of a panicking state machine: error = %v, want ErrBroken with the panic", err)
	}
}

// After a panic the server refuses every later stream, not just the rest of
// the one it happened on: the state may be half-modified.
func TestServer_RefusesStreamsAfterAPanic(t *testing.T) {
	srv := newServer(funcSM(func([]Command) []Result { panic("invariant broken") }), quietLogger())
	req := &pluginpb.ApplyRequest{Batch: 4, Commands: []*pluginpb.Command{{Access: pluginpb.Access_WRITE, Key: []byte("a")}}}
	if _, err := srv.applyBatch(req); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "batch 4") {
		t.Fatalf("applyBatch with a panicking state machine: error = %v, want Internal naming batch 4", err)
	}
	if err := srv.acquire(); err == nil || !strings.Contains(err.Error(), "invariant broken") {
		t.Fatalf("a new stream after the panic: error = %v, want a refusal carrying the panic", err)
	}
}

func TestServer_AdmitsOneStreamAtATime(t *testing.T) {
	srv := newServer(echoSM{}, quietLogger())
	if err := srv.acquire(); err != nil {
		t.Fatal(err)
	}
	if err := srv.acquire(); err == nil {
		t.Fatal("a second concurrent stream was admitted")
	}
	srv.release()
	if err := srv.acquire(); err != nil {
		t.Fatalf("a stream after the first ended: %v", err)
	}
}

func TestApply_ContextDoneBeforeSendingLeavesHostUsable(t *testing.T) {
	h := TestHost(t, echoSM{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Apply(ctx, []Command{cmd(Write, "a", "")}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrBroken) {
		t.Fatalf("Apply with a done context: error = %v, want context.Canceled and not ErrBroken", err)
	}
	rs, err := h.Apply(context.Background(), []Command{cmd(Write, "b", "")})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, rs, "b")
}

func TestApply_ContextEndingInFlightBreaksHost(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := TestHost(t, funcSM(func(cmds []Command) []Result {
		close(entered)
		<-release
		return make([]Result, len(cmds))
	}))
	defer close(release) // before TestHost's cleanup, which waits for the server

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := h.Apply(ctx, []Command{cmd(Write, "a", "")})
	if !errors.Is(err, ErrBroken) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply abandoned in flight: error = %v, want ErrBroken and context.Canceled", err)
	}
	if _, again := h.Apply(context.Background(), []Command{cmd(Write, "b", "")}); again != err {
		t.Fatalf("Apply after the failure: error = %v, want the same error %v", again, err)
	}
}

// Concurrent callers are serialized: the state machine (which has no lock, so
// the race detector would see overlap) gets whole batches, one at a time, and
// each caller gets its own batch's results.
func TestApply_ConcurrentCallersAreSerialized(t *testing.T) {
	var applied []string
	h := TestHost(t, funcSM(func(cmds []Command) []Result {
		rs := make([]Result, len(cmds))
		for i, c := range cmds {
			applied = append(applied, string(c.Key))
			rs[i] = Result{Value: c.Key}
		}
		return rs
	}))
	const callers, batches = 8, 20
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for b := range batches {
				k1, k2 := fmt.Sprintf("%d/%d/1", c, b), fmt.Sprintf("%d/%d/2", c, b)
				rs, err := h.Apply(context.Background(), []Command{cmd(Write, k1, ""), cmd(Write, k2, "")})
				if err != nil {
					t.Error(err)
					return
				}
				if got := values(rs); got[0] != k1 || got[1] != k2 {
					t.Errorf("caller %d batch %d got results %q", c, b, got)
				}
			}
		})
	}
	wg.Wait()
	h.Close() // the state machine is no longer called; reading applied is safe

	if len(applied) != 2*callers*batches {
		t.Fatalf("applied %d commands, want %d", len(applied), 2*callers*batches)
	}
	next := make(map[string]int) // caller -> next batch expected
	for i := 0; i < len(applied); i += 2 {
		var c, b int
		if _, err := fmt.Sscanf(applied[i], "%d/%d/1", &c, &b); err != nil || applied[i+1] != fmt.Sprintf("%d/%d/2", c, b) {
			t.Fatalf("commands %d,%d = %q,%q: not one whole batch", i, i+1, applied[i], applied[i+1])
		}
		if key := fmt.Sprint(c); next[key] != b {
			t.Fatalf("caller %d: batch %d applied when %d was next", c, b, next[key])
		} else {
			next[key]++
		}
	}
}

func TestPing_HealthyThenClosed(t *testing.T) {
	h := TestHost(t, echoSM{})
	if err := h.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	h.Close()
	if err := h.Ping(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
}
