package session

import (
	"fmt"
	"testing"

	"github.com/epaxosd/epaxosd/plugin"
)

func pc(client, seq uint64, v string) Command {
	return Command{Client: client, Seq: seq, Cmd: plugin.Command{Access: plugin.Write, Key: []byte("k"), Value: []byte(v)}}
}

// applyAll runs a batch through filter and record with a fake state machine
// that echoes each applied value, and returns what it applied.
func applyAll(s *Table, cmds ...Command) []string {
	slots, batch := s.Filter(cmds)
	results := make([]plugin.Result, len(batch))
	applied := make([]string, len(batch))
	for i, c := range batch {
		results[i] = plugin.Result{Value: c.Value}
		applied[i] = string(c.Value)
	}
	s.Record(cmds, slots, results)
	return applied
}

// A command retried through another replica commits twice; the session
// table applies it once, and the retry gets the first result.
func TestSessions_RetriedCommandIsAppliedOnceAndAnsweredWithFirstResult(t *testing.T) {
	s := New()
	_, done, ch, cancel := s.Wait(7, 1)
	if done {
		t.Fatal("unapplied command reported done")
	}
	defer cancel()
	if got := applyAll(s, pc(7, 1, "a")); fmt.Sprint(got) != "[a]" {
		t.Fatalf("applied %v", got)
	}
	if r := <-ch; string(r.Value) != "a" || r.Stale {
		t.Fatalf("waiter got %+v", r)
	}
	// The retry's instance executes later: skipped, same answer.
	_, _, ch2, cancel2 := s.Wait(8, 1) // an unrelated waiter must not be woken
	defer cancel2()
	if got := applyAll(s, pc(7, 1, "a-again")); len(got) != 0 {
		t.Fatalf("duplicate applied: %v", got)
	}
	r, done, _, _ := s.Wait(7, 1)
	if !done || string(r.Value) != "a" {
		t.Fatalf("retry answered %+v done=%v, want the first result", r, done)
	}
	select {
	case r := <-ch2:
		t.Fatalf("waiter of another client woken with %+v", r)
	default:
	}
}

// An older request of a client that has moved on is never applied after a
// newer one: it would reorder the client's own commands.
func TestSessions_OlderSeqAfterNewerIsSkippedAndReportedStale(t *testing.T) {
	s := New()
	applyAll(s, pc(7, 2, "new"))
	if got := applyAll(s, pc(7, 1, "old")); len(got) != 0 {
		t.Fatalf("stale command applied: %v", got)
	}
	if r, done, _, _ := s.Wait(7, 1); !done || !r.Stale {
		t.Fatalf("stale request answered %+v done=%v", r, done)
	}
}

// Duplicates inside one batch: the first is applied, the second answered
// with its result.
func TestSessions_DuplicateInOneBatchAppliedOnce(t *testing.T) {
	s := New()
	_, _, ch, cancel := s.Wait(9, 4)
	defer cancel()
	if got := applyAll(s, pc(9, 4, "x"), pc(3, 1, "y"), pc(9, 4, "x")); fmt.Sprint(got) != "[x y]" {
		t.Fatalf("applied %v, want [x y]", got)
	}
	if r := <-ch; string(r.Value) != "x" {
		t.Fatalf("waiter got %+v", r)
	}
}

// Pipelined batches: a retry in the second batch is filtered out although
// the first batch, which applied the command, is not recorded yet; no
// result is visible before its batch is recorded, and the retry gets the
// first result once both are.
func TestSessions_RetryAcrossPipelinedBatchesIsAppliedOnce(t *testing.T) {
	s := New()
	first := []Command{pc(7, 1, "a")}
	slots1, batch1 := s.Filter(first)
	second := []Command{pc(7, 1, "a-again"), pc(8, 1, "b")}
	slots2, batch2 := s.Filter(second)
	if len(batch1) != 1 || len(batch2) != 1 || string(batch2[0].Value) != "b" {
		t.Fatalf("filtered %d then %v, want the retry skipped and b passed", len(batch1), batch2)
	}
	if _, done, _, _ := s.Wait(7, 1); done {
		t.Fatal("a result is visible before its batch was recorded")
	}
	s.Record(first, slots1, []plugin.Result{{Value: []byte("a")}})
	s.Record(second, slots2, []plugin.Result{{Value: []byte("b")}})
	if r, done, _, _ := s.Wait(7, 1); !done || string(r.Value) != "a" {
		t.Fatalf("the retried command answered %+v done=%v, want the first result", r, done)
	}
	// Nothing is left pending: a new request of client 7 is applied.
	if got := applyAll(s, pc(7, 2, "c")); fmt.Sprint(got) != "[c]" {
		t.Fatalf("applied %v, want [c]", got)
	}
}

// ResetState (a rebuild by replay) forgets batches filtered but never
// recorded: their commands are applied again by the replay.
func TestSessions_ResetForgetsUnrecordedBatches(t *testing.T) {
	s := New()
	s.Filter([]Command{pc(7, 1, "a")}) // applied to a plugin that then died
	s.ResetState()
	if got := applyAll(s, pc(7, 1, "a")); fmt.Sprint(got) != "[a]" {
		t.Fatalf("replay applied %v, want [a]", got)
	}
}
