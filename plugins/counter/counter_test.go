package counter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/epaxosd/epaxosd/plugin"
	"github.com/epaxosd/epaxosd/plugins/counter"
)

func read(k string) plugin.Command { return plugin.Command{Access: plugin.Read, Key: []byte(k)} }
func del(k string) plugin.Command  { return plugin.Command{Access: plugin.Delete, Key: []byte(k)} }
func add(k, v string) plugin.Command {
	return plugin.Command{Access: plugin.Write, Key: []byte(k), Value: []byte(v)}
}

// step is one command and the result it must get.
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
			t.Fatalf("step %d (%v %q %q): got %d results, want 1", i, s.cmd.Access, s.cmd.Key, s.cmd.Value, len(res))
		}
		got := res[0]
		if s.wantError == "" && string(got.Value) != s.wantValue {
			t.Errorf("step %d (%v %q %q): value %q, want %q", i, s.cmd.Access, s.cmd.Key, s.cmd.Value, got.Value, s.wantValue)
		}
		switch {
		case s.wantError == "" && got.Error != "":
			t.Errorf("step %d (%v %q %q): unexpected error %q", i, s.cmd.Access, s.cmd.Key, s.cmd.Value, got.Error)
		case s.wantError != "" && !strings.Contains(got.Error, s.wantError):
			t.Errorf("step %d (%v %q %q): error %q, want it to contain %q", i, s.cmd.Access, s.cmd.Key, s.cmd.Value, got.Error, s.wantError)
		}
	}
}

func TestCounter_Semantics(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"ReadOfNeverWrittenKeyIsZero", []step{
			{cmd: read("k"), wantValue: "0"},
		}},
		{"WriteAddsAndReturnsNewTotal", []step{
			{cmd: add("k", "5"), wantValue: "5"},
			{cmd: add("k", "3"), wantValue: "8"},
			{cmd: read("k"), wantValue: "8"},
		}},
		{"SignedValuesAreAccepted", []step{
			{cmd: add("k", "+5"), wantValue: "5"},
			{cmd: add("k", "-7"), wantValue: "-2"},
			{cmd: add("k", "-0"), wantValue: "-2"},
			{cmd: add("k", "007"), wantValue: "5"},
		}},
		{"DeleteResetsToZeroAndReturnsEmpty", []step{
			{cmd: add("k", "5"), wantValue: "5"},
			{cmd: del("k")},
			{cmd: read("k"), wantValue: "0"},
			{cmd: add("k", "1"), wantValue: "1"},
		}},
		{"KeysHaveSeparateTotals", []step{
			{cmd: add("a", "1"), wantValue: "1"},
			{cmd: add("b", "10"), wantValue: "10"},
			{cmd: del("a")},
			{cmd: read("a"), wantValue: "0"},
			{cmd: read("b"), wantValue: "10"},
		}},
		{"ExtremesAreReachable", []step{
			{cmd: add("max", "9223372036854775807"), wantValue: "9223372036854775807"},
			{cmd: add("min", "-9223372036854775808"), wantValue: "-9223372036854775808"},
		}},
		{"UnknownAccessIsErrorReplyAndNoOp", []step{
			{cmd: add("k", "2"), wantValue: "2"},
			{cmd: plugin.Command{Access: 9, Key: []byte("k"), Value: []byte("1")}, wantError: "unsupported access"},
			{cmd: read("k"), wantValue: "2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, counter.New(), tt.steps) })
	}
}

func TestCounter_NonIntegerIsErrorReplyAndNoOp(t *testing.T) {
	for _, value := range []string{"", "abc", "1.5", " 1", "1 ", "0x10", "1_000", "1e3", "+", "--1", "١"} {
		t.Run(fmt.Sprintf("%q", value), func(t *testing.T) {
			check(t, counter.New(), []step{
				{cmd: add("k", "4"), wantValue: "4"},
				{cmd: add("k", value), wantError: "is not a decimal integer"},
				{cmd: read("k"), wantValue: "4"},
			})
		})
	}
}

func TestCounter_OverflowIsErrorReplyAndNoOp(t *testing.T) {
	tests := []struct {
		name      string
		start     string
		value     string
		wantError string
	}{
		{"ValueAboveInt64", "1", "9223372036854775808", "out of the int64 range"},
		{"ValueBelowInt64", "1", "-9223372036854775809", "out of the int64 range"},
		{"SumAboveInt64", "9223372036854775807", "1", "overflows int64"},
		{"SumBelowInt64", "-9223372036854775808", "-1", "overflows int64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, counter.New(), []step{
				{cmd: add("k", tt.start), wantValue: tt.start},
				{cmd: add("k", tt.value), wantError: tt.wantError},
				{cmd: read("k"), wantValue: tt.start},
			})
		})
	}
}

func TestCounter_ErrorQuotesLongValuesShortened(t *testing.T) {
	res := counter.New().Apply([]plugin.Command{add("k", strings.Repeat("x", 10_000))})
	if n := len(res[0].Error); n == 0 || n > 200 {
		t.Fatalf("error reply %q has length %d, want a short message", res[0].Error, n)
	}
}

// Replicas cut batches at different places; the results must not depend on it.
func TestCounter_BatchBoundariesDoNotMatter(t *testing.T) {
	var cmds []plugin.Command
	for i := range 40 {
		k := fmt.Sprint("k", i%3)
		switch i % 5 {
		case 0, 1:
			cmds = append(cmds, add(k, fmt.Sprint(i-20)))
		case 2:
			cmds = append(cmds, read(k))
		case 3:
			cmds = append(cmds, add(k, "nope"))
		case 4:
			if i%10 == 4 {
				cmds = append(cmds, del(k))
			} else {
				cmds = append(cmds, read(k))
			}
		}
	}
	whole := counter.New().Apply(cmds)
	for _, size := range []int{1, 3, 8} {
		c := counter.New()
		var split []plugin.Result
		for i := 0; i < len(cmds); i += size {
			split = append(split, c.Apply(cmds[i:min(i+size, len(cmds))])...)
		}
		for i := range whole {
			if string(split[i].Value) != string(whole[i].Value) || split[i].Error != whole[i].Error {
				t.Fatalf("batch size %d: result %d = %+v, one batch gave %+v", size, i, split[i], whole[i])
			}
		}
	}
}

// The same semantics hold through the gRPC stream that carries them.
func TestCounter_OverTheWire(t *testing.T) {
	h := plugin.TestHost(t, counter.New())
	res, err := h.Apply(context.Background(), []plugin.Command{add("k", "2"), add("k", "x"), read("k")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || string(res[0].Value) != "2" || res[1].Error == "" || string(res[2].Value) != "2" {
		t.Fatalf("results = %+v, want [{2} {error} {2}]", res)
	}
}
