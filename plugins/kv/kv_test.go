package kv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/plugins/kv"
)

func read(k string) plugin.Command { return plugin.Command{Access: plugin.Read, Key: []byte(k)} }
func del(k string) plugin.Command  { return plugin.Command{Access: plugin.Delete, Key: []byte(k)} }
func write(k, v string) plugin.Command {
	return plugin.Command{Access: plugin.Write, Key: []byte(k), Value: []byte(v)}
}

// step is one command and the result it must get, the value compared as a
// string so that nil and empty are the same.
type step struct {
	cmd       plugin.Command
	wantValue string
	wantError string // substring; "" means no error
}

// check applies the steps one command per batch and compares the results.
func check(t *testing.T, sm plugin.StateMachine, steps []step) {
	t.Helper()
	for i, s := range steps {
		res := sm.Apply([]plugin.Command{s.cmd})
		if len(res) != 1 {
			t.Fatalf("step %d (%v %q): got %d results, want 1", i, s.cmd.Access, s.cmd.Key, len(res))
		}
		got := res[0]
		if string(got.Value) != s.wantValue {
			t.Errorf("step %d (%v %q): value %q, want %q", i, s.cmd.Access, s.cmd.Key, got.Value, s.wantValue)
		}
		switch {
		case s.wantError == "" && got.Error != "":
			t.Errorf("step %d (%v %q): unexpected error %q", i, s.cmd.Access, s.cmd.Key, got.Error)
		case s.wantError != "" && !strings.Contains(got.Error, s.wantError):
			t.Errorf("step %d (%v %q): error %q, want it to contain %q", i, s.cmd.Access, s.cmd.Key, got.Error, s.wantError)
		}
	}
}

func TestStore_Semantics(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"ReadOfAbsentKeyIsEmpty", []step{
			{cmd: read("k")},
		}},
		{"WriteReturnsEmptyAndReadReturnsValue", []step{
			{cmd: write("k", "v1")},
			{cmd: read("k"), wantValue: "v1"},
		}},
		{"WriteOverwrites", []step{
			{cmd: write("k", "v1")},
			{cmd: write("k", "v2")},
			{cmd: read("k"), wantValue: "v2"},
		}},
		{"DeleteRemovesKeyAndReturnsEmpty", []step{
			{cmd: write("k", "v")},
			{cmd: del("k")},
			{cmd: read("k")},
		}},
		{"DeleteOfAbsentKeyIsNoOp", []step{
			{cmd: del("k")},
			{cmd: read("k")},
		}},
		{"KeysAreIndependent", []step{
			{cmd: write("a", "1")},
			{cmd: write("b", "2")},
			{cmd: del("a")},
			{cmd: read("a")},
			{cmd: read("b"), wantValue: "2"},
		}},
		{"EmptyKeyIsAKey", []step{
			{cmd: write("", "v")},
			{cmd: read(""), wantValue: "v"},
		}},
		{"UnknownAccessIsErrorReplyAndNoOp", []step{
			{cmd: write("k", "v")},
			{cmd: plugin.Command{Access: 9, Key: []byte("k"), Value: []byte("x")}, wantError: "unsupported access"},
			{cmd: read("k"), wantValue: "v"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, kv.New(), tt.steps) })
	}
}

func TestStore_WriteDoesNotRetainCommandValue(t *testing.T) {
	s := kv.New()
	cmd := write("k", "v")
	s.Apply([]plugin.Command{cmd})
	cmd.Value[0] = 'X' // the caller reuses its buffer, as the contract allows
	if got := s.Apply([]plugin.Command{read("k")})[0].Value; string(got) != "v" {
		t.Fatalf("read after caller reused its buffer = %q, want %q", got, "v")
	}
}

func TestStore_LaterCommandsInABatchSeeEarlierOnes(t *testing.T) {
	res := kv.New().Apply([]plugin.Command{write("k", "1"), read("k"), del("k"), read("k"), write("k", "2"), read("k")})
	want := []string{"", "1", "", "", "", "2"}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d", len(res), len(want))
	}
	for i := range want {
		if string(res[i].Value) != want[i] || res[i].Error != "" {
			t.Errorf("result %d = %+v, want value %q", i, res[i], want[i])
		}
	}
}

// Replicas cut batches at different places; the results must not depend on it.
func TestStore_BatchBoundariesDoNotMatter(t *testing.T) {
	var cmds []plugin.Command
	for i := range 30 {
		k := fmt.Sprint("k", i%4)
		switch i % 3 {
		case 0:
			cmds = append(cmds, write(k, fmt.Sprint(i)))
		case 1:
			cmds = append(cmds, read(k))
		case 2:
			cmds = append(cmds, del(k))
		}
	}
	whole := kv.New().Apply(cmds)
	for _, size := range []int{1, 2, 7} {
		s := kv.New()
		var split []plugin.Result
		for i := 0; i < len(cmds); i += size {
			split = append(split, s.Apply(cmds[i:min(i+size, len(cmds))])...)
		}
		for i := range whole {
			if string(split[i].Value) != string(whole[i].Value) || split[i].Error != whole[i].Error {
				t.Fatalf("batch size %d: result %d = %+v, one batch gave %+v", size, i, split[i], whole[i])
			}
		}
	}
}

// The same semantics hold through the gRPC stream that carries them.
func TestStore_OverTheWire(t *testing.T) {
	h := plugin.TestHost(t, kv.New())
	res, err := h.Apply(context.Background(), []plugin.Command{write("k", "v"), read("k"), read("absent")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || string(res[1].Value) != "v" || len(res[2].Value) != 0 {
		t.Fatalf("results = %+v, want [{} {v} {}]", res)
	}
}
