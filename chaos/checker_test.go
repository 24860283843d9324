package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/epaxosd/epaxosd/client"
)

// Unit tests of the harness's pure parts: they run anywhere, as any user.

// h builds a history from compact descriptions: each entry is
// (access, key, value-or-output, call, return, outcome).
func hop(access client.Access, key, v string, call, ret int64, out outcome) op {
	o := op{Worker: int(call % 7), Replica: -1, Access: access, Key: key, Call: call, Return: ret, Outcome: out}
	if access == client.Write {
		o.Value = v
	} else {
		o.Output = v
	}
	return o
}

func verdict(ops []op) porcupine.CheckResult {
	for i := range ops {
		ops[i].Proc = i
	}
	return checkLinearizable(ops, 10*time.Second).Result
}

func TestChecker_AcceptsLinearizableHistories(t *testing.T) {
	for name, ops := range map[string][]op{
		"sequential": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Read, "a", "1", 20, 30, ok),
			hop(client.Delete, "a", "", 40, 50, ok),
			hop(client.Read, "a", "", 60, 70, ok),
		},
		"concurrent read sees either value": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Write, "a", "2", 20, 50, ok),
			hop(client.Read, "a", "1", 25, 30, ok),
			hop(client.Read, "a", "2", 35, 40, ok),
		},
		"indeterminate write observed long after": {
			hop(client.Write, "a", "1", 0, 10, indeterminate),
			hop(client.Read, "a", "", 20, 30, ok),
			hop(client.Read, "a", "1", 1000, 1010, ok),
		},
		"indeterminate write that never happened": {
			hop(client.Write, "a", "1", 0, 10, indeterminate),
			hop(client.Read, "a", "", 20, 30, ok),
		},
		"indeterminate delete lands late": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Delete, "a", "", 20, 30, indeterminate),
			hop(client.Read, "a", "1", 40, 50, ok),
			hop(client.Read, "a", "", 60, 70, ok),
		},
		"failed write left out": {
			hop(client.Write, "a", "1", 0, 10, failed),
			hop(client.Read, "a", "", 20, 30, ok),
		},
		"keys are independent": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Read, "b", "", 20, 30, ok),
			hop(client.Read, "a", "1", 20, 30, ok),
		},
	} {
		if got := verdict(ops); got != porcupine.Ok {
			t.Errorf("%s: %v, want Ok", name, got)
		}
	}
}

func TestChecker_RejectsNonLinearizableHistories(t *testing.T) {
	for name, ops := range map[string][]op{
		"read of a value never written": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Read, "a", "7", 20, 30, ok),
		},
		"stale read after an acknowledged write": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Write, "a", "2", 20, 30, ok),
			hop(client.Read, "a", "1", 40, 50, ok),
		},
		"read of a failed write": {
			hop(client.Write, "a", "1", 0, 10, failed),
			hop(client.Read, "a", "1", 20, 30, ok),
		},
		"deleted key still read": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Delete, "a", "", 20, 30, ok),
			hop(client.Read, "a", "1", 40, 50, ok),
		},
		"value flips back": {
			hop(client.Write, "a", "1", 0, 10, ok),
			hop(client.Write, "a", "2", 0, 10, ok),
			hop(client.Read, "a", "1", 20, 30, ok),
			hop(client.Read, "a", "2", 40, 50, ok),
			hop(client.Read, "a", "1", 60, 70, ok),
		},
		"indeterminate write cannot undo a later acknowledged one": {
			hop(client.Write, "a", "1", 0, 10, indeterminate),
			hop(client.Read, "a", "1", 20, 30, ok),
			hop(client.Write, "a", "2", 40, 50, ok),
			hop(client.Read, "a", "1", 60, 70, ok),
		},
	} {
		if got := verdict(ops); got != porcupine.Illegal {
			t.Errorf("%s: %v, want Illegal", name, got)
		}
	}
}

func TestChecker_VisualizesAFailure(t *testing.T) {
	ops := []op{
		hop(client.Write, "a", "1", 0, 10, ok),
		hop(client.Read, "a", "7", 20, 30, ok),
	}
	ops = append(ops, hop(client.Write, "b", "2", 0, 10, ok))
	l := checkLinearizable(ops, 10*time.Second)
	if l.Result != porcupine.Illegal || !reflect.DeepEqual(l.BadKeys, []string{"a"}) || !strings.Contains(l.Detail, `key "a"`) {
		t.Fatalf("result %v, bad keys %q, detail %q", l.Result, l.BadKeys, l.Detail)
	}
	path := filepath.Join(t.TempDir(), "v.html")
	if err := visualize(ops, l.BadKeys, path, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "read(a)") || strings.Contains(string(b), "write(b") {
		t.Errorf("the visualisation is not of key a alone (%v)", err)
	}
}

func TestLostWrites(t *testing.T) {
	ops := []op{
		hop(client.Write, "a", "1", 0, 10, ok),
		hop(client.Write, "a", "2", 20, 30, ok),
		hop(client.Write, "b", "3", 0, 10, ok),
		hop(client.Write, "b", "4", 5, 15, indeterminate),
		hop(client.Write, "c", "5", 0, 10, ok),
		hop(client.Delete, "c", "", 20, 30, ok),
	}
	// a ends with the last acknowledged write; b with a concurrent
	// indeterminate one; c deleted after: nothing lost.
	if lost := lostWrites(ops, map[string]string{"a": "2", "b": "4", "c": ""}); len(lost) != 0 {
		t.Errorf("lost %q", lost)
	}
	// a ends with the write that the later acknowledged one overwrote.
	lost := lostWrites(ops, map[string]string{"a": "1", "b": "3", "c": "5"})
	if len(lost) != 2 || !strings.Contains(lost[0], `write(a, "2")`) || !strings.Contains(lost[1], "delete(c)") {
		t.Errorf("lost %q, want write(a, 2) and delete(c)", lost)
	}
}

func TestClassify(t *testing.T) {
	if o, _ := classify(nil); o != ok {
		t.Errorf("nil: %v", o)
	}
	if o, _ := classify(fmt.Errorf("wrapped: %w", &client.ReplyError{Message: "no"})); o != failed {
		t.Errorf("reply error: %v", o)
	}
	if o, _ := classify(fmt.Errorf("propose: %w", errTimeout)); o != indeterminate {
		t.Errorf("timeout: %v", o)
	}
}

var errTimeout = fmt.Errorf("context deadline exceeded")

// The partition builder: from a shape to the peers each replica drops.
func TestPartition_Drops(t *testing.T) {
	for _, tc := range []struct {
		p    partition
		n    int
		want [][]int
	}{
		{partition{}, 3, [][]int{nil, nil, nil}},
		{partition{Kind: "minority", Groups: [][]int{{1}, {0, 2}}}, 3, [][]int{{1}, {0, 2}, {1}}},
		{partition{Kind: "split", Groups: [][]int{{0}, {1}, {2}}}, 3, [][]int{{1, 2}, {0, 2}, {0, 1}}},
		{partition{Kind: "bridge", Bridge: 0, Groups: [][]int{{1}, {2}}}, 3, [][]int{nil, {2}, {1}}},
		{partition{Kind: "minority", Groups: [][]int{{0, 3}, {1, 2, 4}}}, 5,
			[][]int{{1, 2, 4}, {0, 3}, {0, 3}, {1, 2, 4}, {0, 3}}},
		{partition{Kind: "split", Groups: [][]int{{0, 1}, {2, 3}, {4}}}, 5,
			[][]int{{2, 3, 4}, {2, 3, 4}, {0, 1, 4}, {0, 1, 4}, {0, 1, 2, 3}}},
		{partition{Kind: "bridge", Bridge: 2, Groups: [][]int{{0, 1}, {3, 4}}}, 5,
			[][]int{{3, 4}, {3, 4}, nil, {0, 1}, {0, 1}}},
	} {
		if got := tc.p.drops(tc.n); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v over %d: drops %v, want %v", tc.p, tc.n, got, tc.want)
		}
	}
}

func TestPartition_Scripts(t *testing.T) {
	ips := []string{"10.9.9.11", "10.9.9.12", "10.9.9.13"}
	scripts := partitionScripts(partition{Kind: "bridge", Bridge: 0, Groups: [][]int{{1}, {2}}}, ips)
	heal := "table inet epaxos_chaos\ndelete table inet epaxos_chaos\n"
	if scripts[0] != heal {
		t.Errorf("the bridge drops something:\n%s", scripts[0])
	}
	for i, peer := range map[int]string{1: ips[2], 2: ips[1]} {
		s := scripts[i]
		if !strings.HasPrefix(s, heal) ||
			!strings.Contains(s, "type filter hook input priority 0; policy accept;\n\t\tip saddr { "+peer+" } drop") ||
			!strings.Contains(s, "type filter hook output priority 0; policy accept;\n\t\tip daddr { "+peer+" } drop") {
			t.Errorf("r%d's rules do not drop exactly %s both ways:\n%s", i, peer, s)
		}
	}
	if s := partitionScripts(partition{Kind: "split", Groups: [][]int{{0}, {1}, {2}}}, ips)[0]; !strings.Contains(s, "{ 10.9.9.12, 10.9.9.13 }") {
		t.Errorf("isolated r0 does not drop both peers:\n%s", s)
	}
}

// The schedule is a function of the seed, covers every fault kind, and
// its partitions have the promised shapes.
func TestPlan(t *testing.T) {
	for _, n := range []int{3, 5} {
		a, b := plan(42, n, 30*time.Second), plan(42, n, 30*time.Second)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("N=%d: the same seed gave two schedules", n)
		}
		if reflect.DeepEqual(a, plan(43, n, 30*time.Second)) {
			t.Errorf("N=%d: seeds 42 and 43 gave the same schedule", n)
		}
		kinds := map[faultKind]bool{}
		quorum := n/2 + 1
		for _, s := range a {
			if s.Proc != "" {
				kinds[s.Proc] = true
			}
			if s.Part == nil {
				continue
			}
			kinds[faultKind("partition-"+s.Part.Kind)] = true
			sizes := []int{}
			for _, g := range s.Part.Groups {
				sizes = append(sizes, len(g))
			}
			switch s.Part.Kind {
			case "minority":
				if len(sizes) != 2 || sizes[0] >= quorum || sizes[1] < quorum {
					t.Errorf("N=%d: minority partition %v", n, s.Part)
				}
			case "split":
				for _, size := range sizes {
					if size >= quorum {
						t.Errorf("N=%d: split %v has a side with a quorum", n, s.Part)
					}
				}
			case "bridge":
				if len(sizes) != 2 || sizes[0]+sizes[1] != n-1 {
					t.Errorf("N=%d: bridge partition %v", n, s.Part)
				}
				for _, g := range s.Part.Groups {
					for _, r := range g {
						if r == s.Part.Bridge {
							t.Errorf("N=%d: the bridge of %v is in a group", n, s.Part)
						}
					}
				}
			}
		}
		for _, k := range allFaultKinds {
			if !kinds[k] {
				t.Errorf("N=%d: a 30s schedule has no %s: %v", n, k, a)
			}
		}
	}
}

// Leftover sweeping only takes names whose owner process is gone.
func TestOwnerAlive(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	dead := cmd.Process.Pid
	for id, want := range map[string]bool{
		fmt.Sprintf("%xa", os.Getpid()):  true,  // this process
		fmt.Sprintf("%xb", os.Getppid()): true,  // another live process
		fmt.Sprintf("%xc", dead):         false, // exited (unless its pid was reused at once)
		"zz":                             true,  // not a name of ours
		"1":                              true,
	} {
		if got := ownerAlive(id); got != want {
			t.Errorf("ownerAlive(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestLastWords(t *testing.T) {
	log := filepath.Join(t.TempDir(), "r0.log")
	os.WriteFile(log, []byte(`==== chaos 01:28:12.650: start ====
2026-11-26T01:28:16.897Z [DEBUG] r0.kv: plugin exited
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x50 pc=0xa755ba]

goroutine 51 [running]:
internal/sync.(*Mutex).Lock(...)
	/usr/local/go/src/internal/sync/mutex.go:63
github.com/epaxosd/epaxosd/plugin.(*Host).Apply(0x0, {0x120ec90, 0x2dd6d44a4500}, {0x2dd6d400b880, 0x6, 0x8})
	/work/main/plugin/host.go:391 +0x7a
`), 0o644)
	got := lastWords(log)
	for _, want := range []string{"panic: runtime error", "plugin.(*Host).Apply", "plugin/host.go:391"} {
		if !strings.Contains(got, want) {
			t.Errorf("lastWords lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "mutex.go") || strings.Contains(got, "plugin exited") {
		t.Errorf("lastWords keeps noise:\n%s", got)
	}
	os.WriteFile(log, []byte("a\nb\nc\n[ERROR] r2: fatal: error=\"replay: executed instance 1.410 has no committed record\"\n"), 0o644)
	if got := lastWords(log); !strings.Contains(got, "fatal") || strings.Contains(got, "\ta\n") {
		t.Errorf("lastWords of a fatal error:\n%s", got)
	}
}
